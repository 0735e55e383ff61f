package autotask_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/autotask"
)

// A server that ignores the company filter must not fill the index with
// another company's contacts; one that repeats a page must not loop.
func TestMisbehavingServer(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"other company", `{"items":[{"id":1,"companyID":999}],"pageDetails":{"nextPageUrl":null}}`, "belongs to company 999"},
		{"repeated page", `{"items":[{"id":1,"companyID":123}],"pageDetails":{"nextPageUrl":"%s/ATServicesRest/V1.0/Contacts/query/next?paging=x"}}`, "repeated a page"},
		{"next page elsewhere", `{"items":[{"id":1,"companyID":123}],"pageDetails":{"nextPageUrl":"https://elsewhere.example/next"}}`, "not on the zone's host"},
		{"no itemId", `{"items":[{"companyID":123}],"pageDetails":{}}`, "contact without an id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(strings.ReplaceAll(tc.body, "%s", url)))
			}))
			defer srv.Close()
			url = srv.URL
			c, err := autotask.New(autotask.Config{APIURL: srv.URL + "/ATServicesRest/", UserName: "stub@x.example", Secret: "s", IntegrationCode: "i", Rate: "1000/s", Transport: srv.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Index(context.Background(), scope)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Autotask: customer acme") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

package connectwise_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/connectwise"
)

// A server that ignores the company condition must not fill the index
// with another company's contacts; one that repeats a page must not loop.
func TestMisbehavingServer(t *testing.T) {
	cases := []struct {
		name, body, link, want string
	}{
		{"other company", `[{"id":1,"firstName":"A","company":{"id":999}}]`, "", "belongs to company 999"},
		{"repeated page", `[{"id":1,"firstName":"A","company":{"id":250}}]`, `<%s/v4_6_release/apis/3.0/company/contacts?page=1>; rel="next"`, "repeated a page"},
		{"next link elsewhere", `[{"id":1,"firstName":"A","company":{"id":250}}]`, `<https://elsewhere.example/x?page=2>; rel="next"`, "another host"},
		{"no id", `[{"firstName":"A"}]`, "", "contact without an id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.link != "" {
					w.Header().Set("Link", strings.ReplaceAll(tc.link, "%s", url))
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			url = srv.URL
			c, err := connectwise.New(connectwise.Config{URL: srv.URL, CompanyID: "stub", PublicKey: "p", PrivateKey: "k", ClientID: "c", Rate: "1000/s", Transport: srv.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Index(context.Background(), scope)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ConnectWise: customer acme") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

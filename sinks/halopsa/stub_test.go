package halopsa_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/halopsa"
)

// A server that ignores client_id must not fill the index with another
// client's users; one that repeats a page or omits record_count must not
// loop.
func TestMisbehavingServer(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"other client", `{"record_count":1,"users":[{"id":1,"client_id":99}]}`, "belongs to client 99"},
		{"repeated page", `{"record_count":5,"users":[{"id":1,"client_id":12}]}`, "repeated a page"},
		{"no record_count", `{"users":[{"id":1,"client_id":12}]}`, "no record_count"},
		{"float id", `{"record_count":1,"users":[{"id":1.5,"client_id":12}]}`, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/token") {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := halopsa.New(halopsa.Config{URL: srv.URL, ClientID: "stub", ClientSecret: "s", Rate: "1000/s", Transport: srv.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Index(context.Background(), scope)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "HaloPSA: customer acme") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

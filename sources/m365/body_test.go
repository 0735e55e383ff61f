package m365_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// TestOversizeBodyIsMalformed: a Graph page longer than MaxBody, or a
// token answer longer than restclient.MaxTokenBody, is a malformed answer
// naming Microsoft 365 and the customer. Before, Graph pages were read
// whole whatever their size, and golang.org/x/oauth2 cut a long token
// answer at 1 MiB without a word.
func TestOversizeBodyIsMalformed(t *testing.T) {
	// bigToken answers a valid token padded past MaxTokenBody.
	bigToken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
		io.WriteString(w, strings.Repeat(" ", int(restclient.MaxTokenBody)))
	}))
	t.Cleanup(bigToken.Close)
	for _, tt := range []struct {
		name string
		mod  func(*m365.Config)
		fix  string
	}{
		{"users page", func(c *m365.Config) { c.MaxBody = 4096 }, ""},
		{"token answer", func(c *m365.Config) { c.LoginURL = bigToken.URL }, "not an OAuth token"},
		{"token answer, own HTTP client", func(c *m365.Config) {
			c.LoginURL = bigToken.URL
			c.HTTPClient = &http.Client{Transport: bigToken.Client().Transport}
		}, "not an OAuth token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := m365test.NewServer(m365test.Options{})
			t.Cleanup(srv.Close)
			srv.Default().Generate(m365test.GenOptions{Seed: 3, Users: 200})
			var err error
			for _, e := range newSource(t, srv, tt.mod).Accounts(context.Background(), sources.Selection{}) {
				if e != nil {
					err = e
					break
				}
			}
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			for _, want := range []string{"Microsoft 365: customer acme:", "longer than", tt.fix} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), srv.ClientSecret) {
				t.Errorf("error %q carries the secret", err)
			}
			t.Log(err)
		})
	}
}

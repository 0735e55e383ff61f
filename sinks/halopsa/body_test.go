package halopsa_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
)

// TestOversizeBodyIsMalformed: a 2xx answer longer than MaxBody, or a
// token answer longer than restclient.MaxTokenBody, is a malformed answer
// naming the integration and the customer. Before, API bodies were
// decoded without any limit and a long token answer was cut at 1 MiB by
// golang.org/x/oauth2 without a word.
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
		mod  func(*halopsa.Config)
	}{
		{"users page", func(c *halopsa.Config) { c.MaxBody = 2048 }},
		{"token answer over MaxBody", func(c *halopsa.Config) { c.MaxBody = 50 }},
		{"token answer over MaxTokenBody", func(c *halopsa.Config) { c.AuthURL = bigToken.URL + "/auth" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, halopsatest.Options{})
			srv.Generate(12, 50, 1)
			_, err := newClient(t, srv, tt.mod).Index(context.Background(), scope)
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			for _, want := range []string{"HaloPSA: customer acme:", "longer than"} {
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

package halopsa_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
)

// The client secret (the token request) and the bearer token (every API
// call) never follow a 307 to another host: each fails naming HaloPSA and
// the target, and nothing reaches the target.
func TestCredentialsNeverFollowARedirect(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	isToken := func(r *http.Request) bool { return r.URL.Path == "/auth/token" }
	for _, tt := range []struct {
		name     string
		redirect func(*http.Request) bool
		call     func(*halopsa.Client) error
	}{
		{"token", isToken, func(c *halopsa.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		{"index", func(r *http.Request) bool { return !isToken(r) }, func(c *halopsa.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		{"create", func(r *http.Request) bool { return !isToken(r) && r.Method == http.MethodPost },
			func(c *halopsa.Client) error {
				_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe.quinn@acme.example"})
				return err
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rd := redirecttest.Start(t, redirecttest.Forward(t, srv.URL), tt.redirect)
			c := newClient(t, srv, func(cfg *halopsa.Config) { cfg.URL = rd.URL })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			rd.CheckRefused(t, err, "HaloPSA", srv.ClientSecret)
		})
	}
}

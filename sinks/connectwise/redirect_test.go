package connectwise_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
)

// The Basic credentials and the clientId header never follow a 307 to
// another host, on a read or on a create: the call fails naming
// ConnectWise and the target, and nothing reaches the target.
func TestCredentialsNeverFollowARedirect(t *testing.T) {
	srv := newServer(t, cwtest.Options{EmailTypeID: 7})
	for _, tt := range []struct {
		name     string
		redirect func(*http.Request) bool
		call     func(*connectwise.Client) error
	}{
		{"index", nil, func(c *connectwise.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		{"create", func(r *http.Request) bool { return r.Method == http.MethodPost },
			func(c *connectwise.Client) error {
				_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe.quinn@acme.example"})
				return err
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rd := redirecttest.Start(t, redirecttest.Forward(t, srv.URL), tt.redirect)
			c := newClient(t, srv, func(cfg *connectwise.Config) { cfg.URL = rd.URL })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			rd.CheckRefused(t, err, "ConnectWise", srv.PrivateKey)
		})
	}
}

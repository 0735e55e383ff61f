package connectwise_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
)

// TestOversizeBodyIsMalformed: a 2xx answer longer than MaxBody is a
// malformed answer naming the integration and the customer, whatever the
// call. Before, 2xx bodies were decoded without any limit.
func TestOversizeBodyIsMalformed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		maxBody int64
		call    func(*connectwise.Client) error
	}{
		{"listing", 2048, func(c *connectwise.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		{"create", 100, func(c *connectwise.Client) error {
			_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Jane", LastName: "Doe"})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, cwtest.Options{})
			srv.Generate(250, 50, 1)
			c := newClient(t, srv, func(c *connectwise.Config) { c.MaxBody = tt.maxBody })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			for _, want := range []string{"ConnectWise: customer acme:", "longer than"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

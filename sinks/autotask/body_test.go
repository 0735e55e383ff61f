package autotask_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

// TestOversizeBodyIsMalformed: a 2xx answer longer than MaxBody is a
// malformed answer naming the integration and the customer, whatever the
// call. Before, 2xx bodies were decoded without any limit.
func TestOversizeBodyIsMalformed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		maxBody int64
		zoneSet bool // skip zone discovery
		call    func(*autotask.Client) error
	}{
		{"zone discovery", 50, false, func(c *autotask.Client) error { _, err := c.Zone(context.Background(), "acme"); return err }},
		{"query", 2048, false, func(c *autotask.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		// A create's answer is {"itemId":N}: only a tiny limit makes it too long.
		{"create", 12, true, func(c *autotask.Client) error {
			_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Jane", LastName: "Doe"})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, autotasktest.Options{})
			srv.Generate(123, 50, 1)
			c := newClient(t, srv, func(c *autotask.Config) {
				c.MaxBody = tt.maxBody
				if tt.zoneSet {
					c.APIURL = srv.URL + "/ATServicesRest/"
				}
			})
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			for _, want := range []string{"Autotask: customer acme:", "longer than"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

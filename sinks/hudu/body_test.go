package hudu_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
)

// TestOversizeBodyIsMalformed: a 2xx answer longer than MaxBody is a
// malformed answer naming the integration and the customer, whatever the
// call.
func TestOversizeBodyIsMalformed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		maxBody int64
		call    func(*hudu.Client) error
	}{
		{"listing", 2048, func(c *hudu.Client) error { _, err := c.Index(context.Background(), acme); return err }},
		{"create", 200, func(c *hudu.Client) error {
			_, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "AD - jane", Username: "jane", Password: "pw"})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, hudutest.Options{})
			srv.Generate(7, 50, 1)
			c := newClient(t, srv, func(c *hudu.Config) { c.MaxBody = tt.maxBody })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			for _, want := range []string{"Hudu: customer acme:", "longer than"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

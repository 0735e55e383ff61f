package itglue_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
)

// The x-api-key header, and a new password in a PATCH body, never follow a
// 307 to another host: listing, reading a password's value (the rotation's
// read) and writing one (its write-back) each fail naming IT Glue and the
// target, and nothing reaches the target.
func TestAPIKeyNeverFollowsARedirect(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	id := srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane Doe", Username: "jdoe", Value: "old-value"}, "Active Directory")
	ref := strconv.Itoa(id)
	for _, tt := range []struct {
		name     string
		redirect func(*http.Request) bool
		call     func(*itglue.Client) error
	}{
		{"index", nil, func(c *itglue.Client) error { _, err := c.Index(context.Background(), acme); return err }},
		{"password read", func(r *http.Request) bool { return r.URL.Query().Get("show_password") == "true" },
			func(c *itglue.Client) error { _, err := c.Password(context.Background(), acme, ref); return err }},
		{"password write", func(r *http.Request) bool { return r.Method == http.MethodPatch },
			func(c *itglue.Client) error {
				return c.SetPassword(context.Background(), acme, ref, "n3w-Passw0rd!", "")
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rd := redirecttest.Start(t, redirecttest.Forward(t, srv.URL), tt.redirect)
			c := newClient(t, srv, func(cfg *itglue.Config) { cfg.URL = rd.URL })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			rd.CheckRefused(t, err, "IT Glue", srv.APIKey, "n3w-Passw0rd!", "old-value")
		})
	}
}

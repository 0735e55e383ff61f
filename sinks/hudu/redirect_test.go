package hudu_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
)

// The x-api-key header, and a new password in a PUT body, never follow a
// 307 to another host: listing, reading a password (the rotation's read)
// and writing one each fail naming Hudu and the target, and nothing
// reaches the target.
func TestAPIKeyNeverFollowsARedirect(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	id := srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane Doe", Username: "jdoe", Password: "old-value"})
	ref := strconv.Itoa(id)
	onePassword := func(r *http.Request) bool { return r.URL.Path == "/api/v1/asset_passwords/"+ref }
	for _, tt := range []struct {
		name     string
		redirect func(*http.Request) bool
		call     func(*hudu.Client) error
	}{
		{"index", nil, func(c *hudu.Client) error { _, err := c.Index(context.Background(), acme); return err }},
		{"password read", onePassword, func(c *hudu.Client) error { _, err := c.Password(context.Background(), acme, ref); return err }},
		{"password write", func(r *http.Request) bool { return r.Method == http.MethodPut },
			func(c *hudu.Client) error { return c.SetPassword(context.Background(), acme, ref, "n3w-Passw0rd!", "") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rd := redirecttest.Start(t, redirecttest.Forward(t, srv.URL), tt.redirect)
			c := newClient(t, srv, func(cfg *hudu.Config) { cfg.URL = rd.URL })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			rd.CheckRefused(t, err, "Hudu", srv.APIKey, "n3w-Passw0rd!", "old-value")
		})
	}
}

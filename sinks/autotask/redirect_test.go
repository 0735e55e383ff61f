package autotask_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

// The UserName, Secret and ApiIntegrationCode headers never follow a 307
// to another host: not from zone discovery, not from the zone's API (a
// read or a create). The call fails naming Autotask and the target, and
// nothing reaches the target.
func TestCredentialsNeverFollowARedirect(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	isZone := func(r *http.Request) bool { return strings.Contains(strings.ToLower(r.URL.Path), "zoneinformation") }
	t.Run("zone discovery", func(t *testing.T) {
		rd := redirecttest.Start(t, nil, nil)
		c := newClient(t, srv, func(cfg *autotask.Config) { cfg.ZoneURL = rd.URL + "/atservicesrest" })
		_, err := c.Index(context.Background(), scope)
		rd.CheckRefused(t, err, "Autotask", srv.Secret)
		if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
			t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
		}
	})
	for _, tt := range []struct {
		name string
		call func(*autotask.Client) error
	}{
		{"index", func(c *autotask.Client) error { _, err := c.Index(context.Background(), scope); return err }},
		{"create", func(c *autotask.Client) error {
			_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe.quinn@acme.example"})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Zone discovery answers with the redirecting server as the
			// zone; every API call there is redirected.
			var rd *redirecttest.Server
			zone := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"zoneName": "Fake Zone 15", "url": rd.URL + "/ATServicesRest/"})
			})
			rd = redirecttest.Start(t, zone, func(r *http.Request) bool { return !isZone(r) })
			c := newClient(t, srv, func(cfg *autotask.Config) { cfg.ZoneURL = rd.URL + "/atservicesrest" })
			err := tt.call(c)
			if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			rd.CheckRefused(t, err, "Autotask", srv.Secret)
		})
	}
}

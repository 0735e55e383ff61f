package autotask_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

// TestZoneURLForms: zone discovery is asked at
// {host}/atservicesrest/v1.0/zoneInformation whether the configured URL is
// the bare host (as examples/tenant.yaml writes it) or the REST root, with
// or without a trailing slash, in any case. The fake answers that path
// only, so a client asking another one fails here.
func TestZoneURLForms(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	for _, form := range []string{
		"",
		"/",
		"/atservicesrest",
		"/atservicesrest/",
		"/ATServicesRest",
		"/ATServicesRest/",
		"/AtServicesRest//",
		"/atservicesrest/v1.0",
		"/ATServicesRest/V1.0/",
	} {
		t.Run(strings.ReplaceAll("host"+form, "/", "_"), func(t *testing.T) {
			c := newClient(t, srv, func(c *autotask.Config) { c.ZoneURL = srv.URL + form })
			z, err := c.Zone(context.Background(), "acme")
			if err != nil {
				t.Fatalf("ZoneURL %q: %v", srv.URL+form, err)
			}
			if z != srv.URL+"/ATServicesRest/V1.0/" {
				t.Errorf("ZoneURL %q: zone %q", srv.URL+form, z)
			}
		})
	}
	if n := srv.Count(autotasktest.KindOther); n != 0 {
		t.Errorf("%d requests to paths the fake does not serve", n)
	}
}

func TestZoneURLRefused(t *testing.T) {
	for _, u := range []string{"ftp://webservices.autotask.net", "https://webservices.autotask.net/atservicesrest?user=x", "not a url"} {
		if _, err := autotask.New(autotask.Config{ZoneURL: u, UserName: "u", Secret: "s", IntegrationCode: "i"}); err == nil || !strings.Contains(err.Error(), "Autotask: config: ZoneURL") {
			t.Errorf("ZoneURL %q: err = %v", u, err)
		}
	}
}

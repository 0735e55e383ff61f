package autotask_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks/autotask"
)

func atConfig(mod func(*autotask.Config)) autotask.Config {
	c := autotask.Config{UserName: "api@acme.example", Secret: "s", IntegrationCode: "code"}
	mod(&c)
	return c
}

// TestNewRefusesInsecureURL: the secret goes only to an https:// URL, or
// over http:// to this machine or when AllowInsecureHTTP says so; that
// holds for the zone-discovery URL and a configured zone URL alike.
func TestNewRefusesInsecureURL(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*autotask.Config)
		bad  string // the URL the error names; "" when New must succeed
	}{
		{"default zone URL", func(c *autotask.Config) {}, ""},
		{"https zone URL", func(c *autotask.Config) { c.ZoneURL = "https://webservices2.autotask.net" }, ""},
		{"loopback zone URL", func(c *autotask.Config) { c.ZoneURL = "http://127.0.0.1:8081" }, ""},
		{"http zone URL", func(c *autotask.Config) { c.ZoneURL = "http://webservices.autotask.example" }, "http://webservices.autotask.example"},
		{"http zone URL allowed", func(c *autotask.Config) {
			c.ZoneURL = "http://webservices.autotask.example"
			c.AllowInsecureHTTP = true
		}, ""},
		{"http API URL", func(c *autotask.Config) { c.APIURL = "http://webservices15.autotask.example/ATServicesRest/" }, "http://webservices15.autotask.example/ATServicesRest/V1.0/"},
		{"loopback API URL", func(c *autotask.Config) { c.APIURL = "http://localhost:9/ATServicesRest/" }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := autotask.New(atConfig(tt.mod))
			if tt.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, restclient.ErrInsecureURL) {
				t.Fatalf("err = %v, want ErrInsecureURL", err)
			}
			for _, want := range []string{"Autotask: ", tt.bad, "allow_insecure_http"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestZoneDiscoveryRefusesInsecureZone: a discovery answer that sends the
// client to an http:// zone on another host is an error naming Autotask
// and that zone, unless AllowInsecureHTTP says so.
func TestZoneDiscoveryRefusesInsecureZone(t *testing.T) {
	const zone = "http://webservices15.autotask.example/ATServicesRest/"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.URL.Path, "/atservicesrest/v1.0/zoneInformation") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"zoneName":"Zone 15","url":"` + zone + `","webUrl":"http://ww15.autotask.example/","ci":0}`))
	}))
	t.Cleanup(srv.Close)
	for _, insecure := range []bool{false, true} {
		c, err := autotask.New(atConfig(func(c *autotask.Config) {
			c.ZoneURL, c.AllowInsecureHTTP, c.Transport, c.Rate = srv.URL+"/atservicesrest", insecure, srv.Client().Transport, "1000/s"
		}))
		if err != nil {
			t.Fatal(err)
		}
		z, err := c.Zone(context.Background(), "acme")
		if insecure {
			if err != nil || z != zone+"V1.0/" {
				t.Errorf("allowed: Zone = %q, %v", z, err)
			}
			continue
		}
		if !errors.Is(err, restclient.ErrInsecureURL) {
			t.Fatalf("Zone = %q, %v; want ErrInsecureURL", z, err)
		}
		for _, want := range []string{"Autotask: customer acme:", zone + "V1.0/", "allow_insecure_http"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
}

package autotask_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/autotask"
)

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"items":[{"id":29683577,"companyID":123,"firstName":"Jane","lastName":"Doe","emailAddress":"jane@acme.example","isActive":1}],"pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":"https://webservices15.autotask.net/ATServicesRest/V1.0/Contacts/query/next?paging=abc"}}`))
	f.Add([]byte(`{"items":[],"pageDetails":{"count":0,"nextPageUrl":null}}`))
	f.Add([]byte(`{"items":[{"id":0}]}`))
	f.Add([]byte(`{"errors":["Contact firstName is required."]}`))
	f.Add([]byte(`{"items":[{"id":1,"emailAddress":" x@y "}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, _, err := autotask.DecodePage(body)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Ref == "" || strings.HasPrefix(c.Ref, "-") || c.Ref == "0" {
				t.Fatalf("contact with bad id decoded: %+v", c)
			}
			if c.Email != strings.TrimSpace(c.Email) {
				t.Fatalf("email not trimmed: %q", c.Email)
			}
		}
	})
}

func FuzzNormaliseZone(f *testing.F) {
	for _, s := range []string{"https://webservices15.autotask.net/ATServicesRest/", "https://webservices2.autotask.net//ATServicesRest", "https://x/ATServicesRest/V1.0/", "ftp://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, err := autotask.NormaliseZone(s)
		if err != nil {
			return
		}
		u, err := url.Parse(z)
		if err != nil {
			t.Fatalf("normalised %q to unparsable %q", s, z)
		}
		if !strings.HasSuffix(strings.ToLower(u.Path), "/v1.0/") || strings.Contains(u.Path, "//") || u.RawQuery != "" {
			t.Fatalf("normalised %q to %q", s, z)
		}
		again, err := autotask.NormaliseZone(z)
		if err != nil || again != z {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, z, again, err)
		}
	})
}

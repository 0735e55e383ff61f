package connectwise_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/connectwise"
)

func FuzzDecodeContacts(f *testing.F) {
	f.Add([]byte(`[{"id":501,"firstName":"Jane","lastName":"Doe","company":{"id":250},"communicationItems":[{"id":9,"type":{"id":1,"name":"Email"},"value":"jane@acme.example","defaultFlag":true,"communicationType":"Email"}]}]`))
	f.Add([]byte(`[{"id":1,"communicationItems":[{"type":{"name":"email"},"value":" a@b "},{"communicationType":"Phone","value":"555"}]}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"code":"InvalidObject"}`))
	f.Add([]byte(`[{"id":"x"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, err := connectwise.DecodeContacts(body)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Ref == "" || c.Ref == "0" {
				t.Fatalf("contact without id decoded: %+v", c)
			}
			if c.Email != strings.TrimSpace(c.Email) {
				t.Fatalf("email not trimmed: %q", c.Email)
			}
		}
	})
}

func FuzzNextLink(f *testing.F) {
	base := "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
	f.Add(`<https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/contacts?page=2&pageSize=1000>; rel="next", <https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/contacts?page=5>; rel="last"`)
	f.Add(`<https://evil.example/x?a=1,2>; rel="next"`)
	f.Add(`</v4_6_release/apis/3.0/company/contacts?pageId=9>; rel=next`)
	f.Add(`<>; rel="prev"`)
	f.Fuzz(func(t *testing.T, h string) {
		next, err := connectwise.NextLink([]string{h}, base)
		if err != nil {
			return
		}
		if next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != "https" || u.Host != "api-na.myconnectwise.net" {
			t.Fatalf("next link %q leaves the API host", next)
		}
	})
}

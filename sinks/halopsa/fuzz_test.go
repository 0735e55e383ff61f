package halopsa_test

import (
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/halopsa"
)

func FuzzDecodeUsersPage(f *testing.F) {
	f.Add([]byte(`{"page_no":1,"page_size":100,"record_count":250,"users":[{"id":101,"name":"Jane Doe","firstname":"Jane","surname":"Doe","emailaddress":"jane@acme.example","client_id":12,"site_id":34,"inactive":false}]}`))
	f.Add([]byte(`{"record_count":1,"users":[{"id":5,"name":"Mary Ann Smith"}]}`))
	f.Add([]byte(`{"users":[]}`))
	f.Add([]byte(`{"record_count":"3"}`))
	f.Add([]byte(`[{"id":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, total, err := halopsa.DecodeUsersPage(body)
		if err != nil {
			return
		}
		_ = total
		for _, c := range cs {
			if c.Ref == "" || c.Ref == "0" || strings.HasPrefix(c.Ref, "-") {
				t.Fatalf("user with bad id decoded: %+v", c)
			}
			if c.Email != strings.TrimSpace(c.Email) || c.FirstName != strings.TrimSpace(c.FirstName) || c.LastName != strings.TrimSpace(c.LastName) {
				t.Fatalf("untrimmed contact %+v", c)
			}
		}
	})
}

func FuzzDecodeCreated(f *testing.F) {
	for _, s := range []string{`[{"id":102,"name":"Zoe Quinn"}]`, `{"id":102}`, `[]`, `[{"id":1},{"id":2}]`, `{"id":95.0}`, ` [ {"id":7} ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, err := halopsa.DecodeCreated(raw)
		if err == nil && id <= 0 {
			t.Fatalf("accepted id %d from %q", id, raw)
		}
	})
}

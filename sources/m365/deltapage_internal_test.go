package m365

import (
	"errors"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// FuzzDecodeDeltaPage feeds delta pages from outside: a page decodes to
// objects that all have ids and exactly one link, or to an error marked
// malformed, never a panic.
func FuzzDecodeDeltaPage(f *testing.F) {
	for _, s := range []string{
		`{"value":[{"id":"a","userPrincipalName":"a@x","accountEnabled":false,"assignedLicenses":[{"skuId":"s"}]}],"@odata.deltaLink":"l"}`,
		`{"value":[{"id":"a","@removed":{"reason":"changed"}},{"id":"b","mail":null,"onPremisesSyncEnabled":null}],"@odata.nextLink":"n"}`,
		`{"value":[{"id":"g","displayName":"G","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u","@removed":{"reason":"deleted"}}]}],"@odata.deltaLink":"l"}`,
		`{"value":[{"id":"r","roleTemplateId":"t","members@delta":[{"id":""}]}],"@odata.deltaLink":"l"}`,
		`{"value":[{"id":"a","displayName":"\u00e9\ud800"}],"@odata.deltaLink":"l"}`,
		`{"value":null,"@odata.deltaLink":"l"}`,
		`{"value":[1,"x",null]}`,
		`{"value":[{"id":"a","assignedLicenses":{}}],"@odata.deltaLink":"l"}`,
		`[]`, `null`, ``, `{"value":[{"id":"a"}],"@odata.deltaLink":"l","@odata.nextLink":"n"}`,
	} {
		f.Add([]byte(s))
	}
	check := func(t *testing.T, n int, ids func(i int) string, next, delta string, err error) {
		if err != nil {
			if !errors.Is(err, restclient.ErrMalformed) || err.Error() == "" {
				t.Fatalf("error %v is not a malformed-answer error", err)
			}
			return
		}
		if (next == "") == (delta == "") {
			t.Fatalf("accepted a page with next %q and delta %q", next, delta)
		}
		for i := range n {
			if ids(i) == "" {
				t.Fatalf("object %d accepted without an id", i)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		users, next, delta, err := decodeDeltaPage[deltaUser](body)
		check(t, len(users), func(i int) string { return users[i].ID }, next, delta, err)
		for i := range users {
			var u userFacts
			var have uint16
			users[i].mergeInto(&u, &have)
			if have&^hasAllUser != 0 {
				t.Fatalf("merged unknown properties %b", have)
			}
		}
		objects, next, delta, err := decodeDeltaPage[deltaObject](body)
		check(t, len(objects), func(i int) string { return objects[i].ID }, next, delta, err)
		for _, o := range objects {
			for _, m := range o.Members {
				if m.ID == "" {
					t.Fatalf("member accepted without an id in %+v", o)
				}
			}
		}
	})
}

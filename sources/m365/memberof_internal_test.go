package m365

import (
	"errors"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// FuzzDecodeMemberOfPage feeds memberOf pages from outside: a page
// decodes to ids that are never empty, or to an error marked malformed,
// never a panic.
func FuzzDecodeMemberOfPage(f *testing.F) {
	for _, s := range []string{
		`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g"},{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}]}`,
		`{"value":[{"@odata.type":"#microsoft.graph.administrativeUnit","id":"au"}],"@odata.nextLink":"n"}`,
		`{"value":[{"@odata.type":"#microsoft.graph.group"}]}`,
		`{"value":[{"id":"x"}]}`, `{"value":null}`, `{"value":[1,"x"]}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, _, err := decodeMemberOfPage(body)
		if err != nil {
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("error %v is not a malformed-answer error", err)
			}
			return
		}
		for _, id := range ids {
			if id == "" {
				t.Fatal("an empty id accepted")
			}
		}
	})
}

func TestDecodeMemberOfPage(t *testing.T) {
	ids, next, err := decodeMemberOfPage([]byte(`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g"},` +
		`{"@odata.type":"#microsoft.graph.administrativeUnit","id":"au"},{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}],"@odata.nextLink":"n"}`))
	if err != nil || len(ids) != 2 || ids[0] != "g" || ids[1] != "r" || next != "n" {
		t.Errorf("%v %q %v: want the group and the role, not the administrative unit, and the next link", ids, next, err)
	}
	for _, bad := range []string{`{}`, `{"value":{}}`, `<html>`, `{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":""}]}`} {
		if _, _, err := decodeMemberOfPage([]byte(bad)); !errors.Is(err, restclient.ErrMalformed) {
			t.Errorf("%s: %v, want a malformed-answer error", bad, err)
		}
	}
}

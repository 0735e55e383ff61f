package m365

import (
	"errors"
	"slices"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// FuzzDecodeDirectoryObjects feeds memberOf and members pages from
// outside: a page decodes to ids that are never empty, or to an error
// marked malformed, never a panic.
func FuzzDecodeDirectoryObjects(f *testing.F) {
	for _, s := range []string{
		`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g"},{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}]}`,
		`{"value":[{"@odata.type":"#microsoft.graph.administrativeUnit","id":"au"}],"@odata.nextLink":"n"}`,
		`{"value":[{"@odata.type":"#microsoft.graph.group"}]}`,
		`{"value":[{"id":"x"}]}`, `{"value":null}`, `{"value":[1,"x"]}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, types := range [][]string{parentTypes, memberTypes} {
			ids, _, err := decodeDirectoryObjects(body, types)
			if err != nil {
				if !errors.Is(err, restclient.ErrMalformed) {
					t.Fatalf("error %v is not a malformed-answer error", err)
				}
				continue
			}
			for _, id := range ids {
				if id == "" {
					t.Fatal("an empty id accepted")
				}
			}
		}
	})
}

func TestDecodeDirectoryObjects(t *testing.T) {
	page := []byte(`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g"},{"@odata.type":"#microsoft.graph.administrativeUnit","id":"au"},` +
		`{"@odata.type":"#microsoft.graph.directoryRole","id":"r"},{"@odata.type":"#microsoft.graph.user","id":"u"},{"@odata.type":"#microsoft.graph.device","id":"d"}],"@odata.nextLink":"n"}`)
	for _, tc := range []struct {
		types []string
		want  []string
	}{{parentTypes, []string{"g", "r"}}, {memberTypes, []string{"g", "u"}}} {
		ids, next, err := decodeDirectoryObjects(page, tc.types)
		if err != nil || !slices.Equal(ids, tc.want) || next != "n" {
			t.Errorf("%v: %v %q %v, want %v and the next link", tc.types, ids, next, err, tc.want)
		}
	}
	for _, bad := range []string{`{}`, `{"value":{}}`, `<html>`, `{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":""}]}`} {
		if _, _, err := decodeDirectoryObjects([]byte(bad), parentTypes); !errors.Is(err, restclient.ErrMalformed) {
			t.Errorf("%s: %v, want a malformed-answer error", bad, err)
		}
	}
}

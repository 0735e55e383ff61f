package m365

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
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

// A position carrying more lookups and reads Graph did not answer than
// maxLookupsAgain is read in full; up to that many, incrementally.
func TestTooManyLookupsAgainReadInFull(t *testing.T) {
	now := time.Now()
	state := func(n int) sources.SyncState {
		pos := position{Format: copyFormat, Users: "u", Groups: "g", Roles: "r"}
		for i := range n {
			pos.Lookups = append(pos.Lookups, fmt.Sprintf("users/u%d", i))
		}
		return sources.SyncState{Token: pos.encode(), FullAt: now, Selection: "sel"}
	}
	if pos, why := planRead(state(maxLookupsAgain), "sel", sources.ReadOptions{}, now); why != "" || len(pos.Lookups) != maxLookupsAgain {
		t.Errorf("%d lookups to ask again: %q, %d carried; want an incremental read carrying them", maxLookupsAgain, why, len(pos.Lookups))
	}
	if _, why := planRead(state(maxLookupsAgain+1), "sel", sources.ReadOptions{}, now); !strings.Contains(why, "did not find 1001 users and groups") {
		t.Errorf("%d lookups to ask again: %q, want a full read saying why", maxLookupsAgain+1, why)
	}
	// Users to read whole again count with them.
	pos, _ := decodePosition(state(maxLookupsAgain).Token)
	pos.Unread = []string{"u"}
	if _, why := planRead(sources.SyncState{Token: pos.encode(), FullAt: now, Selection: "sel"}, "sel", sources.ReadOptions{}, now); why == "" {
		t.Errorf("%d lookups and a user to read again: an incremental read, want a full one", maxLookupsAgain)
	}
}

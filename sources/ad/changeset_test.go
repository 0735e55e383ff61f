package ad

import (
	"context"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// A full read into a store that stages hands its accounts over as it goes
// and keeps groups and containers; an account met again after it was
// staged (a DirSync answer carrying it twice) is taken back from the
// store and merged, and one deleted since is deleted from the copy.
func TestFullReadStagesItsAccounts(t *testing.T) {
	ctx := context.Background()
	copies := &sourcestest.Copies{}
	cs := newChangeSet(true)
	stage, err := sources.StagingFor(ctx, copies, "acme", copySource)
	if err != nil {
		t.Fatal(err)
	}
	cs.stage = stage
	user := func(id, sam string) dirEntry {
		return dirEntry{id: id, dn: "CN=" + sam + ",DC=x", attrs: map[string][][]byte{
			"objectClass": {[]byte("top"), []byte("user")}, "sAMAccountName": {[]byte(sam)}}}
	}
	for i := range sources.StageBatch + 2 {
		cs.add(user("u"+string(rune('A'+i%26))+string(rune('a'+i/26)), "user"), true)
	}
	cs.add(dirEntry{id: "g1", dn: "CN=G,DC=x", attrs: map[string][][]byte{"objectClass": {[]byte("group")}}, members: &memberChange{whole: true, all: []string{"uAa"}}}, true)
	stage.Stop() // the batch handed to the store is written
	if copies.Staged != sources.StageBatch {
		t.Fatalf("%d accounts staged while reading, want a batch of %d", copies.Staged, sources.StageBatch)
	}
	// Of the accounts handed over, the change set keeps their keys only.
	if len(cs.objs) != 1 || cs.objs["g1"] == nil || len(cs.order) != 0 || len(cs.staged) != sources.StageBatch+2 {
		t.Fatalf("the change set holds %d objects and %d in order, %d staged keys; want the group alone and %d keys",
			len(cs.objs), len(cs.order), len(cs.staged), sources.StageBatch+2)
	}
	// uAa was flushed to the store; DirSync sends a change to it later.
	cs.add(dirEntry{id: "uAa", attrs: map[string][][]byte{"mail": {[]byte("a@x")}}}, false)
	// uBa was staged too, then deleted; uHt was deleted before its batch
	// went to the store.
	cs.add(dirEntry{id: "uBa", deleted: true}, false)
	cs.add(dirEntry{id: "uHt", deleted: true}, false)
	d, err := cs.fullDelta()
	if err != nil {
		t.Fatal(err)
	}
	if d.Staged != sources.StageBatch+1 || len(d.Deletes) != 1 || d.Deletes[0] != "uBa" {
		t.Errorf("delta: %d staged, deletes %v", d.Staged, d.Deletes)
	}
	for _, o := range d.Upserts {
		if o.Kind == kindAccount && o.ID != "uAa" {
			t.Errorf("account %s held to the end instead of staged", o.ID)
		}
	}
	if err := copies.ApplyCopy(ctx, "acme", copySource, d); err != nil {
		t.Fatal(err)
	}
	got := map[string]*copyObject{}
	for o, err := range copies.CopyObjects(ctx, "acme", copySource) {
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeCopyObject(o.Doc)
		if err != nil {
			t.Fatal(err)
		}
		got[o.ID] = obj
	}
	if len(got) != sources.StageBatch+1 || got["uBa"] != nil || got["uHt"] != nil || got["g1"] == nil {
		t.Fatalf("copy of %d objects (deleted one: %v, group: %v)", len(got), got["uBa"] != nil, got["g1"] != nil)
	}
	if a := got["uAa"]; a.first("mail") != "a@x" || a.first("sAMAccountName") != "user" || a.dn != "CN=user,DC=x" {
		t.Errorf("the account met again lost what was staged: %+v", a)
	}
}

// A staged account's key is its GUID's bytes, or a hash of an id that is
// no GUID: distinct ids, distinct keys.
func TestStagedKeys(t *testing.T) {
	const guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	raw, err := GUIDBytes(guid)
	if err != nil {
		t.Fatal(err)
	}
	if k := keyOf(guid); string(k[:]) != string(raw) {
		t.Errorf("keyOf(%s) = %x, want the GUID's bytes %x", guid, k, raw)
	}
	ids := []string{guid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1", "guid:0f1e2d3c4b5a69788796a5b4c3d2e1f0", "dn:0f1e2d3c4b5a69788796a5b4c3d2e1f0", "uAa", ""}
	seen := map[objectKey]string{}
	for _, id := range ids {
		k := keyOf(id)
		if other, ok := seen[k]; ok {
			t.Errorf("%q and %q share a key", id, other)
		}
		seen[k] = id
		if keyOf(id) != k {
			t.Errorf("keyOf(%q) differs from call to call", id)
		}
	}
}

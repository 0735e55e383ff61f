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

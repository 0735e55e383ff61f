package m365

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// A full read into a store that stages hands every user seen whole over
// as it comes; a user users/delta sends again after it was staged is
// taken back from the store and merged, one removed since is deleted from
// the copy, and one removed before its batch was written is not counted.
func TestFullReadStagesItsUsers(t *testing.T) {
	ctx := context.Background()
	copies := &sourcestest.Copies{}
	cs := newChangeSet(true)
	stage, err := sources.NewStaging(ctx, copies, "acme", copySource, 2)
	if err != nil {
		t.Fatal(err)
	}
	cs.stage = stage
	user := func(js string) {
		t.Helper()
		var d deltaUser
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			t.Fatal(err)
		}
		cs.user(&d)
	}
	whole := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"userPrincipalName":"%s@x","displayName":"User %s","givenName":"U","surname":%q,"mail":"%s@x",
			"userType":"Member","onPremisesImmutableId":null,"accountEnabled":true,"onPremisesSyncEnabled":null,"assignedLicenses":[]}`, id, id, id, id, id)
	}
	for _, id := range []string{"u1", "u2", "u3"} {
		user(whole(id))
	}
	stage.Stop() // the batch handed to the store is written
	if copies.Staged != 2 {
		t.Fatalf("%d users in the store's staging, want the first batch of 2", copies.Staged)
	}
	user(`{"id":"u3","@removed":{"reason":"changed"}}`) // u3 was still pending
	user(`{"id":"u1","displayName":"Renamed"}`)         // u1 is in the store
	user(`{"id":"u2","@removed":{"reason":"changed"}}`)
	d, err := (&deltaReader{}).copyDelta(ctx, copies, "acme", cs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Staged != 2 || len(d.Deletes) != 1 || d.Deletes[0] != "u2" || len(d.Upserts) != 0 {
		t.Fatalf("delta: %d staged, deletes %v, %d upserts", d.Staged, d.Deletes, len(d.Upserts))
	}
	if err := copies.ApplyCopy(ctx, "acme", copySource, d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for o, err := range copies.CopyObjects(ctx, "acme", copySource) {
		if err != nil {
			t.Fatal(err)
		}
		var f userFacts
		if err := json.Unmarshal(o.Doc, &f); err != nil {
			t.Fatal(err)
		}
		got = append(got, o.ID+"="+f.DisplayName+"/"+f.UPN)
	}
	if fmt.Sprint(got) != "[u1=Renamed/u1@x]" {
		t.Errorf("copy: %v", got)
	}
}

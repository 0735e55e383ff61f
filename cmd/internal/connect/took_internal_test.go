package connect

import (
	"context"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// Microsoft 365's Took says "taken" only when the last password change is
// later than the marker read before the change: a timestamp that did not
// move is not proof (Graph's has one-second resolution, so a reset in the
// marker's second reads as not taken too; rotation rolls forward either
// way and asks Took only to save a refused retry).
func TestM365TookNeedsTheTimestampToMove(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	ten := srv.Default()
	before := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	still := ten.AddUser(m365test.User{DisplayName: "Unchanged Admin", LastPasswordChange: before})
	moved := ten.AddUser(m365test.User{DisplayName: "Changed Admin", LastPasswordChange: before.Add(time.Hour)})
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: srv.TenantID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		LoginURL: srv.URL, GraphURL: srv.URL, Transport: srv.Client().Transport, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := m365Directory{src: src}
	ctx := context.Background()
	marker, err := d.Mark(ctx, jobs.ImportedAccount{SourceID: still})
	if err != nil {
		t.Fatal(err)
	}
	if took, err := d.Took(ctx, jobs.ImportedAccount{SourceID: still}, "", marker); took || err != nil {
		t.Fatalf("a timestamp that did not move reads as taken: %v %v", took, err)
	}
	if took, err := d.Took(ctx, jobs.ImportedAccount{SourceID: moved}, "", before.Format(time.RFC3339Nano)); !took || err != nil {
		t.Fatalf("a later change reads as not taken: %v %v", took, err)
	}
}

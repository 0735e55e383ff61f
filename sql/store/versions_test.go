package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// TestEveryWriteOfACustomerChangesItsVersion: each write a pass reads
// back (ledger, attention, decisions, the customer itself) adds one to
// the customer's version when its transaction commits, once however many
// rows it writes; what a pass keeps for itself (states, audit events),
// a rotation's own rows and a rolled-back transaction do not.
func TestEveryWriteOfACustomerChangesItsVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		version := func(customer string) int64 {
			t.Helper()
			v, err := s.CustomerVersion(ctx, customer)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		row := func(id string) jobs.ImportedAccount {
			return jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: id, Type: jobs.Admin, Username: id, Welcome: jobs.WelcomePending, State: "active", Options: jobs.Values{}}
		}
		rot := jobs.PasswordRotation{Customer: "acme", Source: "ad", SourceID: "a1", ID: "r1", Attempt: 1, Username: "a1", State: jobs.RotationPending, Target: "Active Directory"}
		writes := []struct {
			name string
			fn   func(tx jobs.Tx) error
		}{
			{"InsertImported", func(tx jobs.Tx) error { return tx.InsertImported(ctx, row("a1"), row("a2"), row("a3")) }},
			{"SetSourceState", func(tx jobs.Tx) error { return tx.SetSourceState(ctx, "acme", "ad", "a1", "disabled") }},
			{"SetWelcome", func(tx jobs.Tx) error { return tx.SetWelcome(ctx, "acme", "ad", "a1", jobs.WelcomeAttempted) }},
			{"SetWelcomeIf", func(tx jobs.Tx) error {
				_, err := tx.SetWelcomeIf(ctx, "acme", "ad", "a2", jobs.WelcomePending, jobs.WelcomeAttempted)
				return err
			}},
			{"SetLinks", func(tx jobs.Tx) error { a := row("a1"); a.VaultRef = "9"; return tx.SetLinks(ctx, a) }},
			{"SetFlags", func(tx jobs.Tx) error { return tx.SetFlags(ctx, "acme", "ad", "a1", jobs.Flags{Rotation: true}) }},
			{"PutAttention", func(tx jobs.Tx) error {
				return tx.PutAttention(ctx, jobs.AccountAttention{Customer: "acme", Source: "ad", SourceID: "n1", Username: "n1", State: jobs.StateAmbiguous},
					jobs.AccountAttention{Customer: "acme", Source: "ad", SourceID: "n2", Username: "n2", State: jobs.StateAmbiguous})
			}},
			{"DeleteAttention", func(tx jobs.Tx) error { return tx.DeleteAttention(ctx, "acme", "ad", "n1") }},
			{"PutDecision", func(tx jobs.Tx) error {
				return tx.PutDecision(ctx, jobs.AccountDecision{Customer: "acme", Source: "ad", SourceID: "n2", Username: "n2", Kind: jobs.DecisionIgnore, Actor: "tech"})
			}},
			{"DeleteDecision", func(tx jobs.Tx) error { return tx.DeleteDecision(ctx, "acme", "ad", "n2") }},
			{"PutCustomer", func(tx jobs.Tx) error { return tx.PutCustomer(ctx, jobs.Customer{ID: "acme", Name: "Acme"}) }},
		}
		for _, w := range writes {
			before := version("acme")
			if err := s.Update(ctx, w.fn); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			if got := version("acme"); got != before+1 {
				t.Errorf("%s: version %d, want %d", w.name, got, before+1)
			}
		}
		if version("other") != 0 {
			t.Errorf("another customer's version moved: %d", version("other"))
		}

		before := version("acme")
		for _, w := range []struct {
			name string
			fn   func(tx jobs.Tx) error
		}{
			{"PutState and AppendAudit", func(tx jobs.Tx) error {
				if err := tx.PutState(ctx, "acme", "last_pass", "1"); err != nil {
					return err
				}
				_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Action: "import.decisions", Customer: "acme"})
				return err
			}},
			{"StartRotation (no import pass reads it)", func(tx jobs.Tx) error { return tx.StartRotation(ctx, rot) }},
			{"UpdateRotation", func(tx jobs.Tx) error {
				next := rot
				next.State = jobs.RotationSet
				return tx.UpdateRotation(ctx, next, jobs.RotationVersion{ID: rot.ID, State: rot.State, Attempt: rot.Attempt})
			}},
			{"SetRotated", func(tx jobs.Tx) error { return tx.SetRotated(ctx, "acme", "ad", "a1", time.Now()) }},
			{"a rolled-back write", func(tx jobs.Tx) error {
				if err := tx.SetSourceState(ctx, "acme", "ad", "a1", "missing"); err != nil {
					return err
				}
				return errors.New("changed my mind")
			}},
		} {
			_ = s.Update(ctx, w.fn)
			if got := version("acme"); got != before {
				t.Errorf("%s: version %d, want %d", w.name, got, before)
			}
		}
	})
}

// TestCopyVersionCountsChanges: a copy's version goes up with each delta
// that changes it, not with a read that only moves its position.
func TestCopyVersionCountsChanges(t *testing.T) {
	check := func(t *testing.T, c sources.CopyStore) {
		ctx := context.Background()
		steps := []struct {
			d    sources.CopyDelta
			want int64
		}{
			{sources.CopyDelta{Full: true, Upserts: []sources.CopyObject{{Kind: "user", ID: "u1", Doc: []byte("1")}}, State: sources.SyncState{Token: []byte("t1")}}, 1},
			{sources.CopyDelta{State: sources.SyncState{Token: []byte("t2")}}, 1},
			{sources.CopyDelta{LinksAdded: []sources.CopyLink{{Group: "g", Member: "u1"}}, State: sources.SyncState{Token: []byte("t3"), Version: 99}}, 2},
			{sources.CopyDelta{State: sources.SyncState{Token: []byte("t4")}}, 2},
			{sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("t5")}}, 3},
		}
		for i, st := range steps {
			if err := c.ApplyCopy(ctx, "acme", "m365", st.d); err != nil {
				t.Fatal(err)
			}
			got, err := c.CopyState(ctx, "acme", "m365")
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != st.want || string(got.Token) != string(st.d.State.Token) {
				t.Errorf("step %d: version %d at %q, want %d at %q", i, got.Version, got.Token, st.want, st.d.State.Token)
			}
		}
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) { check(t, s) })
	t.Run("sourcestest", func(t *testing.T) { check(t, &sourcestest.Copies{}) })
}

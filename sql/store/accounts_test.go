package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func TestAccountStatesAndDecisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		since := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		a := jobs.AccountAttention{Customer: "acme", Source: "ad", SourceID: "g1", Type: jobs.EndUser, Username: "jane", DisplayName: "Jane Doe",
			State: jobs.StateAmbiguous, Reason: "2 entries fit: 11, 12", Since: since}
		d := jobs.AccountDecision{Customer: "acme", Source: "ad", SourceID: "g1", Username: "jane", Kind: jobs.DecisionMatch, VaultRef: "11", PSACreate: true, Actor: "tech", At: since}
		err := s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.PutAttention(ctx, a); err != nil {
				return err
			}
			a2 := a
			a2.SourceID, a2.State, a2.Reason = "g2", jobs.StateHeld, "surge guard"
			if err := tx.PutAttention(ctx, a2); err != nil {
				return err
			}
			a.Reason = "2 entries fit: 11, 13" // an upsert replaces
			if err := tx.PutAttention(ctx, a); err != nil {
				return err
			}
			return tx.PutDecision(ctx, d)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Attention(ctx, "acme")
		if err != nil || len(got) != 2 || got[0] != a || got[1].State != jobs.StateHeld {
			t.Fatalf("attention = %+v, %v", got, err)
		}
		ds, err := s.Decisions(ctx, "acme")
		if err != nil || len(ds) != 1 || ds[0] != d {
			t.Fatalf("decisions = %+v, %v", ds, err)
		}
		if other, _ := s.Attention(ctx, "bravo"); len(other) != 0 {
			t.Fatal("another customer sees acme's accounts")
		}
		err = s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.DeleteAttention(ctx, "acme", "ad", "g2"); err != nil {
				return err
			}
			return tx.DeleteDecision(ctx, "acme", "ad", "g1")
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Attention(ctx, "acme"); len(got) != 1 {
			t.Fatalf("after delete: %+v", got)
		}
		if ds, _ := s.Decisions(ctx, "acme"); len(ds) != 0 {
			t.Fatalf("after delete: %+v", ds)
		}
	})
}

func TestSetLinksAndFlagsOfImportedAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		row := jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: "g1", Type: jobs.EndUser, Username: "jane", VaultIntegration: "IT Glue", VaultRef: "1",
			SelfServe: false, Options: jobs.Values{jobs.SelfServe: false}}
		err := s.Update(ctx, func(tx jobs.Tx) error { return tx.InsertImported(ctx, row) })
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(ctx, func(tx jobs.Tx) error {
			row.VaultRef, row.PSAIntegration, row.PSARef = "9", "ConnectWise PSA", "501"
			if err := tx.SetLinks(ctx, row); err != nil {
				return err
			}
			if err := tx.SetFlags(ctx, "acme", "ad", "g1", jobs.Flags{SelfServe: true}); err != nil {
				return err
			}
			// Setting what is already set finds the row (MySQL counts changed rows only).
			return tx.SetFlags(ctx, "acme", "ad", "g1", jobs.Flags{SelfServe: true})
		})
		if err != nil {
			t.Fatal(err)
		}
		for a, err := range s.ImportedAccounts(ctx, "acme") {
			if err != nil {
				t.Fatal(err)
			}
			if a.VaultRef != "9" || a.PSARef != "501" || !a.SelfServe || a.Options[jobs.SelfServe] {
				t.Fatalf("row = %+v (the options snapshot must not change)", a)
			}
		}
		err = s.Update(ctx, func(tx jobs.Tx) error { return tx.SetFlags(ctx, "acme", "ad", "nobody", jobs.Flags{}) })
		if !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
	})
}

func TestRotationsRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		row := jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: "g1", Type: jobs.Admin, Username: "adm-jane", Options: jobs.Values{}}
		r := jobs.PasswordRotation{Customer: "acme", Source: "ad", SourceID: "g1", ID: "r1", Attempt: 1, Username: "adm-jane", State: jobs.RotationPending, Sealed: "c2VhbGVk",
			Target: "Active Directory", Marker: "2026-10-01T00:00:00Z", VaultIntegration: "IT Glue", VaultRef: "77", StartedAt: at}
		err := s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.InsertImported(ctx, row); err != nil {
				return err
			}
			return tx.StartRotation(ctx, r)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Rotations(ctx, "acme")
		if err != nil || len(got) != 1 || got[0] != r {
			t.Fatalf("rotations = %+v, %v", got, err)
		}
		from := r.Version()
		r.State, r.Sealed, r.SetAt, r.DoneAt = jobs.RotationDone, "", at.Add(time.Second), at.Add(2*time.Second)
		err = s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.UpdateRotation(ctx, r, from); err != nil {
				return err
			}
			return tx.SetRotated(ctx, "acme", "ad", "g1", r.DoneAt)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Rotations(ctx, "acme"); len(got) != 1 || got[0] != r {
			t.Fatalf("after done: %+v", got)
		}
		for a, err := range s.ImportedAccounts(ctx, "acme") {
			if err != nil || !a.LastRotated.Equal(r.DoneAt) {
				t.Fatalf("last rotated = %v, %v", a.LastRotated, err)
			}
		}
	})
}

// TestManyRowsToAStatement writes more rows than one statement takes:
// every row arrives whole, an upsert within a batch replaces, and a
// delete of many rows takes those and no others.
func TestManyRowsToAStatement(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		const n = 450
		var rows []jobs.ImportedAccount
		var need []jobs.AccountAttention
		for i := range n {
			id := fmt.Sprintf("g%03d", i)
			rows = append(rows, jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: id, Type: jobs.EndUser, Username: "user" + id, Email: id + "@acme.test",
				VaultIntegration: "IT Glue", VaultRef: "v" + id, Options: jobs.Values{"vault_create": i%2 == 0}, OptionsOrigin: "policy P", Welcome: jobs.WelcomeAttempted, ImportedAt: at})
			source := "ad"
			if i%3 == 0 {
				source = "m365"
			}
			need = append(need, jobs.AccountAttention{Customer: "acme", Source: source, SourceID: id, Type: jobs.Admin, Username: "adm" + id, State: jobs.StateAmbiguous, Reason: "two fit", Since: at})
		}
		need = append(need, need[7])
		need[len(need)-1].Reason = "replaced"
		err := s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.InsertImported(ctx, rows...); err != nil {
				return err
			}
			return tx.PutAttention(ctx, need...)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := ledger(t, s, "acme")
		if len(got) != n {
			t.Fatalf("%d ledger rows, want %d", len(got), n)
		}
		for i, want := range rows {
			g := got[i]
			if g.SourceID != want.SourceID || g.Username != want.Username || g.Email != want.Email || g.VaultRef != want.VaultRef || g.Options["vault_create"] != (i%2 == 0) ||
				g.Welcome != jobs.WelcomeAttempted || !g.ImportedAt.Equal(at) || g.State != "active" {
				t.Fatalf("ledger row %d = %+v, want %+v", i, g, want)
			}
		}
		var ad, m365 []string
		for _, a := range need[:300] {
			if a.Source == "ad" {
				ad = append(ad, a.SourceID)
			} else {
				m365 = append(m365, a.SourceID)
			}
		}
		err = s.Update(ctx, func(tx jobs.Tx) error {
			if err := tx.DeleteAttention(ctx, "acme", "ad", ad...); err != nil {
				return err
			}
			return tx.DeleteAttention(ctx, "acme", "m365", m365...)
		})
		if err != nil {
			t.Fatal(err)
		}
		left, err := s.Attention(ctx, "acme")
		if err != nil || len(left) != n-300 {
			t.Fatalf("%d accounts need a person after deleting 300 of %d: %v", len(left), n, err)
		}
		for _, a := range left {
			if a.SourceID < "g300" {
				t.Fatalf("%s:%s is left", a.Source, a.SourceID)
			}
		}
	})
}

package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func TestTechVaultEntryAndUpdate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		raw := make([]byte, 32)
		raw[0] = 9
		key, err := secret.NewKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		v := techvault.New(s, key)
		acme := sinks.VaultScope{Customer: "acme", Container: "acme"}
		bravo := sinks.VaultScope{Customer: "bravo", Container: "bravo"}
		jane, err := v.Create(ctx, acme, sinks.NewVaultEntry{Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: "Active Directory", Notes: "Imported by autoimport; password not yet set"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := v.Create(ctx, bravo, sinks.NewVaultEntry{Name: "Bob", Username: "bob", Password: "Bob-Value-1!"})
		if err != nil {
			t.Fatal(err)
		}

		// Read by id: found, another customer's, unknown.
		got, err := s.TechVaultEntry(ctx, "acme", jane.Ref)
		if err != nil || got.ID != jane.Ref || got.Customer != "acme" || got.Username != "jdoe" || got.Category != "Active Directory" || got.Notes != "Imported by autoimport; password not yet set" || got.Sealed != "" || got.CreatedAt.IsZero() {
			t.Fatalf("TechVaultEntry = %+v, %v", got, err)
		}
		if _, err := s.TechVaultEntry(ctx, "acme", bob.Ref); !errors.Is(err, sinks.ErrWrongCustomer) || !strings.Contains(err.Error(), "customer bravo") {
			t.Fatalf("another customer's entry: %v", err)
		}
		if _, err := s.TechVaultEntry(ctx, "acme", "nope"); !errors.Is(err, sinks.ErrNotFound) {
			t.Fatalf("unknown entry: %v", err)
		}
		if e, err := v.Entry(ctx, acme, jane.Ref); err != nil || e != jane {
			t.Fatalf("Entry = %+v, %v", e, err)
		}

		// Set a password: sealed in the database, read back through the key.
		const pw = "Rotated-Välue-1!"
		if err := v.SetPassword(ctx, acme, jane.Ref, pw, "Password set by rotation ✓"); err != nil {
			t.Fatal(err)
		}
		var row struct {
			Sealed    string `db:"sealed"`
			Notes     string `db:"notes"`
			CreatedAt int64  `db:"created_at"`
		}
		if err := s.DB().Get(&row, "SELECT sealed, notes, created_at FROM tech_vault_entries WHERE id = ?", jane.Ref); err != nil {
			t.Fatal(err)
		}
		if row.Sealed == "" || strings.Contains(row.Sealed, pw) || strings.Contains(row.Sealed, "Rotated") {
			t.Fatalf("the database holds %q, not a sealed value", row.Sealed)
		}
		if row.Notes != "Password set by rotation ✓" || row.CreatedAt != got.CreatedAt.UnixMicro() {
			t.Fatalf("row %+v", row)
		}
		if back, err := v.Password(ctx, acme, jane.Ref); err != nil || back != pw {
			t.Fatalf("Password = %q, %v", back, err)
		}

		// An update that changes nothing is not "not found" (MySQL
		// reports no affected row for it).
		same, _ := s.TechVaultEntry(ctx, "acme", jane.Ref)
		if err := s.UpdateTechVaultEntry(ctx, same); err != nil {
			t.Fatalf("unchanged update: %v", err)
		}
		// An update never reaches another customer's entry or a missing one.
		hijack := same
		hijack.ID = bob.Ref
		if err := s.UpdateTechVaultEntry(ctx, hijack); !errors.Is(err, sinks.ErrWrongCustomer) {
			t.Fatalf("update of another customer's entry: %v", err)
		}
		hijack.ID = "nope"
		if err := s.UpdateTechVaultEntry(ctx, hijack); !errors.Is(err, sinks.ErrNotFound) {
			t.Fatalf("update of a missing entry: %v", err)
		}
		if back, err := v.Password(ctx, bravo, bob.Ref); err != nil || back != "Bob-Value-1!" {
			t.Fatalf("bravo's entry changed: %q, %v", back, err)
		}
		if err := v.SetPassword(ctx, acme, bob.Ref, "x-Value-1!", ""); !errors.Is(err, sinks.ErrWrongCustomer) {
			t.Fatalf("SetPassword on another customer's entry: %v", err)
		}
	})
}

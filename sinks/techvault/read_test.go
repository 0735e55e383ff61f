package techvault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
)

// A technician's reading: the listing and an entry's metadata carry no
// password (only whether there is one), the reveal opens it, and another
// customer's entry is refused.
func TestReadingEntries(t *testing.T) {
	ctx := context.Background()
	v := New(NewMemoryStore(), testKey(t, 1))
	jane, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Jane (Active Directory)", Username: "jdoe", Category: "Active Directory", Password: "S3cret-Jane!"})
	if err != nil {
		t.Fatal(err)
	}
	placeholder, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Adm (Active Directory)", Username: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := v.Create(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}, sinks.NewVaultEntry{Name: "Bob", Username: "bob", Password: "bob-pw"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := v.List(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != jane.Ref || !list[0].HasPassword || list[1].HasPassword || list[0].Created.IsZero() {
		t.Fatalf("list: %+v, %v", list, err)
	}
	info, err := v.Info(ctx, "acme", placeholder.Ref)
	if err != nil || info.Username != "adm" || info.HasPassword {
		t.Fatalf("info: %+v, %v", info, err)
	}
	if pw, err := v.Reveal(ctx, "acme", jane.Ref); err != nil || pw != "S3cret-Jane!" {
		t.Fatalf("reveal: %q, %v", pw, err)
	}
	if pw, err := v.Reveal(ctx, "acme", placeholder.Ref); err != nil || pw != "" {
		t.Fatalf("reveal of an entry without a password: %q, %v", pw, err)
	}
	if _, err := v.Reveal(ctx, "acme", bob.Ref); !errors.Is(err, sinks.ErrWrongCustomer) || strings.Contains(err.Error(), "bob-pw") {
		t.Fatalf("another customer's entry: %v", err)
	}
	if _, err := v.Info(ctx, "acme", "0123"); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("an unknown entry: %v", err)
	}
	if _, err := v.List(ctx, ""); err == nil {
		t.Fatal("a listing without a customer")
	}
}

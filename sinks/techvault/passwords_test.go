package techvault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
)

func (f failingStore) TechVaultEntry(context.Context, string, string) (Entry, error) {
	return Entry{}, f.err
}
func (f failingStore) UpdateTechVaultEntry(context.Context, Entry) error { return f.err }

var acmeScope = sinks.VaultScope{Customer: "acme", Container: "acme"}

func TestEntryByID(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	v := New(store, testKey(t, 1))
	jane, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: "Active Directory"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := v.Create(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}, sinks.NewVaultEntry{Name: "Bob", Username: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Gone", Username: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if !store.Delete(gone.Ref) || store.Delete(gone.Ref) {
		t.Fatal("Delete must report the first delete only")
	}
	for _, tt := range []struct {
		name, ref string
		want      sinks.VaultEntry
		is        error
		message   string
	}{
		{name: "found", ref: jane.Ref, want: jane},
		{name: "found with spaces", ref: " " + jane.Ref + " ", want: jane},
		{name: "unknown", ref: "0123", is: sinks.ErrNotFound, message: "read entry 0123: not found: there is no entry 0123"},
		{name: "deleted", ref: gone.Ref, is: sinks.ErrNotFound, message: "there is no entry " + gone.Ref},
		{name: "another customer's", ref: bob.Ref, is: sinks.ErrWrongCustomer, message: "entry " + bob.Ref + " is customer bravo's"},
		{name: "no id", ref: " ", message: "no entry id given"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Entry(ctx, acmeScope, tt.ref)
			if tt.message == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Entry = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.message) || !strings.HasPrefix(err.Error(), "Technician Vault: customer acme: ") {
				t.Fatalf("err = %v, want %q", err, tt.message)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
}

func TestSetPasswordSealedRoundTrip(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	key := testKey(t, 2)
	v := New(store, key)
	e, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Jane", Username: "jdoe", Notes: "Imported by autoimport; password not yet set"})
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := v.Password(ctx, acmeScope, e.Ref); err != nil || pw != "" {
		t.Fatalf("Password of an entry without one = %q, %v", pw, err)
	}
	before, _ := store.TechVaultEntry(ctx, "acme", e.Ref)

	if err := v.SetPassword(ctx, acmeScope, e.Ref, "Rotated-Value-1!", "Password set by rotation"); err != nil {
		t.Fatal(err)
	}
	stored, _ := store.TechVaultEntry(ctx, "acme", e.Ref)
	if stored.Sealed == "" || strings.Contains(stored.Sealed, "Rotated-Value-1!") {
		t.Fatalf("stored value %q is not sealed", stored.Sealed)
	}
	if pt, err := key.OpenFor(stored.Sealed, SealedPlace(stored.Customer, stored.ID)); err != nil || string(pt) != "Rotated-Value-1!" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	if stored.Notes != "Password set by rotation" || stored.Name != before.Name || stored.Username != before.Username || !stored.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("stored %+v, was %+v", stored, before)
	}
	if pw, err := v.Password(ctx, acmeScope, e.Ref); err != nil || pw != "Rotated-Value-1!" {
		t.Fatalf("Password = %q, %v", pw, err)
	}
	// Empty notes keep the note; each seal differs.
	if err := v.SetPassword(ctx, acmeScope, e.Ref, "Rotated-Value-1!", ""); err != nil {
		t.Fatal(err)
	}
	again, _ := store.TechVaultEntry(ctx, "acme", e.Ref)
	if again.Notes != "Password set by rotation" || again.Sealed == stored.Sealed {
		t.Fatalf("second set stored %+v", again)
	}
	// Another key cannot open it, and says so without the value.
	_, err = New(store, testKey(t, 3)).Password(ctx, acmeScope, e.Ref)
	if err == nil || !strings.Contains(err.Error(), "cannot be opened") || strings.Contains(err.Error(), "Rotated-Value-1!") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := New(store, nil).Password(ctx, acmeScope, e.Ref); err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRET_KEY is not set") {
		t.Fatalf("no key: %v", err)
	}
}

func TestSetPasswordRefusals(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	v := New(store, testKey(t, 4))
	bob, err := v.Create(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}, sinks.NewVaultEntry{Name: "Bob", Username: "bob", Password: "Bob-Value-1!"})
	if err != nil {
		t.Fatal(err)
	}
	jane, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: "Jane", Username: "jdoe"})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database is locked")
	for _, tt := range []struct {
		name  string
		vault *Vault
		ref   string
		pw    string
		is    error
		want  string
	}{
		{"another customer's", v, bob.Ref, "New-Value-1!", sinks.ErrWrongCustomer, "is customer bravo's"},
		{"unknown", v, "feed", "New-Value-1!", sinks.ErrNotFound, "there is no entry feed"},
		{"empty password", v, jane.Ref, "", nil, "non-empty valid UTF-8"},
		{"invalid UTF-8", v, jane.Ref, "\xff", nil, "non-empty valid UTF-8"},
		{"no key", New(store, nil), jane.Ref, "New-Value-1!", nil, "AUTOIMPORT_SECRET_KEY is not set"},
		{"store fails", New(failingStore{boom}, testKey(t, 4)), jane.Ref, "New-Value-1!", boom, "database is locked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.vault.SetPassword(ctx, acmeScope, tt.ref, tt.pw, "n")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "Technician Vault: customer acme: set password of entry") {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if strings.Contains(err.Error(), "New-Value-1!") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
	if pw, err := New(store, testKey(t, 4)).Password(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}, bob.Ref); err != nil || pw != "Bob-Value-1!" {
		t.Fatalf("bravo's entry changed: %q, %v", pw, err)
	}
	if e, _ := store.TechVaultEntry(ctx, "acme", jane.Ref); e.Sealed != "" || e.Notes != "" {
		t.Fatalf("a refused set wrote %+v", e)
	}
}

func TestConcurrentSetPassword(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	v := New(store, testKey(t, 5))
	var refs []string
	for i := range 4 {
		e, err := v.Create(ctx, acmeScope, sinks.NewVaultEntry{Name: fmt.Sprint("user", i), Username: fmt.Sprint("user", i)})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, e.Ref)
	}
	var wg sync.WaitGroup
	for i, ref := range refs {
		for j := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := v.SetPassword(ctx, acmeScope, ref, fmt.Sprintf("pw-%d-%d", i, j), ""); err != nil {
					t.Error(err)
				}
				if _, err := v.Password(ctx, acmeScope, ref); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for i, ref := range refs {
		pw, err := v.Password(ctx, acmeScope, ref)
		if err != nil || !strings.HasPrefix(pw, fmt.Sprintf("pw-%d-", i)) {
			t.Errorf("entry %d holds %q, %v", i, pw, err)
		}
	}
}

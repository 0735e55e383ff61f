package techvault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
)

func testKey(t *testing.T, b byte) *secret.Key {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = b
	}
	k, err := secret.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCreateThenIndex(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	key := testKey(t, 7)
	v := New(store, key)
	at := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	v.Now = func() time.Time { return at }
	if v.Name() != "Technician Vault" {
		t.Fatalf("Name() = %q", v.Name())
	}
	scope := sinks.VaultScope{Customer: "acme", Container: "acme"}

	ix, err := v.Index(ctx, scope)
	if err != nil || ix.Len() != 0 {
		t.Fatalf("empty index: %v, %v", ix, err)
	}
	got, err := v.Create(ctx, scope, sinks.NewVaultEntry{
		Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: sinks.CategoryFor("ad"),
		Notes: "imported", Password: "Winter2026!",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ref) != 32 || got.Username != "jdoe" || got.Category != "Active Directory" {
		t.Fatalf("created %+v", got)
	}

	ix, err = v.Index(ctx, scope)
	if err != nil || ix.Len() != 1 {
		t.Fatalf("index after create: len %d, %v", ix.Len(), err)
	}
	m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "JDoe", UPN: "jdoe@acme.example", NetBIOSDomain: "ACME"})
	if m.Outcome != sinks.Matched || m.Entry.Ref != got.Ref {
		t.Fatalf("match = %+v, want the created entry %s", m, got.Ref)
	}

	entries, _ := store.TechVaultEntries(ctx, "acme")
	e := entries[0]
	if e.Sealed == "" || strings.Contains(e.Sealed, "Winter2026!") {
		t.Fatalf("sealed value %q is empty or holds the plaintext", e.Sealed)
	}
	pt, err := key.OpenFor(e.Sealed, SealedPlace(e.Customer, e.ID))
	if err != nil || string(pt) != "Winter2026!" {
		t.Fatalf("open sealed = %q, %v", pt, err)
	}
	if _, err := testKey(t, 8).OpenFor(e.Sealed, SealedPlace(e.Customer, e.ID)); err == nil {
		t.Fatal("sealed value opens with another key")
	}
	if !e.CreatedAt.Equal(at) || e.Customer != "acme" || e.Notes != "imported" || e.ID != got.Ref {
		t.Fatalf("stored entry %+v", e)
	}
	if lists, inserts := store.Calls(); lists != 3 || inserts != 1 {
		t.Fatalf("calls: %d lists, %d inserts; want 3 (two indexes, one check), 1", lists, inserts)
	}
}

func TestNoPasswordIsNotSealed(t *testing.T) {
	store := NewMemoryStore()
	v := New(store, nil) // no key is fine without a password
	if _, err := v.Create(context.Background(), sinks.VaultScope{Customer: "acme"}, sinks.NewVaultEntry{Name: "n", Username: "u", Category: "Office 365"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := store.TechVaultEntries(context.Background(), "acme")
	if len(entries) != 1 || entries[0].Sealed != "" {
		t.Fatalf("entries %+v", entries)
	}
}

func TestMatchingByCategory(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	if err := store.Add(
		Entry{ID: "a1", Customer: "acme", Name: "Jane (AD)", Username: "jdoe", Category: "Active Directory"},
		Entry{ID: "m1", Customer: "acme", Name: "Jane (M365)", Username: "jdoe@acme.example", Category: "Azure AD"},
		Entry{ID: "u1", Customer: "acme", Name: "Bob", Username: "bob", Category: ""},
		Entry{ID: "l1", Customer: "acme", Name: "Carl", Username: "carl", Category: "Local Account"},
		Entry{ID: "o1", Customer: "other", Name: "Jane elsewhere", Username: "jdoe", Category: "Active Directory"},
	); err != nil {
		t.Fatal(err)
	}
	v := New(store, testKey(t, 1))
	ix, err := v.Index(ctx, sinks.VaultScope{Customer: "Acme Corp", Container: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 4 {
		t.Fatalf("index holds %d entries, want the 4 of acme", ix.Len())
	}
	cases := []struct {
		name string
		id   sinks.Identity
		want sinks.MatchOutcome
		ref  string
	}{
		{"ad by sAMAccountName", sinks.Identity{Source: "ad", SAMAccountName: "JDOE"}, sinks.Matched, "a1"},
		{"m365 by UPN in Azure AD category", sinks.Identity{Source: "m365", UPN: "JDoe@acme.example"}, sinks.Matched, "m1"},
		{"m365 ignores the AD category", sinks.Identity{Source: "m365", UPN: "carl@acme.example"}, sinks.NoMatch, ""},
		{"no category is a possible duplicate", sinks.Identity{Source: "ad", SAMAccountName: "bob"}, sinks.PossibleDuplicate, ""},
		{"ad does not take a local account", sinks.Identity{Source: "ad", SAMAccountName: "carl"}, sinks.NoMatch, ""},
		{"unknown user", sinks.Identity{Source: "ad", SAMAccountName: "zed"}, sinks.NoMatch, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := ix.Match(tc.id)
			if m.Outcome != tc.want || m.Entry.Ref != tc.ref {
				t.Fatalf("Match = %s %q (%s), want %s %q", m.Outcome, m.Entry.Ref, m.Reason, tc.want, tc.ref)
			}
		})
	}
}

type failingStore struct{ err error }

func (f failingStore) TechVaultEntries(context.Context, string) ([]Entry, error) { return nil, f.err }
func (f failingStore) InsertTechVaultEntry(context.Context, Entry) error         { return f.err }

func TestErrorsNameTheCustomer(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("database is locked")
	scope := sinks.VaultScope{Customer: "acme", Container: "acme"}
	cases := []struct {
		name  string
		store Store
		key   *secret.Key
		call  func(v *Vault) error
		want  []string
	}{
		{"index", failingStore{boom}, nil, func(v *Vault) error { _, err := v.Index(ctx, scope); return err },
			[]string{"Technician Vault: customer acme: list entries: database is locked"}},
		{"create", failingStore{boom}, testKey(t, 1), func(v *Vault) error {
			_, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "Jane", Username: "jdoe", Password: "TopSecret1"})
			return err
		}, []string{"Technician Vault: customer acme: create entry \"Jane\": database is locked"}},
		{"password without key", NewMemoryStore(), nil, func(v *Vault) error {
			_, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "Jane", Username: "jdoe", Password: "TopSecret1"})
			return err
		}, []string{"customer acme", "AUTOIMPORT_SECRET_KEY is not set"}},
		{"empty entry", NewMemoryStore(), nil, func(v *Vault) error {
			_, err := v.Create(ctx, scope, sinks.NewVaultEntry{Password: "TopSecret1"})
			return err
		}, []string{"customer acme", "needs a name or a username"}},
		{"invalid utf-8", NewMemoryStore(), nil, func(v *Vault) error {
			_, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "J\xffne", Username: "jdoe"})
			return err
		}, []string{"customer acme", "name is not valid UTF-8"}},
		{"no customer", NewMemoryStore(), nil, func(v *Vault) error { _, err := v.Index(ctx, sinks.VaultScope{}); return err },
			[]string{"no customer given"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(New(tc.store, tc.key))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "TopSecret1") {
				t.Errorf("error leaks the password: %v", err)
			}
			if _, failing := tc.store.(failingStore); failing && !errors.Is(err, boom) {
				t.Errorf("error does not wrap the store's error: %v", err)
			}
		})
	}
}

func TestConcurrentCreates(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	v := New(store, testKey(t, 3))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scope := sinks.VaultScope{Customer: []string{"acme", "globex"}[i%2]}
			if _, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "n", Username: "u", Password: "p"}); err != nil {
				t.Error(err)
			}
			if _, err := v.Index(ctx, scope); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if store.Len() != 50 {
		t.Fatalf("store holds %d entries, want 50", store.Len())
	}
	a, _ := store.TechVaultEntries(ctx, "acme")
	if len(a) != 25 {
		t.Fatalf("acme holds %d entries, want 25", len(a))
	}
}

func TestMemoryStoreRefusesDuplicateIDs(t *testing.T) {
	s := NewMemoryStore()
	if err := s.Add(Entry{ID: "x", Customer: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(Entry{ID: "x", Customer: "b"}); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if err := s.Add(Entry{Customer: "b"}); err == nil {
		t.Fatal("empty id accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.TechVaultEntries(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// A password copied from one entry into another (of this customer or
// another) does not open there; one sealed before places existed is
// sealed again for its place by BindSealed, once.
func TestSealedPasswordsAreBoundToTheirEntry(t *testing.T) {
	ctx := context.Background()
	key, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	st := NewMemoryStore()
	v := New(st, key)
	a, err := v.Create(ctx, sinks.VaultScope{Customer: "cedar-law"}, sinks.NewVaultEntry{Name: "Administrator", Username: "Administrator", Password: "cedar-secret"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Create(ctx, sinks.VaultScope{Customer: "acme-dental"}, sinks.NewVaultEntry{Name: "Administrator", Username: "Administrator", Password: "acme-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ea, _ := st.TechVaultEntry(ctx, "cedar-law", a.Ref)
	eb, _ := st.TechVaultEntry(ctx, "acme-dental", b.Ref)
	eb.Sealed = ea.Sealed
	if err := st.UpdateTechVaultEntry(ctx, eb); err != nil {
		t.Fatal(err)
	}
	if pw, err := v.Password(ctx, sinks.VaultScope{Customer: "acme-dental"}, b.Ref); err == nil {
		t.Fatalf("cedar-law's password opened under acme-dental: %q", pw)
	}
	// An entry sealed the old way is bound once, and then opens.
	eb.Sealed = key.Seal([]byte("acme-secret"))
	if err := st.UpdateTechVaultEntry(ctx, eb); err != nil {
		t.Fatal(err)
	}
	if n, err := v.BindSealed(ctx, "acme-dental"); n != 1 || err != nil {
		t.Fatalf("bind: %d %v", n, err)
	}
	if pw, err := v.Password(ctx, sinks.VaultScope{Customer: "acme-dental"}, b.Ref); err != nil || pw != "acme-secret" {
		t.Fatalf("after binding: %q %v", pw, err)
	}
}

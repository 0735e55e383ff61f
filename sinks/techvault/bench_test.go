package techvault

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
)

func TestGenerateEntriesIsDeterministic(t *testing.T) {
	a, b := GenerateEntries("acme", 200, 42), GenerateEntries("acme", 200, 42)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different entries")
	}
	if reflect.DeepEqual(a, GenerateEntries("acme", 200, 43)) {
		t.Fatal("different seeds, same entries")
	}
	store := NewMemoryStore()
	if err := store.Add(a...); err != nil {
		t.Fatal(err)
	}
	ix, err := New(store, nil).Index(context.Background(), sinks.VaultScope{Customer: "acme"})
	if err != nil || ix.Len() != 200 {
		t.Fatalf("index: %v", err)
	}
	categories := map[string]int{}
	for _, e := range a {
		categories[e.Category]++
	}
	if categories[""] == 0 || categories["Active Directory"] == 0 || len(categories) < 4 {
		t.Fatalf("categories not varied: %v", categories)
	}
}

// BenchmarkIndexAndCreate is one run's work for a customer holding 5,000
// entries: index once, then match and create 100 new accounts.
func BenchmarkIndexAndCreate(b *testing.B) {
	ctx := context.Background()
	key := testKeyB(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		store := NewMemoryStore()
		if err := store.Add(GenerateEntries("acme", 5000, 1)...); err != nil {
			b.Fatal(err)
		}
		v := New(store, key)
		scope := sinks.VaultScope{Customer: "acme"}
		b.StartTimer()
		ix, err := v.Index(ctx, scope)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			user := fmt.Sprintf("new%d", i)
			if ix.Match(sinks.Identity{Source: "ad", SAMAccountName: user}).Outcome != sinks.NoMatch {
				b.Fatal("unexpected match")
			}
			e, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: user, Username: user, Category: "Active Directory", Password: "Initial-1"})
			if err != nil {
				b.Fatal(err)
			}
			ix.Add(e)
		}
		if lists, inserts := store.Calls(); lists != 1 || inserts != 100 {
			b.Fatalf("calls: %d lists, %d inserts", lists, inserts)
		}
	}
}

func testKeyB(b *testing.B) *secret.Key {
	k, err := secret.NewKey(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	return k
}

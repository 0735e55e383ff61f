package techvault

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// MemoryStore is an in-memory Store, safe for concurrent use, for tests
// and the sandbox. Entries come back in insertion order.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[string][]Entry // by customer
	ids     map[string]bool

	lists, inserts atomic.Int64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{entries: map[string][]Entry{}, ids: map[string]bool{}}
}

// TechVaultEntries returns a copy of the customer's entries.
func (s *MemoryStore) TechVaultEntries(ctx context.Context, customer string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lists.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.entries[customer]...), nil
}

// InsertTechVaultEntry stores e; an id already present is refused.
func (s *MemoryStore) InsertTechVaultEntry(ctx context.Context, e Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.inserts.Add(1)
	return s.insert(e)
}

func (s *MemoryStore) insert(e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries, s.ids = map[string][]Entry{}, map[string]bool{}
	}
	if e.ID == "" {
		return fmt.Errorf("entry has no id")
	}
	if s.ids[e.ID] {
		return fmt.Errorf("entry id %s already exists", e.ID)
	}
	s.ids[e.ID] = true
	s.entries[e.Customer] = append(s.entries[e.Customer], e)
	return nil
}

// Add seeds entries as they are, e.g. ones made by hand in a test.
func (s *MemoryStore) Add(entries ...Entry) error {
	for _, e := range entries {
		if err := s.insert(e); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of entries held for all customers.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// Calls reports how many listings and inserts the store has served
// (seeding with Add does not count).
func (s *MemoryStore) Calls() (lists, inserts int64) {
	return s.lists.Load(), s.inserts.Load()
}

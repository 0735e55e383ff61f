package techvault

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
)

// TechVaultEntry returns a copy of the customer's entry id.
func (s *MemoryStore) TechVaultEntry(ctx context.Context, customer, id string) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.findLocked(customer, id)
	if err != nil {
		return Entry{}, err
	}
	return s.entries[customer][i], nil
}

// UpdateTechVaultEntry replaces the stored fields of entry e.ID of
// customer e.Customer; its id, customer and creation time stay.
func (s *MemoryStore) UpdateTechVaultEntry(ctx context.Context, e Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.findLocked(e.Customer, e.ID)
	if err != nil {
		return err
	}
	old := &s.entries[e.Customer][i]
	old.Name, old.Username, old.Category, old.Notes, old.Sealed = e.Name, e.Username, e.Category, e.Notes, e.Sealed
	return nil
}

// Delete removes entry id, as a technician deleting it would, and reports
// whether it existed.
func (s *MemoryStore) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ids[id] {
		return false
	}
	delete(s.ids, id)
	for c, es := range s.entries {
		for i := range es {
			if es[i].ID == id {
				s.entries[c] = append(es[:i:i], es[i+1:]...)
				return true
			}
		}
	}
	return true
}

// findLocked returns the position of entry id among the customer's.
func (s *MemoryStore) findLocked(customer, id string) (int, error) {
	for i, e := range s.entries[customer] {
		if e.ID == id {
			return i, nil
		}
	}
	if s.ids[id] {
		for c, es := range s.entries {
			for _, e := range es {
				if e.ID == id {
					return 0, fmt.Errorf("%w: entry %s is customer %s's", sinks.ErrWrongCustomer, id, c)
				}
			}
		}
	}
	return 0, fmt.Errorf("%w: there is no entry %s", sinks.ErrNotFound, id)
}

package store

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
)

// techVaultRow is a tech_vault_entries row.
type techVaultRow struct {
	ID        string `db:"id"`
	Customer  string `db:"customer_id"`
	Name      string `db:"name"`
	Username  string `db:"username"`
	Category  string `db:"category"`
	Notes     string `db:"notes"`
	Sealed    string `db:"sealed"`
	CreatedAt int64  `db:"created_at"`
}

const techVaultCols = "id, customer_id, name, username, category, notes, sealed, created_at"

func (r techVaultRow) entry() techvault.Entry {
	return techvault.Entry{ID: r.ID, Customer: r.Customer, Name: r.Name, Username: r.Username, Category: r.Category, Notes: r.Notes, Sealed: r.Sealed, CreatedAt: time.UnixMicro(r.CreatedAt).UTC()}
}

// TechVaultEntry returns the customer's Technician Vault entry id: an
// error wrapping sinks.ErrNotFound when there is none, or
// sinks.ErrWrongCustomer, naming the owner, when it is another customer's.
func (s *Store) TechVaultEntry(ctx context.Context, customer, id string) (techvault.Entry, error) {
	var r techVaultRow
	err := s.db.GetContext(ctx, &r, "SELECT "+techVaultCols+" FROM tech_vault_entries WHERE id = ?", id)
	if errors.Is(err, dbsql.ErrNoRows) {
		return techvault.Entry{}, fmt.Errorf("%w: there is no entry %s", sinks.ErrNotFound, id)
	}
	if err != nil {
		return techvault.Entry{}, fmt.Errorf("read Technician Vault entry %s of customer %s: %w", id, customer, err)
	}
	if r.Customer != customer {
		return techvault.Entry{}, fmt.Errorf("%w: entry %s is customer %s's", sinks.ErrWrongCustomer, id, r.Customer)
	}
	return r.entry(), nil
}

// UpdateTechVaultEntry replaces the name, username, category, notes and
// sealed value of the customer's entry e.ID; its id, customer and creation
// time stay. The sealed value is stored as it is given: the caller seals.
func (s *Store) UpdateTechVaultEntry(ctx context.Context, e techvault.Entry) error {
	unlock := s.serialize()
	res, err := s.db.ExecContext(ctx, "UPDATE tech_vault_entries SET name = ?, username = ?, category = ?, notes = ?, sealed = ? WHERE id = ? AND customer_id = ?",
		e.Name, e.Username, e.Category, e.Notes, e.Sealed, e.ID, e.Customer)
	unlock()
	if err != nil {
		return fmt.Errorf("update Technician Vault entry %s of customer %s: %w", e.ID, e.Customer, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	// No row changed: MySQL counts a row whose values were already those
	// as unaffected, so tell that apart from a missing or foreign entry.
	_, err = s.TechVaultEntry(ctx, e.Customer, e.ID)
	return err
}

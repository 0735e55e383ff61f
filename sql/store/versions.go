package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// A customer's version counts the transactions that changed what an
// import pass reads of it besides its directories: the ledger, the
// accounts that need a person, the technicians' decisions and the
// customer's own configuration. A rotation's own rows and the time an
// account was last rotated, which no import pass reads, do not count
// (the rotation's writes of accounts that need a person do): three
// transactions per rotated administrator would otherwise wait on the
// customer's version row. Each write method of tx names its
// customer (changed); Update adds one to each such customer's version
// just before it commits, in the same transaction, so a version read
// after the commit covers every change before it, and one read before a
// pass started and again at its end tells that nothing changed between.

// changedCustomer notes that the transaction writes what a customer's version
// covers.
func (t *tx) changedCustomer(customer string) {
	if t.changed == nil {
		t.changed = map[string]bool{}
	}
	t.changed[customer] = true
}

// bumpVersions adds one to the version of each customer the transaction
// changed, in a stable order (two transactions never wait on each
// other's rows in opposite orders).
func (t *tx) bumpVersions(ctx context.Context) error {
	q := "INSERT INTO customer_versions (customer_id, version) VALUES (?, 1) ON CONFLICT (customer_id) DO UPDATE SET version = version + 1"
	if t.s.dialect == MySQL {
		q = "INSERT INTO customer_versions (customer_id, version) VALUES (?, 1) ON DUPLICATE KEY UPDATE version = version + 1"
	}
	for _, c := range slices.Sorted(maps.Keys(t.changed)) {
		if _, err := t.sx.ExecContext(ctx, q, c); err != nil {
			return fmt.Errorf("customer %s: note the change: %w", c, err)
		}
	}
	return nil
}

// CustomerVersion implements jobs.StoreReader: 0 for a customer never
// changed.
func (s *Store) CustomerVersion(ctx context.Context, customer string) (int64, error) {
	return reader{s, s.db}.CustomerVersion(ctx, customer)
}

func (r reader) CustomerVersion(ctx context.Context, customer string) (int64, error) {
	var v int64
	err := r.q.GetContext(ctx, &v, "SELECT version FROM customer_versions WHERE customer_id = ?", customer)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("customer %s: read its version: %w", customer, err)
	}
	return v, nil
}

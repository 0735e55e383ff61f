package store

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

// nowMicros is the database's clock in unix microseconds, as SQL: lease
// expiry is written and compared on one clock, whichever replica asks.
// Both databases keep one value for the whole statement.
func (s *Store) nowMicros() string {
	if s.dialect == MySQL {
		return "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
	}
	return "CAST(unixepoch('subsec') * 1000000 AS INTEGER)"
}

// AcquireLease takes the customer's lease when it is free, has expired on
// the database's clock, or is holder's own already (a new pass of the
// same runner), always under a new token: writes fenced with an earlier
// term's token fail. The conditional UPDATE is atomic, so of two replicas
// racing for one customer exactly one wins.
func (s *Store) AcquireLease(ctx context.Context, customer, holder string, ttl time.Duration) (int64, bool, error) {
	defer s.serialize()()
	ignore := "INSERT OR IGNORE"
	if s.dialect == MySQL {
		ignore = "INSERT IGNORE"
	}
	if _, err := s.db.ExecContext(ctx, ignore+" INTO leases (customer_id, holder, expires_at, token) VALUES (?, '', 0, 0)", customer); err != nil {
		return 0, false, fmt.Errorf("lease customer %s: %w", customer, err)
	}
	now := s.nowMicros()
	// token first: MySQL assigns left to right with the new values.
	res, err := s.db.ExecContext(ctx, "UPDATE leases SET token = token + 1, holder = ?, expires_at = "+now+" + ? WHERE customer_id = ? AND (expires_at < "+now+" OR holder = ?)",
		holder, ttl.Microseconds(), customer, holder)
	if err != nil {
		return 0, false, fmt.Errorf("lease customer %s: %w", customer, err)
	}
	return s.grantedToken(ctx, res, customer, holder)
}

// grantedToken reads the token of a lease an UPDATE just gave holder.
func (s *Store) grantedToken(ctx context.Context, res dbsql.Result, customer, holder string) (int64, bool, error) {
	n, err := res.RowsAffected()
	if err != nil || n != 1 {
		return 0, false, err
	}
	var token int64
	err = s.db.GetContext(ctx, &token, "SELECT token FROM leases WHERE customer_id = ? AND holder = ?", customer, holder)
	if errors.Is(err, dbsql.ErrNoRows) {
		return 0, false, nil // taken over at once
	}
	if err != nil {
		return 0, false, fmt.Errorf("lease customer %s: %w", customer, err)
	}
	return token, true, nil
}

// RenewLease extends holder's lease by ttl from the database's now, if
// holder still has it under token and it has not expired.
func (s *Store) RenewLease(ctx context.Context, customer, holder string, token int64, ttl time.Duration) (bool, error) {
	defer s.serialize()()
	now := s.nowMicros()
	res, err := s.db.ExecContext(ctx, "UPDATE leases SET expires_at = "+now+" + ? WHERE customer_id = ? AND holder = ? AND token = ? AND expires_at >= "+now,
		ttl.Microseconds(), customer, holder, token)
	if err != nil {
		return false, fmt.Errorf("renew lease of customer %s: %w", customer, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LeaseInfo reads who holds the customer's lease and until when, with the
// database's clock.
func (s *Store) LeaseInfo(ctx context.Context, customer string) (jobs.LeaseInfo, error) {
	var row struct {
		Holder  string `db:"holder"`
		Token   int64  `db:"token"`
		Expires int64  `db:"expires_at"`
		Now     int64  `db:"now"`
	}
	err := s.db.GetContext(ctx, &row, "SELECT holder, token, expires_at, "+s.nowMicros()+" AS now FROM leases WHERE customer_id = ?", customer)
	if errors.Is(err, dbsql.ErrNoRows) {
		return jobs.LeaseInfo{}, fmt.Errorf("customer %s has no lease: %w", customer, jobs.ErrNotFound)
	}
	if err != nil {
		return jobs.LeaseInfo{}, fmt.Errorf("read lease of customer %s: %w", customer, err)
	}
	return jobs.LeaseInfo{Holder: row.Holder, Token: row.Token, Expires: fromMicros(row.Expires), Now: fromMicros(row.Now)}, nil
}

// TakeOverLease gives holder the lease that from describes, under a new
// token, if it is still from's: the lease of a holder that is provably
// gone.
func (s *Store) TakeOverLease(ctx context.Context, customer string, from jobs.LeaseInfo, holder string, ttl time.Duration) (int64, bool, error) {
	defer s.serialize()()
	res, err := s.db.ExecContext(ctx, "UPDATE leases SET token = token + 1, holder = ?, expires_at = "+s.nowMicros()+" + ? WHERE customer_id = ? AND holder = ? AND token = ?",
		holder, ttl.Microseconds(), customer, from.Holder, from.Token)
	if err != nil {
		return 0, false, fmt.Errorf("take over lease of customer %s: %w", customer, err)
	}
	return s.grantedToken(ctx, res, customer, holder)
}

// ReleaseLease frees the customer's lease if holder has it under token.
func (s *Store) ReleaseLease(ctx context.Context, customer, holder string, token int64) error {
	defer s.serialize()()
	_, err := s.db.ExecContext(ctx, "UPDATE leases SET expires_at = 0 WHERE customer_id = ? AND holder = ? AND token = ?", customer, holder, token)
	if err != nil {
		return fmt.Errorf("release lease of customer %s: %w", customer, err)
	}
	return nil
}

// HoldLease fails with jobs.ErrLeaseLost unless holder holds the
// customer's lease under token and it has not expired on the database's
// clock. On MySQL the lease row stays share-locked until the transaction
// ends, so no other holder can take the lease before this transaction's
// writes are committed; SQLite has one writer at a time.
func (t *tx) HoldLease(ctx context.Context, customer, holder string, token int64) error {
	lock := ""
	if t.s.dialect == MySQL {
		lock = " LOCK IN SHARE MODE"
	}
	var got int64
	err := t.sx.GetContext(ctx, &got, "SELECT token FROM leases WHERE customer_id = ? AND holder = ? AND token = ? AND expires_at > "+t.s.nowMicros()+lock,
		customer, holder, token)
	if errors.Is(err, dbsql.ErrNoRows) {
		return fmt.Errorf("customer %s: %w", customer, jobs.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("customer %s: check its lease: %w", customer, err)
	}
	return nil
}

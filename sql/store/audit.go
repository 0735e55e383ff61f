package store

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

// The audit log is one hash chain per customer and one for tenant-wide
// events (customer_id ''), each with its head in audit_heads. A write
// transaction keeps its events until fn has run, then locks the heads of
// the chains it appends to, in name order, chains and writes its events
// with one statement per chain, moves the heads and commits: a head is
// locked only for the transaction's own events and its commit, and
// customers' transactions never wait for one another's head.

// Option configures a store when it is opened.
type Option func(*Store)

// WithAuditKey keys the audit chains (see jobs.AuditKey). Without it the
// store writes unkeyed chains, and refuses to extend keyed ones.
func WithAuditKey(k *jobs.AuditKey) Option {
	return func(s *Store) { s.auditKey = k }
}

// AuditKey is the key the store chains audit events with; nil for none.
func (s *Store) AuditKey() *jobs.AuditKey { return s.auditKey }

// AppendAudit adds an event to its customer's chain; it is chained and
// written when the transaction ends (see jobs.Tx).
func (t *tx) AppendAudit(ctx context.Context, e jobs.AuditEvent) (jobs.AuditEvent, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = time.UnixMicro(e.At.UnixMicro()).UTC()
	e.ID, e.Seq, e.PrevHash, e.Hash = 0, 0, "", ""
	if t.pending == nil {
		t.pending = map[string][]jobs.AuditEvent{}
	}
	t.pending[e.Customer] = append(t.pending[e.Customer], e)
	return e, nil
}

// LockChain locks a chain's head at once (see jobs.Tx).
func (t *tx) LockChain(ctx context.Context, customer string) error {
	_, err := t.lockHead(ctx, customer)
	return err
}

// flushAudit chains and writes the transaction's events, chain by chain
// in name order (so that two transactions never wait for each other's
// heads), each chain's events in the order they were appended.
func (t *tx) flushAudit(ctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	if t.s.auditKey == nil {
		if err := t.refuseKeyedLog(ctx); err != nil {
			return err
		}
	}
	for _, customer := range slices.Sorted(maps.Keys(t.pending)) {
		head, err := t.lockHead(ctx, customer)
		if err != nil {
			return err
		}
		key, err := t.s.writeKey(&head)
		if err != nil {
			return err
		}
		events := t.pending[customer]
		for i := range events {
			e := &events[i]
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
			e.Hash = key.Hash(*e)
			head.Seq, head.Hash = e.Seq, e.Hash
		}
		if err := t.insertEvents(ctx, events); err != nil {
			return err
		}
		if _, err := t.sx.ExecContext(ctx, "UPDATE audit_heads SET seq = ?, hash = ?, key_id = ? WHERE customer_id = ?", head.Seq, head.Hash, head.KeyID, customer); err != nil {
			return fmt.Errorf("audit chain %s: move its head: %w", jobs.ChainName(customer), err)
		}
	}
	t.pending = nil
	return nil
}

// refuseKeyedLog stops a process without the key from writing to a log
// that is keyed: it could only add unkeyed chains beside keyed ones.
func (t *tx) refuseKeyedLog(ctx context.Context) error {
	var keyID string
	err := t.sx.GetContext(ctx, &keyID, "SELECT key_id FROM audit_heads WHERE key_id <> '' LIMIT 1")
	switch {
	case errors.Is(err, dbsql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("read the audit heads: %w", err)
	}
	return fmt.Errorf("%w: the audit log is keyed (key id %s) and AUTOIMPORT_SECRET_KEY is not set: set it to the same key to write (nothing was written)", jobs.ErrAuditKey, keyID)
}

// writeKey is the key to extend the head's chain with: the chain's own
// (a process without the key, or with another, may not extend a keyed
// chain); a new chain takes the store's key. An unkeyed chain that holds
// events is not extended by a keyed process: opening the store re-chains
// unkeyed chains under the key, so such a chain was written without the
// key since, or rebuilt by a database writer.
func (s *Store) writeKey(head *jobs.AuditHead) (*jobs.AuditKey, error) {
	switch {
	case head.Keyed():
		return keyForWrite(*head, s.auditKey)
	case s.auditKey == nil:
		return nil, nil
	case head.Seq == 0:
		head.KeyID = s.auditKey.ID()
		return s.auditKey, nil
	}
	return nil, fmt.Errorf("%w: the audit chain %s holds %d unkeyed events although this process has the key: it was written by a process without AUTOIMPORT_SECRET_KEY, or rebuilt by someone who can write the database; `autoimport audit verify` checks it and `autoimport audit rechain` re-chains it under the key (nothing was written)",
		jobs.ErrAuditKey, head.Chain(), head.Seq)
}

func keyForWrite(head jobs.AuditHead, key *jobs.AuditKey) (*jobs.AuditKey, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: the audit chain %s is keyed (key id %s) and AUTOIMPORT_SECRET_KEY is not set: set it to the same key to write (nothing was written)", jobs.ErrAuditKey, head.Chain(), head.KeyID)
	}
	if key.ID() != head.KeyID {
		return nil, fmt.Errorf("%w: the audit chain %s is keyed with another AUTOIMPORT_SECRET_KEY (key id %s; this one's is %s): nothing was written", jobs.ErrAuditKey, head.Chain(), head.KeyID, key.ID())
	}
	return key, nil
}

// lockHead locks a chain's head row and reads it, creating it at the
// genesis when the chain is new. An existing head is locked by one
// locking read of its row (a read that under READ COMMITTED locks no
// gap); a new one is created by an insert-or-lock that takes an exclusive
// lock on that row alone (MySQL: a duplicate primary key under ON
// DUPLICATE KEY UPDATE), so that two transactions starting the same
// chain queue instead of deadlocking, and no other chain's head is
// touched. The reads are locking reads, so they see the latest committed
// head.
func (t *tx) lockHead(ctx context.Context, customer string) (jobs.AuditHead, error) {
	h := jobs.AuditHead{Customer: customer}
	read := func() error {
		return t.sx.QueryRowxContext(ctx, "SELECT seq, hash, key_id FROM audit_heads WHERE customer_id = ?"+t.s.forUpdate(), customer).Scan(&h.Seq, &h.Hash, &h.KeyID)
	}
	err := read()
	if errors.Is(err, dbsql.ErrNoRows) {
		ins := "INSERT INTO audit_heads (customer_id, seq, hash, key_id) VALUES (?, 0, ?, '') ON CONFLICT (customer_id) DO NOTHING"
		if t.s.dialect == MySQL {
			ins = "INSERT INTO audit_heads (customer_id, seq, hash, key_id) VALUES (?, 0, ?, '') ON DUPLICATE KEY UPDATE seq = seq"
		}
		if _, err := t.sx.ExecContext(ctx, ins, customer, jobs.GenesisHash); err != nil {
			return h, fmt.Errorf("audit chain %s: create its head: %w", jobs.ChainName(customer), err)
		}
		err = read()
	}
	if err != nil {
		return h, fmt.Errorf("audit chain %s: lock its head: %w", jobs.ChainName(customer), err)
	}
	return h, nil
}

// auditRowBudget bounds one INSERT of events: rows, and bytes of their
// documents (below MariaDB's default max_allowed_packet of 16 MiB).
const (
	auditRowsPerInsert  = 500
	auditBytesPerInsert = 4 << 20
)

const auditInsertCols = "customer_id, seq, at, actor, action, subject, before_doc, after_doc, prev_hash, hash"

// insertEvents writes chained events in as few statements as the budget
// allows. On SQLite, whose writers take turns, ids continue from the
// largest; on MySQL the column's AUTO_INCREMENT assigns them.
func (t *tx) insertEvents(ctx context.Context, events []jobs.AuditEvent) error {
	var next int64
	if t.s.dialect == SQLite {
		if err := t.sx.GetContext(ctx, &next, "SELECT COALESCE(MAX(id), 0) FROM audit_events"); err != nil {
			return fmt.Errorf("append audit events: %w", err)
		}
	}
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < auditRowsPerInsert && (n == 0 || size < auditBytesPerInsert) {
			e := &events[n]
			size += len(e.Before) + len(e.After) + len(e.Subject) + 256
			n++
		}
		chunk := events[:n]
		events = events[n:]
		var q strings.Builder
		args := make([]any, 0, 11*len(chunk))
		if t.s.dialect == SQLite {
			q.WriteString("INSERT INTO audit_events (id, " + auditInsertCols + ") VALUES ")
		} else {
			q.WriteString("INSERT INTO audit_events (" + auditInsertCols + ") VALUES ")
		}
		for i := range chunk {
			e := &chunk[i]
			if i > 0 {
				q.WriteString(", ")
			}
			if t.s.dialect == SQLite {
				next++
				e.ID = next
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				args = append(args, e.ID)
			} else {
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			}
			args = append(args, e.Customer, e.Seq, e.At.UnixMicro(), e.Actor, e.Action, e.Subject, e.Before, e.After, e.PrevHash, e.Hash)
		}
		if _, err := t.sx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("append %d audit events to the chain %s: %w", len(chunk), jobs.ChainName(chunk[0].Customer), err)
		}
	}
	return nil
}

const auditSelectCols = "id, seq, at, actor, action, customer_id, subject, before_doc, after_doc, prev_hash, hash"

// scanEvents yields the events of a query's rows.
func scanEvents(ctx context.Context, q queryer, what string, query string, args ...any) iter.Seq2[jobs.AuditEvent, error] {
	return func(yield func(jobs.AuditEvent, error) bool) {
		rows, err := q.QueryxContext(ctx, query, args...)
		if err != nil {
			yield(jobs.AuditEvent{}, fmt.Errorf("%s: %w", what, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				yield(jobs.AuditEvent{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(jobs.AuditEvent{}, fmt.Errorf("%s: %w", what, err))
		}
	}
}

type rowScanner interface{ Scan(dest ...any) error }

func scanEvent(r rowScanner) (jobs.AuditEvent, error) {
	var e jobs.AuditEvent
	var at int64
	err := r.Scan(&e.ID, &e.Seq, &at, &e.Actor, &e.Action, &e.Customer, &e.Subject, &e.Before, &e.After, &e.PrevHash, &e.Hash)
	e.At = time.UnixMicro(at).UTC()
	return e, err
}

// AuditEvents streams audit events in id order (the order they were
// written, across chains).
func (s *Store) AuditEvents(ctx context.Context, f jobs.AuditFilter) iter.Seq2[jobs.AuditEvent, error] {
	q := "SELECT " + auditSelectCols + " FROM audit_events WHERE id > ?"
	args := []any{f.AfterID}
	if f.Customer != "" {
		q += " AND customer_id = ?"
		args = append(args, f.Customer)
	}
	if f.Subject != "" {
		q += " AND subject = ?"
		args = append(args, f.Subject)
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return scanEvents(ctx, s.db, "read audit log", q, args...)
}

// AuditChain streams one chain's events in seq order.
func (s *Store) AuditChain(ctx context.Context, customer string) iter.Seq2[jobs.AuditEvent, error] {
	return scanEvents(ctx, s.db, "read audit chain "+jobs.ChainName(customer),
		"SELECT "+auditSelectCols+" FROM audit_events WHERE customer_id = ? AND seq > 0 ORDER BY seq", customer)
}

// AuditChains lists the chains that hold events.
func (s *Store) AuditChains(ctx context.Context) ([]string, error) {
	var out []string
	if err := s.db.SelectContext(ctx, &out, "SELECT DISTINCT customer_id FROM audit_events WHERE seq > 0 ORDER BY customer_id"); err != nil {
		return nil, fmt.Errorf("read audit chains: %w", err)
	}
	return out, nil
}

// AuditHeads lists every chain's head in name order, the tenant chain
// first. It fails while events written before the per-customer chains
// wait to be re-chained.
func (s *Store) AuditHeads(ctx context.Context) ([]jobs.AuditHead, error) {
	if err := s.legacyPending(ctx); err != nil {
		return nil, err
	}
	return s.readHeads(ctx, s.db, "")
}

// AuditHeadsOf lists the heads of the chains of these customers ("" for
// the tenant chain) that exist.
func (s *Store) AuditHeadsOf(ctx context.Context, customers []string) ([]jobs.AuditHead, error) {
	all, err := s.AuditHeads(ctx)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range customers {
		want[c] = true
	}
	return slices.DeleteFunc(all, func(h jobs.AuditHead) bool { return !want[h.Customer] }), nil
}

func (s *Store) readHeads(ctx context.Context, q queryer, lock string) ([]jobs.AuditHead, error) {
	var rows []struct {
		Customer string `db:"customer_id"`
		Seq      int64  `db:"seq"`
		Hash     string `db:"hash"`
		KeyID    string `db:"key_id"`
	}
	if err := q.SelectContext(ctx, &rows, "SELECT customer_id, seq, hash, key_id FROM audit_heads ORDER BY customer_id"+lock); err != nil {
		return nil, fmt.Errorf("read audit heads: %w", err)
	}
	out := make([]jobs.AuditHead, len(rows))
	for i, r := range rows {
		out[i] = jobs.AuditHead{Customer: r.Customer, Seq: r.Seq, Hash: r.Hash, KeyID: r.KeyID}
	}
	return out, nil
}

var _ jobs.AuditLog = (*Store)(nil)

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/msp-tools/autoimport/sources"
)

// The local copies of incremental directory reads (sources.CopyStore).
//
// ApplyCopy writes a read's changes in one transaction with multi-row
// statements, so that a full read of a 100,000-object directory is a few
// hundred statements rather than one round trip per object. Reads page
// through the copy by key, one short query per page, the next page read
// while the consumer works through this one: a consumer that works between
// objects holds no cursor open.

// Batches of ApplyCopy: at most copyBatchRows rows, and about
// copyBatchBytes of documents, per statement (MariaDB's max_allowed_packet
// is 16 MB by default).
const (
	copyBatchRows  = 500
	copyBatchBytes = 4 << 20
)

// Pages of the streaming reads.
const (
	copyObjectPage = 1000
	copyLinkPage   = 5000
)

// CopyState implements sources.CopyStore.
func (s *Store) CopyState(ctx context.Context, customer, source string) (sources.SyncState, error) {
	var row struct {
		Token     []byte `db:"token"`
		FullAt    int64  `db:"full_at"`
		Selection string `db:"selection"`
		Version   int64  `db:"version"`
	}
	err := s.db.GetContext(ctx, &row, "SELECT token, full_at, selection, version FROM directory_copy_state WHERE customer_id = ? AND source = ?", customer, source)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sources.SyncState{}, nil
	case err != nil:
		return sources.SyncState{}, fmt.Errorf("customer %s: read the position of the %s copy: %w", customer, source, err)
	}
	return sources.SyncState{Token: row.Token, FullAt: fromMicros(row.FullAt), Selection: row.Selection, Version: row.Version}, nil
}

// CopyObjects implements sources.CopyStore, in object id order: the
// objects of kinds only, when kinds are given, so that a reader after a
// copy's few groups does not fetch every account's document as well.
func (s *Store) CopyObjects(ctx context.Context, customer, source string, kinds ...string) iter.Seq2[sources.CopyObject, error] {
	type row struct {
		ID   string `db:"object_id"`
		Kind string `db:"kind"`
		Doc  []byte `db:"doc"`
	}
	q := "SELECT object_id, kind, doc FROM directory_copy_objects WHERE customer_id = ? AND source = ? AND object_id > ?"
	if len(kinds) > 0 {
		q += " AND kind IN (" + placeholders(len(kinds)) + ")"
	}
	q += " ORDER BY object_id LIMIT ?"
	rows := readAhead(ctx, copyObjectPage, func(ctx context.Context, last *row) ([]row, error) {
		after := ""
		if last != nil {
			after = last.ID
		}
		args := append(append([]any{customer, source, after}, anys(kinds)...), copyObjectPage)
		var page []row
		if err := s.db.SelectContext(ctx, &page, q, args...); err != nil {
			return nil, fmt.Errorf("customer %s: read the %s copy: %w", customer, source, err)
		}
		return page, nil
	})
	return func(yield func(sources.CopyObject, error) bool) {
		for o, err := range rows {
			if !yield(sources.CopyObject{Kind: o.Kind, ID: o.ID, Doc: o.Doc}, err) || err != nil {
				return
			}
		}
	}
}

// CopyHolds implements sources.CopyStore, a batch of ids at a time.
func (s *Store) CopyHolds(ctx context.Context, customer, source string, ids []string) (map[string]bool, error) {
	held := map[string]bool{}
	for batch := range chunks(ids, copyBatchRows, nil) {
		var found []string
		q := "SELECT object_id FROM directory_copy_objects WHERE " + scope + " AND object_id IN (" + placeholders(len(batch)) + ")"
		if err := s.db.SelectContext(ctx, &found, q, append([]any{customer, source}, anys(batch)...)...); err != nil {
			return nil, fmt.Errorf("customer %s: look objects up in the %s copy: %w", customer, source, err)
		}
		for _, id := range found {
			held[id] = true
		}
	}
	return held, nil
}

// CopyLinks implements sources.CopyStore, in (group, member) order.
func (s *Store) CopyLinks(ctx context.Context, customer, source string) iter.Seq2[sources.CopyLink, error] {
	type row struct {
		Group  string `db:"group_id"`
		Member string `db:"member_id"`
	}
	rows := readAhead(ctx, copyLinkPage, func(ctx context.Context, last *row) ([]row, error) {
		q := "SELECT group_id, member_id FROM directory_copy_links WHERE customer_id = ? AND source = ?"
		args := []any{customer, source}
		if last != nil {
			q += " AND (group_id > ? OR (group_id = ? AND member_id > ?))"
			args = append(args, last.Group, last.Group, last.Member)
		}
		var page []row
		if err := s.db.SelectContext(ctx, &page, q+" ORDER BY group_id, member_id LIMIT ?", append(args, copyLinkPage)...); err != nil {
			return nil, fmt.Errorf("customer %s: read the memberships of the %s copy: %w", customer, source, err)
		}
		return page, nil
	})
	return func(yield func(sources.CopyLink, error) bool) {
		for l, err := range rows {
			if !yield(sources.CopyLink{Group: l.Group, Member: l.Member}, err) || err != nil {
				return
			}
		}
	}
}

// ApplyCopy implements sources.CopyStore: the delta and its state in one
// transaction, in the contract's order (a full delta first empties the
// copy; then deletes with their links, upserts, removed links, added
// links, the state).
func (s *Store) ApplyCopy(ctx context.Context, customer, source string, d sources.CopyDelta) error {
	_, err := s.applyCopy(ctx, customer, source, d)
	return err
}

// applyCopy is ApplyCopy, also saying how many statements it sent.
func (s *Store) applyCopy(ctx context.Context, customer, source string, d sources.CopyDelta) (int, error) {
	defer s.serialize()()
	sx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("customer %s: save the %s copy: begin: %w", customer, source, err)
	}
	defer sx.Rollback()
	w := &copyWriter{s: s, sx: sx, customer: customer, source: source}
	for _, step := range []struct {
		what string
		do   func(context.Context, sources.CopyDelta) error
	}{
		{"empty it for a full read", w.clear},
		{"delete objects", w.deleteObjects},
		{"write objects", w.upsertObjects},
		{"remove memberships", w.removeLinks},
		{"add memberships", w.addLinks},
		{"write its position", w.putState},
	} {
		if err := step.do(ctx, d); err != nil {
			return w.statements, fmt.Errorf("customer %s: save the %s copy: %s: %w", customer, source, step.what, err)
		}
	}
	if err := sx.Commit(); err != nil {
		return w.statements, fmt.Errorf("customer %s: save the %s copy: commit: %w", customer, source, err)
	}
	return w.statements, nil
}

// copyWriter sends one ApplyCopy's statements.
type copyWriter struct {
	s                *Store
	sx               *sqlx.Tx
	customer, source string
	statements       int
}

func (w *copyWriter) exec(ctx context.Context, q string, args ...any) error {
	w.statements++
	_, err := w.sx.ExecContext(ctx, q, args...)
	return err
}

// scope is the WHERE clause of one customer's copy of one source.
const scope = "customer_id = ? AND source = ?"

func (w *copyWriter) clear(ctx context.Context, d sources.CopyDelta) error {
	if !d.Full {
		return nil
	}
	if err := w.exec(ctx, "DELETE FROM directory_copy_links WHERE "+scope, w.customer, w.source); err != nil {
		return err
	}
	if err := w.exec(ctx, "DELETE FROM directory_copy_objects WHERE "+scope, w.customer, w.source); err != nil {
		return err
	}
	if d.Staged == 0 {
		return nil
	}
	// The staged objects become the copy, if they are all the read staged:
	// staging that lost or gained objects on the way fails the read,
	// which the next one repeats in full.
	var staged int
	if err := w.sx.GetContext(ctx, &staged, "SELECT COUNT(*) FROM directory_copy_staged WHERE "+scope, w.customer, w.source); err != nil {
		return err
	}
	if staged != d.Staged {
		return fmt.Errorf("the read staged %d objects, the store holds %d of them: the next read is full again", d.Staged, staged)
	}
	if err := w.exec(ctx, "INSERT INTO directory_copy_objects (customer_id, source, object_id, kind, doc) SELECT customer_id, source, object_id, kind, doc FROM directory_copy_staged WHERE "+scope,
		w.customer, w.source); err != nil {
		return err
	}
	return w.exec(ctx, "DELETE FROM directory_copy_staged WHERE "+scope, w.customer, w.source)
}

func (w *copyWriter) deleteObjects(ctx context.Context, d sources.CopyDelta) error {
	for ids := range chunks(d.Deletes, copyBatchRows, nil) {
		in := placeholders(len(ids))
		args := append([]any{w.customer, w.source}, anys(ids)...)
		for _, q := range []string{
			"DELETE FROM directory_copy_links WHERE " + scope + " AND group_id IN (" + in + ")",
			"DELETE FROM directory_copy_links WHERE " + scope + " AND member_id IN (" + in + ")",
			"DELETE FROM directory_copy_objects WHERE " + scope + " AND object_id IN (" + in + ")",
		} {
			if err := w.exec(ctx, q, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *copyWriter) upsertObjects(ctx context.Context, d sources.CopyDelta) error {
	return w.writeObjects(ctx, "directory_copy_objects", d.Upserts)
}

// writeObjects writes objects into table (the copy, or its staging), an
// object replacing the one of its id.
func (w *copyWriter) writeObjects(ctx context.Context, table string, objects []sources.CopyObject) error {
	onConflict := " ON CONFLICT (customer_id, source, object_id) DO UPDATE SET kind = excluded.kind, doc = excluded.doc"
	if w.s.dialect == MySQL {
		onConflict = " ON DUPLICATE KEY UPDATE kind = VALUES(kind), doc = VALUES(doc)"
	}
	for objs := range chunks(objects, copyBatchRows, func(o sources.CopyObject) int { return len(o.Doc) + len(o.ID) }) {
		args := make([]any, 0, 5*len(objs))
		for _, o := range objs {
			doc := o.Doc
			if doc == nil {
				doc = []byte{}
			}
			args = append(args, w.customer, w.source, o.ID, o.Kind, doc)
		}
		q := "INSERT INTO " + table + " (customer_id, source, object_id, kind, doc) VALUES " + valueRows(len(objs), "(?, ?, ?, ?, ?)") + onConflict
		if err := w.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (w *copyWriter) removeLinks(ctx context.Context, d sources.CopyDelta) error {
	for links := range chunks(d.LinksRemoved, copyBatchRows, nil) {
		args := []any{w.customer, w.source}
		for _, l := range links {
			args = append(args, l.Group, l.Member)
		}
		// MariaDB reads the OR of key pairs as ranges of the primary key;
		// SQLite scans the table for it but looks a row-value IN up.
		q := "DELETE FROM directory_copy_links WHERE " + scope + " AND (group_id, member_id) IN (VALUES " + valueRows(len(links), "(?, ?)") + ")"
		if w.s.dialect == MySQL {
			q = "DELETE FROM directory_copy_links WHERE " + scope + " AND (" + strings.Repeat("(group_id = ? AND member_id = ?) OR ", len(links)-1) + "(group_id = ? AND member_id = ?))"
		}
		if err := w.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (w *copyWriter) addLinks(ctx context.Context, d sources.CopyDelta) error {
	onConflict := " ON CONFLICT (customer_id, source, group_id, member_id) DO NOTHING"
	if w.s.dialect == MySQL {
		onConflict = " ON DUPLICATE KEY UPDATE member_id = VALUES(member_id)"
	}
	for links := range chunks(d.LinksAdded, copyBatchRows, nil) {
		args := make([]any, 0, 4*len(links))
		for _, l := range links {
			args = append(args, w.customer, w.source, l.Group, l.Member)
		}
		q := "INSERT INTO directory_copy_links (customer_id, source, group_id, member_id) VALUES " + valueRows(len(links), "(?, ?, ?, ?)") + onConflict
		if err := w.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (w *copyWriter) putState(ctx context.Context, d sources.CopyDelta) error {
	token := d.State.Token
	if token == nil {
		token = []byte{}
	}
	// The version goes up by one with a delta that changes the copy.
	q := w.s.upsert("directory_copy_state", []string{"customer_id", "source"}, []string{"token", "full_at", "selection", "version"})
	if w.s.dialect == MySQL {
		q = strings.Replace(q, "version = VALUES(version)", "version = version + VALUES(version)", 1)
	} else {
		q = strings.Replace(q, "version = excluded.version", "version = version + excluded.version", 1)
	}
	changed := 0
	if !d.Empty() {
		changed = 1
	}
	return w.exec(ctx, q, w.customer, w.source, token, micros(d.State.FullAt), d.State.Selection, changed)
}

// chunks cuts items into batches of at most rows items and, when size is
// given, about maxBytes of their sizes (one item more than that alone
// makes a batch).
func chunks[T any](items []T, rows int, size func(T) int) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		for len(items) > 0 {
			n, bytes := 0, 0
			for n < len(items) && n < rows {
				if size != nil {
					bytes += size(items[n])
					if bytes > copyBatchBytes && n > 0 {
						break
					}
				}
				n++
			}
			if !yield(items[:n]) {
				return
			}
			items = items[n:]
		}
	}
}

// valueRows repeats one row's placeholders n times, comma-separated.
func valueRows(n int, row string) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// ClearStagedCopy implements sources.CopyStager.
func (s *Store) ClearStagedCopy(ctx context.Context, customer, source string) error {
	defer s.serialize()()
	if _, err := s.db.ExecContext(ctx, "DELETE FROM directory_copy_staged WHERE "+scope, customer, source); err != nil {
		return fmt.Errorf("customer %s: clear what an earlier read of the %s copy staged: %w", customer, source, err)
	}
	return nil
}

// StageCopy implements sources.CopyStager: objs in one transaction.
func (s *Store) StageCopy(ctx context.Context, customer, source string, objs []sources.CopyObject) error {
	if len(objs) == 0 {
		return nil
	}
	defer s.serialize()()
	fail := func(err error) error {
		return fmt.Errorf("customer %s: stage what the full read of the %s copy read: %w", customer, source, err)
	}
	sx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer sx.Rollback()
	w := &copyWriter{s: s, sx: sx, customer: customer, source: source}
	if err := w.writeObjects(ctx, "directory_copy_staged", objs); err != nil {
		return fail(err)
	}
	if err := sx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// StagedCopyObject implements sources.CopyStager.
func (s *Store) StagedCopyObject(ctx context.Context, customer, source, id string) (sources.CopyObject, bool, error) {
	var row struct {
		Kind string `db:"kind"`
		Doc  []byte `db:"doc"`
	}
	err := s.db.GetContext(ctx, &row, "SELECT kind, doc FROM directory_copy_staged WHERE "+scope+" AND object_id = ?", customer, source, id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sources.CopyObject{}, false, nil
	case err != nil:
		return sources.CopyObject{}, false, fmt.Errorf("customer %s: read a staged object of the %s copy: %w", customer, source, err)
	}
	return sources.CopyObject{Kind: row.Kind, ID: id, Doc: row.Doc}, true, nil
}

var _ sources.CopyStager = (*Store)(nil)

package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

// micros is t in unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Rotations lists the customer's administrators' latest rotations.
func (s *Store) Rotations(ctx context.Context, customer string) ([]jobs.PasswordRotation, error) {
	return reader{s, s.db}.Rotations(ctx, customer)
}

type rotationRow struct {
	Customer         string `db:"customer_id"`
	Source           string `db:"source"`
	SourceID         string `db:"source_id"`
	ID               string `db:"rotation_id"`
	Attempt          int    `db:"attempt"`
	Username         string `db:"username"`
	State            string `db:"state"`
	Sealed           string `db:"sealed"`
	Target           string `db:"target"`
	Marker           string `db:"marker"`
	VaultIntegration string `db:"vault_integration"`
	VaultRef         string `db:"vault_ref"`
	StartedAt        int64  `db:"started_at"`
	SetAt            int64  `db:"set_at"`
	DoneAt           int64  `db:"done_at"`
	Error            string `db:"error"`
}

// rotationKeys identify an account's rotation row; rotationValues are
// what a state change writes.
var (
	rotationKeys   = []string{"customer_id", "source", "source_id"}
	rotationValues = []string{"rotation_id", "attempt", "username", "state", "sealed", "target", "marker", "vault_integration", "vault_ref", "started_at", "set_at", "done_at", "error"}
	rotationCols   = strings.Join(append(append([]string{}, rotationKeys...), rotationValues...), ", ")
)

func (r reader) Rotations(ctx context.Context, customer string) ([]jobs.PasswordRotation, error) {
	var rows []rotationRow
	if err := r.q.SelectContext(ctx, &rows, "SELECT "+rotationCols+" FROM rotations WHERE customer_id = ? ORDER BY source, source_id", customer); err != nil {
		return nil, fmt.Errorf("customer %s: read rotations: %w", customer, err)
	}
	out := make([]jobs.PasswordRotation, len(rows))
	for i, x := range rows {
		out[i] = jobs.PasswordRotation{Customer: x.Customer, Source: x.Source, SourceID: x.SourceID, ID: x.ID, Attempt: x.Attempt, Username: x.Username, State: x.State,
			Sealed: x.Sealed, Target: x.Target, Marker: x.Marker, VaultIntegration: x.VaultIntegration, VaultRef: x.VaultRef, StartedAt: fromMicros(x.StartedAt),
			SetAt: fromMicros(x.SetAt), DoneAt: fromMicros(x.DoneAt), Error: x.Error}
	}
	return out, nil
}

func rotationArgs(r jobs.PasswordRotation) []any {
	return []any{r.ID, r.Attempt, r.Username, r.State, r.Sealed, r.Target, r.Marker, r.VaultIntegration, r.VaultRef,
		micros(r.StartedAt), micros(r.SetAt), micros(r.DoneAt), r.Error}
}

// StartRotation records a new rotation of an account whose last one is
// closed (or that has none); jobs.ErrStale when one is open.
func (t *tx) StartRotation(ctx context.Context, r jobs.PasswordRotation) error {
	what := fmt.Sprintf("customer %s: record the rotation of %s:%s (%s)", r.Customer, r.Source, r.SourceID, r.State)
	var prev []struct {
		State string `db:"state"`
		ID    string `db:"rotation_id"`
	}
	if err := t.sx.SelectContext(ctx, &prev, "SELECT state, rotation_id FROM rotations WHERE customer_id = ? AND source = ? AND source_id = ?"+t.s.forUpdate(),
		r.Customer, r.Source, r.SourceID); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(prev) == 0 {
		args := append([]any{r.Customer, r.Source, r.SourceID}, rotationArgs(r)...)
		if _, err := t.sx.ExecContext(ctx, "INSERT INTO rotations ("+rotationCols+") VALUES ("+placeholders(len(args))+")", args...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if (jobs.PasswordRotation{State: prev[0].State}).Open() {
		return fmt.Errorf("%s: rotation %s is still %s: %w", what, prev[0].ID, prev[0].State, jobs.ErrStale)
	}
	return t.updateRotation(ctx, what, r, jobs.RotationVersion{ID: prev[0].ID, State: prev[0].State}, false)
}

// UpdateRotation changes an open rotation's state if it is still the
// version the writer read (id, state, attempt); jobs.ErrStale otherwise.
func (t *tx) UpdateRotation(ctx context.Context, r jobs.PasswordRotation, from jobs.RotationVersion) error {
	what := fmt.Sprintf("customer %s: record the rotation of %s:%s (%s)", r.Customer, r.Source, r.SourceID, r.State)
	return t.updateRotation(ctx, what, r, from, true)
}

func (t *tx) updateRotation(ctx context.Context, what string, r jobs.PasswordRotation, from jobs.RotationVersion, attempt bool) error {
	set := make([]string, len(rotationValues))
	for i, c := range rotationValues {
		set[i] = c + " = ?"
	}
	q := "UPDATE rotations SET " + strings.Join(set, ", ") + " WHERE customer_id = ? AND source = ? AND source_id = ? AND rotation_id = ? AND state = ?"
	args := append(rotationArgs(r), r.Customer, r.Source, r.SourceID, from.ID, from.State)
	if attempt {
		q += " AND attempt = ?"
		args = append(args, from.Attempt)
	}
	res, err := t.sx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Every change moves the state, the attempt or the entry, so a
	// matched row is a changed row on MySQL too.
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%s: it is no longer %s (attempt %d) as this writer read it: %w", what, from.State, from.Attempt, jobs.ErrStale)
	}
	return nil
}

func (t *tx) SetRotated(ctx context.Context, customer, source, sourceID string, at time.Time) error {
	return t.exec1(ctx, "UPDATE imported_accounts SET last_rotated_at = ? WHERE customer_id = ? AND source = ? AND source_id = ?",
		fmt.Sprintf("customer %s: record the rotation of %s:%s", customer, source, sourceID), micros(at), customer, source, sourceID)
}

package store

import (
	"context"
	"fmt"
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

const rotationCols = "customer_id, source, source_id, username, state, sealed, target, marker, vault_integration, vault_ref, started_at, set_at, done_at, error"

func (r reader) Rotations(ctx context.Context, customer string) ([]jobs.PasswordRotation, error) {
	var rows []rotationRow
	if err := r.q.SelectContext(ctx, &rows, "SELECT "+rotationCols+" FROM rotations WHERE customer_id = ? ORDER BY source, source_id", customer); err != nil {
		return nil, fmt.Errorf("customer %s: read rotations: %w", customer, err)
	}
	out := make([]jobs.PasswordRotation, len(rows))
	for i, x := range rows {
		out[i] = jobs.PasswordRotation{Customer: x.Customer, Source: x.Source, SourceID: x.SourceID, Username: x.Username, State: x.State, Sealed: x.Sealed,
			Target: x.Target, Marker: x.Marker, VaultIntegration: x.VaultIntegration, VaultRef: x.VaultRef, StartedAt: fromMicros(x.StartedAt), SetAt: fromMicros(x.SetAt),
			DoneAt: fromMicros(x.DoneAt), Error: x.Error}
	}
	return out, nil
}

func (t *tx) PutRotation(ctx context.Context, r jobs.PasswordRotation) error {
	q := t.s.upsert("rotations", []string{"customer_id", "source", "source_id"},
		[]string{"username", "state", "sealed", "target", "marker", "vault_integration", "vault_ref", "started_at", "set_at", "done_at", "error"})
	_, err := t.sx.ExecContext(ctx, q, r.Customer, r.Source, r.SourceID, r.Username, r.State, r.Sealed, r.Target, r.Marker, r.VaultIntegration, r.VaultRef,
		micros(r.StartedAt), micros(r.SetAt), micros(r.DoneAt), r.Error)
	if err != nil {
		return fmt.Errorf("customer %s: record the rotation of %s:%s (%s): %w", r.Customer, r.Source, r.SourceID, r.State, err)
	}
	return nil
}

func (t *tx) SetRotated(ctx context.Context, customer, source, sourceID string, at time.Time) error {
	return t.exec1(ctx, "UPDATE imported_accounts SET last_rotated_at = ? WHERE customer_id = ? AND source = ? AND source_id = ?",
		fmt.Sprintf("customer %s: record the rotation of %s:%s", customer, source, sourceID), micros(at), customer, source, sourceID)
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

// Attention lists the customer's accounts that need a person.
func (s *Store) Attention(ctx context.Context, customer string) ([]jobs.AccountAttention, error) {
	return reader{s, s.db}.Attention(ctx, customer)
}

// Decisions lists the technicians' decisions about the customer's accounts.
func (s *Store) Decisions(ctx context.Context, customer string) ([]jobs.AccountDecision, error) {
	return reader{s, s.db}.Decisions(ctx, customer)
}

type attentionRow struct {
	Customer    string `db:"customer_id"`
	Source      string `db:"source"`
	SourceID    string `db:"source_id"`
	Type        string `db:"account_type"`
	Username    string `db:"username"`
	DisplayName string `db:"display_name"`
	Email       string `db:"email"`
	State       string `db:"state"`
	Reason      string `db:"reason"`
	Since       int64  `db:"since"`
}

func (r reader) Attention(ctx context.Context, customer string) ([]jobs.AccountAttention, error) {
	var rows []attentionRow
	err := r.q.SelectContext(ctx, &rows, "SELECT customer_id, source, source_id, account_type, username, display_name, email, state, reason, since FROM account_attention WHERE customer_id = ? ORDER BY source, source_id", customer)
	if err != nil {
		return nil, fmt.Errorf("customer %s: read the accounts that need a person: %w", customer, err)
	}
	out := make([]jobs.AccountAttention, len(rows))
	for i, a := range rows {
		out[i] = jobs.AccountAttention{Customer: a.Customer, Source: a.Source, SourceID: a.SourceID, Type: jobs.AccountType(a.Type), Username: a.Username,
			DisplayName: a.DisplayName, Email: a.Email, State: a.State, Reason: a.Reason, Since: time.UnixMicro(a.Since).UTC()}
	}
	return out, nil
}

type decisionRow struct {
	Customer    string `db:"customer_id"`
	Source      string `db:"source"`
	SourceID    string `db:"source_id"`
	Username    string `db:"username"`
	Kind        string `db:"decision"`
	VaultRef    string `db:"vault_ref"`
	VaultCreate bool   `db:"vault_create"`
	PSARef      string `db:"psa_ref"`
	PSACreate   bool   `db:"psa_create"`
	Reason      string `db:"reason"`
	Actor       string `db:"actor"`
	At          int64  `db:"decided_at"`
}

func (r reader) Decisions(ctx context.Context, customer string) ([]jobs.AccountDecision, error) {
	var rows []decisionRow
	err := r.q.SelectContext(ctx, &rows, "SELECT customer_id, source, source_id, username, decision, vault_ref, vault_create, psa_ref, psa_create, reason, actor, decided_at FROM account_decisions WHERE customer_id = ? ORDER BY source, source_id", customer)
	if err != nil {
		return nil, fmt.Errorf("customer %s: read the technicians' decisions: %w", customer, err)
	}
	out := make([]jobs.AccountDecision, len(rows))
	for i, d := range rows {
		out[i] = jobs.AccountDecision{Customer: d.Customer, Source: d.Source, SourceID: d.SourceID, Username: d.Username, Kind: d.Kind,
			VaultRef: d.VaultRef, VaultCreate: d.VaultCreate, PSARef: d.PSARef, PSACreate: d.PSACreate, Reason: d.Reason, Actor: d.Actor, At: time.UnixMicro(d.At).UTC()}
	}
	return out, nil
}

// attentionRowsPerStatement bounds the rows of one statement on
// account_attention.
const attentionRowsPerStatement = 200

// PutAttention records that accounts need a person, many to a statement.
func (t *tx) PutAttention(ctx context.Context, rows ...jobs.AccountAttention) error {
	for _, a := range rows {
		t.changedCustomer(a.Customer)
	}
	cols := []string{"account_type", "username", "display_name", "email", "state", "reason", "since"}
	for from := 0; from < len(rows); from += attentionRowsPerStatement {
		chunk := rows[from:min(from+attentionRowsPerStatement, len(rows))]
		args := make([]any, 0, 10*len(chunk))
		for _, a := range chunk {
			if a.Since.IsZero() {
				a.Since = time.Now()
			}
			args = append(args, a.Customer, a.Source, a.SourceID, string(a.Type), a.Username, a.DisplayName, a.Email, a.State, a.Reason, a.Since.UnixMicro())
		}
		q := t.s.upsertRows("account_attention", []string{"customer_id", "source", "source_id"}, cols, len(chunk))
		if _, err := t.sx.ExecContext(ctx, q, args...); err != nil {
			if len(chunk) == 1 {
				return fmt.Errorf("customer %s: record that %s:%s needs a person: %w", chunk[0].Customer, chunk[0].Source, chunk[0].SourceID, err)
			}
			return fmt.Errorf("customer %s: record that %d accounts need a person: %w", chunk[0].Customer, len(chunk), err)
		}
	}
	return nil
}

// DeleteAttention records that accounts of one source no longer need a
// person. Each row is deleted by its whole key, one statement a row: a
// delete of many keys at once (an IN list) may be run as a scan of the
// customer's rows, which under REPEATABLE READ locks every row it passes,
// other transactions' new rows included.
func (t *tx) DeleteAttention(ctx context.Context, customer, source string, sourceIDs ...string) error {
	t.changedCustomer(customer)
	for _, id := range sourceIDs {
		if _, err := t.sx.ExecContext(ctx, "DELETE FROM account_attention WHERE customer_id = ? AND source = ? AND source_id = ?", customer, source, id); err != nil {
			return fmt.Errorf("customer %s: clear the attention state of %s:%s: %w", customer, source, id, err)
		}
	}
	return nil
}

func (t *tx) PutDecision(ctx context.Context, d jobs.AccountDecision) error {
	t.changedCustomer(d.Customer)
	if d.At.IsZero() {
		d.At = time.Now()
	}
	q := t.s.upsert("account_decisions", []string{"customer_id", "source", "source_id"}, []string{"username", "decision", "vault_ref", "vault_create", "psa_ref", "psa_create", "reason", "actor", "decided_at"})
	_, err := t.sx.ExecContext(ctx, q, d.Customer, d.Source, d.SourceID, d.Username, d.Kind, d.VaultRef, d.VaultCreate, d.PSARef, d.PSACreate, d.Reason, d.Actor, d.At.UnixMicro())
	if err != nil {
		return fmt.Errorf("customer %s: record the decision about %s:%s: %w", d.Customer, d.Source, d.SourceID, err)
	}
	return nil
}

func (t *tx) DeleteDecision(ctx context.Context, customer, source, sourceID string) error {
	t.changedCustomer(customer)
	_, err := t.sx.ExecContext(ctx, "DELETE FROM account_decisions WHERE customer_id = ? AND source = ? AND source_id = ?", customer, source, sourceID)
	if err != nil {
		return fmt.Errorf("customer %s: withdraw the decision about %s:%s: %w", customer, source, sourceID, err)
	}
	return nil
}

// SetLinks changes the vault entry and PSA contact of an imported account.
func (t *tx) SetLinks(ctx context.Context, a jobs.ImportedAccount) error {
	t.changedCustomer(a.Customer)
	return t.exec1(ctx, "UPDATE imported_accounts SET vault_integration = ?, vault_ref = ?, vault_name = ?, psa_integration = ?, psa_ref = ? WHERE customer_id = ? AND source = ? AND source_id = ?",
		fmt.Sprintf("customer %s: re-link %s:%s", a.Customer, a.Source, a.SourceID),
		a.VaultIntegration, a.VaultRef, a.VaultName, a.PSAIntegration, a.PSARef, a.Customer, a.Source, a.SourceID)
}

// SetFlags changes the self-serve and rotation flags of an imported account.
func (t *tx) SetFlags(ctx context.Context, customer, source, sourceID string, f jobs.Flags) error {
	t.changedCustomer(customer)
	return t.exec1(ctx, "UPDATE imported_accounts SET self_serve = ?, rotation = ? WHERE customer_id = ? AND source = ? AND source_id = ?",
		fmt.Sprintf("customer %s: set the flags of %s:%s", customer, source, sourceID), f.SelfServe, f.Rotation, customer, source, sourceID)
}

// exec1 runs an UPDATE that must find its row: no row is jobs.ErrNotFound.
func (t *tx) exec1(ctx context.Context, q, what string, args ...any) error {
	res, err := t.sx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		// MySQL counts changed rows only: tell "not there" from "unchanged".
		var one int
		if err := t.sx.GetContext(ctx, &one, "SELECT 1 FROM imported_accounts WHERE customer_id = ? AND source = ? AND source_id = ?", args[len(args)-3:]...); err != nil {
			return fmt.Errorf("%s: %w", what, jobs.ErrNotFound)
		}
	}
	return nil
}

package store

import (
	"context"
	dbsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/techvault"
)

// queryer is what reads need: the database or a transaction.
type queryer interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	GetContext(ctx context.Context, dest any, query string, args ...any) error
}

// reader implements jobs.StoreReader over the database or a transaction.
type reader struct {
	s *Store
	q queryer
}

// LoadTenant reads the whole tenant.
func (s *Store) LoadTenant(ctx context.Context) (*jobs.Tenant, error) {
	return reader{s, s.db}.LoadTenant(ctx)
}

// ImportedAccounts streams one customer's ledger.
func (s *Store) ImportedAccounts(ctx context.Context, customer string) iter.Seq2[jobs.ImportedAccount, error] {
	return reader{s, s.db}.ImportedAccounts(ctx, customer)
}

// LedgerEntries streams one customer's ledger without the options
// snapshots.
func (s *Store) LedgerEntries(ctx context.Context, customer string) iter.Seq2[jobs.ImportedAccount, error] {
	return reader{s, s.db}.LedgerEntries(ctx, customer)
}

func (r reader) LoadTenant(ctx context.Context) (*jobs.Tenant, error) {
	t := &jobs.Tenant{}
	var ints []struct {
		Kind   string `db:"kind"`
		Config string `db:"config"`
	}
	if err := r.q.SelectContext(ctx, &ints, "SELECT kind, config FROM integrations ORDER BY kind"); err != nil {
		return nil, fmt.Errorf("load integrations: %w", err)
	}
	if len(ints) > 0 {
		obj := map[string]json.RawMessage{}
		for _, i := range ints {
			obj[i.Kind] = json.RawMessage(i.Config)
		}
		b, _ := json.Marshal(obj)
		if err := json.Unmarshal(b, &t.Integrations); err != nil {
			return nil, fmt.Errorf("load integrations: stored config is damaged: %w", err)
		}
	}
	var pols []struct {
		Name        string           `db:"name"`
		Type        string           `db:"account_type"`
		Description string           `db:"description"`
		DefaultFor  dbsql.NullString `db:"default_for"`
		Options     string           `db:"options"`
	}
	if err := r.q.SelectContext(ctx, &pols, "SELECT name, account_type, description, default_for, options FROM import_policies ORDER BY CASE account_type WHEN 'end-user' THEN 0 ELSE 1 END, name"); err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	for _, p := range pols {
		pol := jobs.Policy{Name: p.Name, Type: jobs.AccountType(p.Type), Description: p.Description, Default: p.DefaultFor.Valid}
		var o jobs.OptionSet
		if err := json.Unmarshal([]byte(p.Options), &o); err != nil {
			return nil, fmt.Errorf("load policy %q: stored options are damaged: %w", p.Name, err)
		}
		pol.Options, pol.Numbers = o.Values, o.Numbers
		t.Policies = append(t.Policies, pol)
	}
	var custs []struct {
		ID     string `db:"id"`
		Config string `db:"config"`
	}
	if err := r.q.SelectContext(ctx, &custs, "SELECT id, config FROM customers ORDER BY id"); err != nil {
		return nil, fmt.Errorf("load customers: %w", err)
	}
	var members []struct {
		Customer string `db:"customer_id"`
		Type     string `db:"account_type"`
		Policy   string `db:"policy_name"`
	}
	if err := r.q.SelectContext(ctx, &members, "SELECT customer_id, account_type, policy_name FROM policy_members"); err != nil {
		return nil, fmt.Errorf("load policy members: %w", err)
	}
	var opts []struct {
		Customer string `db:"customer_id"`
		Type     string `db:"account_type"`
		Options  string `db:"options"`
	}
	if err := r.q.SelectContext(ctx, &opts, "SELECT customer_id, account_type, options FROM customer_options"); err != nil {
		return nil, fmt.Errorf("load customer options: %w", err)
	}
	byID := map[string]int{}
	for _, c := range custs {
		var cu jobs.Customer
		if err := json.Unmarshal([]byte(c.Config), &cu); err != nil {
			return nil, fmt.Errorf("load customer %s: stored config is damaged: %w", c.ID, err)
		}
		cu.ID = c.ID
		byID[c.ID] = len(t.Customers)
		t.Customers = append(t.Customers, cu)
	}
	for _, m := range members {
		if i, ok := byID[m.Customer]; ok {
			c := &t.Customers[i]
			if c.Policies == nil {
				c.Policies = map[jobs.AccountType]string{}
			}
			c.Policies[jobs.AccountType(m.Type)] = m.Policy
		}
	}
	for _, o := range opts {
		if i, ok := byID[o.Customer]; ok {
			var set jobs.OptionSet
			if err := json.Unmarshal([]byte(o.Options), &set); err != nil {
				return nil, fmt.Errorf("load customer %s %s options: stored options are damaged: %w", o.Customer, o.Type, err)
			}
			c := &t.Customers[i]
			if c.Options == nil {
				c.Options = map[jobs.AccountType]jobs.Values{}
			}
			c.Options[jobs.AccountType(o.Type)] = set.Values
			if len(set.Numbers) > 0 {
				if c.Numbers == nil {
					c.Numbers = map[jobs.AccountType]jobs.Numbers{}
				}
				c.Numbers[jobs.AccountType(o.Type)] = set.Numbers
			}
		}
	}
	return t, nil
}

type ledgerRow struct {
	jobs.ImportedAccount
	OptionsDoc string `db:"options"`
	ImportedAt int64  `db:"imported_at"`
	LastSeen   int64  `db:"last_seen"`
	WelcomeAt  int64  `db:"welcome_at"`
	Rotated    int64  `db:"last_rotated_at"`
}

const ledgerCols = "customer_id, source, source_id, account_type, username, upn, display_name, email, immutable_id, m365_id, vault_integration, vault_ref, vault_name, psa_integration, psa_ref, self_serve, rotation, m365_sync, options, options_origin, welcome_state, welcome_at, source_state, imported_at, last_seen, last_rotated_at"

// ledgerColsWithoutOptions are the ledger's columns but the options
// snapshot, the largest of a row and the only one that is JSON.
var ledgerColsWithoutOptions = strings.Replace(ledgerCols, " options,", "", 1)

func (r reader) ImportedAccounts(ctx context.Context, customer string) iter.Seq2[jobs.ImportedAccount, error] {
	return r.ledger(ctx, customer, true)
}

func (r reader) LedgerEntries(ctx context.Context, customer string) iter.Seq2[jobs.ImportedAccount, error] {
	return r.ledger(ctx, customer, false)
}

// ledger streams one customer's ledger in (source, id) order, with each
// account's options snapshot when withOptions is set.
func (r reader) ledger(ctx context.Context, customer string, withOptions bool) iter.Seq2[jobs.ImportedAccount, error] {
	cols := ledgerColsWithoutOptions
	if withOptions {
		cols = ledgerCols
	}
	return func(yield func(jobs.ImportedAccount, error) bool) {
		rows, err := r.q.QueryxContext(ctx, "SELECT "+cols+" FROM imported_accounts WHERE customer_id = ? ORDER BY source, source_id", customer)
		if err != nil {
			yield(jobs.ImportedAccount{}, fmt.Errorf("read ledger of customer %s: %w", customer, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var lr ledgerRow
			if err := rows.StructScan(&lr); err != nil {
				yield(jobs.ImportedAccount{}, fmt.Errorf("read ledger of customer %s: %w", customer, err))
				return
			}
			a := lr.ImportedAccount
			if withOptions {
				if err := json.Unmarshal([]byte(lr.OptionsDoc), &a.Options); err != nil {
					yield(jobs.ImportedAccount{}, fmt.Errorf("read ledger of customer %s: account %s: options snapshot is damaged: %w", customer, a.SourceID, err))
					return
				}
			}
			a.ImportedAt = time.UnixMicro(lr.ImportedAt).UTC()
			a.LastSeen = time.UnixMicro(lr.LastSeen).UTC()
			if lr.Rotated != 0 {
				a.LastRotated = time.UnixMicro(lr.Rotated).UTC()
			}
			if !yield(a, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(jobs.ImportedAccount{}, fmt.Errorf("read ledger of customer %s: %w", customer, err))
		}
	}
}

// tx implements jobs.Tx.
type tx struct {
	reader
	sx *sqlx.Tx
	// pending are the audit events appended, by customer, chained and
	// written when fn has run.
	pending map[string][]jobs.AuditEvent
	// changed are the customers whose version the transaction adds one
	// to as it commits (see versions.go).
	changed map[string]bool
}

// Update runs fn in one transaction, then chains and writes the audit
// events fn appended (locking only their chains' heads) and commits.
func (s *Store) Update(ctx context.Context, fn func(jobs.Tx) error) error {
	if err := s.writesBlocked(); err != nil {
		return err
	}
	defer s.serialize()()
	sx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer sx.Rollback()
	t := &tx{reader: reader{s, sx}, sx: sx}
	if err := fn(t); err != nil {
		return err
	}
	if err := t.flushAudit(ctx); err != nil {
		return err
	}
	if err := t.bumpVersions(ctx); err != nil {
		return err
	}
	if err := sx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (t *tx) PutIntegrations(ctx context.Context, in jobs.Integrations) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	for _, kind := range jobs.IntegrationKinds {
		cfg, ok := obj[kind]
		if !ok {
			if _, err := t.sx.ExecContext(ctx, "DELETE FROM integrations WHERE kind = ?", kind); err != nil {
				return fmt.Errorf("delete integration %s: %w", kind, err)
			}
			continue
		}
		if _, err := t.sx.ExecContext(ctx, t.s.upsert("integrations", []string{"kind"}, []string{"config", "updated_at"}), kind, string(cfg), now); err != nil {
			return fmt.Errorf("save integration %s: %w", kind, err)
		}
	}
	return nil
}

func (t *tx) PutPolicy(ctx context.Context, p jobs.Policy) error {
	// One object holds the on/off and the numeric options.
	opts, err := json.Marshal(p.OptionSet())
	if err != nil {
		return fmt.Errorf("save policy %q: %w", p.Name, err)
	}
	var def any
	if p.Default {
		def = string(p.Type)
		// Release the type's default first so the unique index holds.
		if _, err := t.sx.ExecContext(ctx, "UPDATE import_policies SET default_for = NULL WHERE default_for = ? AND name <> ?", def, p.Name); err != nil {
			return fmt.Errorf("save policy %q: %w", p.Name, err)
		}
	}
	_, err = t.sx.ExecContext(ctx, t.s.upsert("import_policies", []string{"name"}, []string{"account_type", "description", "default_for", "options", "updated_at"}),
		p.Name, string(p.Type), p.Description, def, string(opts), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("save policy %q: %w", p.Name, err)
	}
	return nil
}

func nonNil(v jobs.Values) jobs.Values {
	if v == nil {
		return jobs.Values{}
	}
	return v
}

func (t *tx) PutCustomer(ctx context.Context, c jobs.Customer) error {
	t.changedCustomer(c.ID)
	stored := c
	stored.Policies, stored.Options, stored.Numbers = nil, nil, nil
	cfg, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("save customer %s: %w", c.ID, err)
	}
	now := time.Now().UnixMicro()
	if _, err := t.sx.ExecContext(ctx, t.s.upsert("customers", []string{"id"}, []string{"name", "config", "updated_at"})+"", c.ID, c.Name, string(cfg), now); err != nil {
		return fmt.Errorf("save customer %s: %w", c.ID, err)
	}
	// created_at is set once, by the first save.
	if _, err := t.sx.ExecContext(ctx, "UPDATE customers SET created_at = ? WHERE id = ? AND created_at = 0", now, c.ID); err != nil {
		return fmt.Errorf("save customer %s: %w", c.ID, err)
	}
	for _, q := range []string{"DELETE FROM policy_members WHERE customer_id = ?", "DELETE FROM customer_options WHERE customer_id = ?"} {
		if _, err := t.sx.ExecContext(ctx, q, c.ID); err != nil {
			return fmt.Errorf("save customer %s: %w", c.ID, err)
		}
	}
	for typ, name := range c.Policies {
		if name == "" {
			continue
		}
		if _, err := t.sx.ExecContext(ctx, "INSERT INTO policy_members (customer_id, account_type, policy_name) VALUES (?, ?, ?)", c.ID, string(typ), name); err != nil {
			return fmt.Errorf("save customer %s policy: %w", c.ID, err)
		}
	}
	// One row per account type the customer has options of, on/off or
	// numeric, both in one object.
	types := map[jobs.AccountType]bool{}
	for typ := range c.Options {
		types[typ] = true
	}
	for typ := range c.Numbers {
		types[typ] = true
	}
	for typ := range types {
		b, err := json.Marshal(c.OptionSet(typ))
		if err != nil {
			return fmt.Errorf("save customer %s %s options: %w", c.ID, typ, err)
		}
		if _, err := t.sx.ExecContext(ctx, "INSERT INTO customer_options (customer_id, account_type, options) VALUES (?, ?, ?)", c.ID, string(typ), string(b)); err != nil {
			return fmt.Errorf("save customer %s options: %w", c.ID, err)
		}
	}
	return nil
}

// ledgerRowsPerInsert bounds the rows of one INSERT of the ledger (26
// placeholders each).
const ledgerRowsPerInsert = 200

// InsertImported records newly imported accounts, many to a statement.
func (t *tx) InsertImported(ctx context.Context, accounts ...jobs.ImportedAccount) error {
	for _, a := range accounts {
		t.changedCustomer(a.Customer)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", strings.Count(ledgerCols, ",")+1), ", ") + ")"
	for from := 0; from < len(accounts); from += ledgerRowsPerInsert {
		chunk := accounts[from:min(from+ledgerRowsPerInsert, len(accounts))]
		args := make([]any, 0, 26*len(chunk))
		for _, a := range chunk {
			opts, _ := json.Marshal(nonNil(a.Options))
			if a.ImportedAt.IsZero() {
				a.ImportedAt = time.Now()
			}
			if a.LastSeen.IsZero() {
				a.LastSeen = a.ImportedAt
			}
			if a.Welcome == "" {
				a.Welcome = "none"
			}
			if a.State == "" {
				a.State = "active"
			}
			args = append(args, a.Customer, a.Source, a.SourceID, string(a.Type), a.Username, a.UPN, a.DisplayName, a.Email, a.ImmutableID, a.M365ID,
				a.VaultIntegration, a.VaultRef, a.VaultName, a.PSAIntegration, a.PSARef, a.SelfServe, a.Rotation, a.M365Sync,
				string(opts), a.OptionsOrigin, a.Welcome, 0, a.State, a.ImportedAt.UnixMicro(), a.LastSeen.UnixMicro(), micros(a.LastRotated))
		}
		q := "INSERT INTO imported_accounts (" + ledgerCols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", len(chunk)), ", ")
		if _, err := t.sx.ExecContext(ctx, q, args...); err != nil {
			if len(chunk) == 1 {
				a := chunk[0]
				return fmt.Errorf("record imported account %s/%s of customer %s: %w", a.Source, a.SourceID, a.Customer, err)
			}
			return fmt.Errorf("record %d imported accounts of customer %s: %w", len(chunk), chunk[0].Customer, err)
		}
	}
	return nil
}

var _ jobs.Store = (*Store)(nil)

func (t *tx) SetSourceState(ctx context.Context, customer, source, sourceID, state string) error {
	t.changedCustomer(customer)
	_, err := t.sx.ExecContext(ctx, "UPDATE imported_accounts SET source_state = ?, last_seen = ? WHERE customer_id = ? AND source = ? AND source_id = ?", state, time.Now().UnixMicro(), customer, source, sourceID)
	if err != nil {
		return fmt.Errorf("customer %s: record state of %s/%s: %w", customer, source, sourceID, err)
	}
	return nil
}

func (t *tx) SetWelcome(ctx context.Context, customer, source, sourceID, state string) error {
	t.changedCustomer(customer)
	_, err := t.sx.ExecContext(ctx, "UPDATE imported_accounts SET welcome_state = ?, welcome_at = ? WHERE customer_id = ? AND source = ? AND source_id = ?", state, time.Now().UnixMicro(), customer, source, sourceID)
	if err != nil {
		return fmt.Errorf("customer %s: record welcome email of %s/%s: %w", customer, source, sourceID, err)
	}
	return nil
}

func (t *tx) SetWelcomeIf(ctx context.Context, customer, source, sourceID, from, to string) (bool, error) {
	t.changedCustomer(customer)
	res, err := t.sx.ExecContext(ctx, "UPDATE imported_accounts SET welcome_state = ?, welcome_at = ? WHERE customer_id = ? AND source = ? AND source_id = ? AND welcome_state = ?",
		to, time.Now().UnixMicro(), customer, source, sourceID, from)
	if err != nil {
		return false, fmt.Errorf("customer %s: record welcome email of %s/%s: %w", customer, source, sourceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("customer %s: record welcome email of %s/%s: %w", customer, source, sourceID, err)
	}
	return n == 1, nil
}

// State reads a small per-customer value; "" when there is none.
func (s *Store) State(ctx context.Context, customer, name string) (string, error) {
	return reader{s, s.db}.State(ctx, customer, name)
}

func (r reader) State(ctx context.Context, customer, name string) (string, error) {
	var v string
	err := r.q.GetContext(ctx, &v, "SELECT value FROM sync_state WHERE customer_id = ? AND name = ?", customer, name)
	if errors.Is(err, dbsql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (t *tx) PutState(ctx context.Context, customer, name, value string) error {
	_, err := t.sx.ExecContext(ctx, t.s.upsert("sync_state", []string{"customer_id", "name"}, []string{"value"}), customer, name, value)
	return err
}

// StartRun records the start of a run.
func (s *Store) StartRun(ctx context.Context, at time.Time) (int64, error) {
	defer s.serialize()()
	res, err := s.db.ExecContext(ctx, "INSERT INTO runs (started_at, status, summary) VALUES (?, 'running', '')", at.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return res.LastInsertId()
}

// FinishRun records the end of a run with its summary.
func (s *Store) FinishRun(ctx context.Context, id int64, at time.Time, status, summary string) error {
	defer s.serialize()()
	_, err := s.db.ExecContext(ctx, "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?", at.UnixMicro(), status, summary, id)
	if err != nil {
		return fmt.Errorf("record run %d: %w", id, err)
	}
	return nil
}

// TechVaultEntries lists a customer's Technician Vault entries.
func (s *Store) TechVaultEntries(ctx context.Context, customer string) ([]techvault.Entry, error) {
	var rows []techVaultRow
	if err := s.db.SelectContext(ctx, &rows, "SELECT "+techVaultCols+" FROM tech_vault_entries WHERE customer_id = ? ORDER BY created_at, id", customer); err != nil {
		return nil, fmt.Errorf("list Technician Vault entries of customer %s: %w", customer, err)
	}
	out := make([]techvault.Entry, len(rows))
	for i, r := range rows {
		out[i] = r.entry()
	}
	return out, nil
}

// InsertTechVaultEntry stores a Technician Vault entry.
func (s *Store) InsertTechVaultEntry(ctx context.Context, e techvault.Entry) error {
	defer s.serialize()()
	_, err := s.db.ExecContext(ctx, "INSERT INTO tech_vault_entries (id, customer_id, name, username, category, notes, sealed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.ID, e.Customer, e.Name, e.Username, e.Category, e.Notes, e.Sealed, e.CreatedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("store Technician Vault entry of customer %s: %w", e.Customer, err)
	}
	return nil
}

var _ techvault.Store = (*Store)(nil)

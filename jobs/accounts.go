package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
)

// Accounts is the technician's side of a customer's accounts: what
// autoimport knows of them (imported, and those that need a person) and
// the actions a person takes — manual matching, exclusions, and roll-out
// of flags and welcome emails to accounts already imported. Every action
// takes the customer's lease, so it never interleaves with an import of
// the same customer, has a dry run, and is audited.
type Accounts struct {
	Store     Store
	Connector Connector
	Log       logrus.FieldLogger
	// Actor is recorded in audit events and decisions.
	Actor string
	// TechVault reads the Technician Vault (vault list, show, reveal).
	TechVault TechVaultReader
	// Holder names the lease holder (a new unique name when empty).
	Holder   string
	LeaseTTL time.Duration
	Now      func() time.Time
}

func (a *Accounts) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *Accounts) actor() string {
	if a.Actor != "" {
		return a.Actor
	}
	return "autoimport"
}

func (a *Accounts) log() logrus.FieldLogger {
	if a.Log != nil {
		return a.Log
	}
	return logrus.StandardLogger()
}

// AccountRow is one account autoimport knows for a customer, as `accounts
// list` shows it.
type AccountRow struct {
	Source      string      `json:"source"`
	ID          string      `json:"id"`
	Username    string      `json:"username"`
	UPN         string      `json:"upn,omitempty"`
	DisplayName string      `json:"display_name,omitempty"`
	Email       string      `json:"email,omitempty"`
	Type        AccountType `json:"type"`
	State       string      `json:"state"`
	// Reason says why a person is needed, or why the account is ignored,
	// disabled or missing, or never rotated.
	Reason           string `json:"reason,omitempty"`
	VaultIntegration string `json:"vault_integration,omitempty"`
	VaultRef         string `json:"vault_ref,omitempty"`
	VaultName        string `json:"vault_name,omitempty"`
	PSAIntegration   string `json:"psa_integration,omitempty"`
	PSARef           string `json:"psa_ref,omitempty"`
	Welcome          string `json:"welcome,omitempty"`
	Flags            *Flags `json:"flags,omitempty"`
	// Options and OptionsOrigin are the snapshot an imported account was
	// imported under.
	Options       Values    `json:"options,omitempty"`
	OptionsOrigin string    `json:"options_origin,omitempty"`
	ImportedAt    time.Time `json:"imported_at,omitzero"`
	LastSeen      time.Time `json:"last_seen,omitzero"`
	// Decision is a technician's match or exclusion, when there is one.
	Decision *AccountDecision `json:"decision,omitempty"`
	// LastRotated and Rotation are an administrator's last rotation and
	// the state of its latest one.
	LastRotated time.Time `json:"last_rotated,omitzero"`
	Rotation    string    `json:"rotation_state,omitempty"`
	// RotationBlocked says why an administrator is never rotated whatever
	// its ledger flag: autoimport signs in as it (Flags then show rotation
	// off).
	RotationBlocked string `json:"rotation_blocked,omitempty"`

	imported *ImportedAccount
}

// noteRotationBlocked shows an administrator autoimport signs in as with
// rotation off and why; the ledger's flag is left as it is.
func (r *AccountRow) noteRotationBlocked(why string) {
	if why == "" {
		return
	}
	r.RotationBlocked = why
	f := *r.Flags
	f.Rotation = false
	r.Flags = &f
	if r.Reason == "" {
		r.Reason = "rotation off: " + why
	}
}

// Subject is how audit events name the account: "ad:<id>".
func (r *AccountRow) Subject() string { return r.Source + ":" + r.ID }

// AccountFilter narrows a listing; empty fields keep everything.
type AccountFilter struct {
	Type   AccountType
	State  string
	Source string
}

// CheckAccountFilter refuses a filter value that no account can have.
func CheckAccountFilter(f AccountFilter) error {
	if f.State != "" && !slices.Contains(AccountStates, f.State) {
		return &UsageError{Msg: fmt.Sprintf("unknown state %q: want one of %s", f.State, strings.Join(AccountStates, ", "))}
	}
	if f.Source != "" && f.Source != "ad" && f.Source != "m365" {
		return &UsageError{Msg: fmt.Sprintf("unknown source %q: want ad or m365", f.Source)}
	}
	if f.Type != "" && f.Type != EndUser && f.Type != Admin {
		return &UsageError{Msg: fmt.Sprintf("unknown account type %q: want end-user or admin", f.Type)}
	}
	return nil
}

func (a *Accounts) customer(ctx context.Context, id string) (*Tenant, Customer, error) {
	t, err := a.Store.LoadTenant(ctx)
	if err != nil {
		return nil, Customer{}, err
	}
	c, ok := t.Customer(id)
	if !ok {
		return nil, Customer{}, &UsageError{Msg: fmt.Sprintf("no customer %q (autoimport customer list shows them)", id)}
	}
	return t, c, nil
}

// List returns every account autoimport knows for the customer that the
// filter keeps: those that need a person first, then the imported ones.
func (a *Accounts) List(ctx context.Context, customer string, f AccountFilter) ([]AccountRow, error) {
	if err := CheckAccountFilter(f); err != nil {
		return nil, err
	}
	_, rows, err := a.customerRows(ctx, customer)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		if (f.Type == "" || r.Type == f.Type) && (f.State == "" || r.State == f.State) && (f.Source == "" || r.Source == f.Source) {
			out = append(out, r)
		}
	}
	return out, nil
}

// rows joins the ledger, the accounts that need a person and the
// decisions into one row per account.
func (a *Accounts) rows(ctx context.Context, t *Tenant, c Customer) ([]AccountRow, error) {
	customer := c.ID
	signsIn := loadCredentialUses(ctx, a.Store, t, c, secretsOf(a.Connector))
	var lastPass time.Time
	if v, err := a.Store.State(ctx, customer, stateLastPass); err != nil {
		return nil, err
	} else if us, err := strconv.ParseInt(v, 10, 64); err == nil {
		lastPass = time.UnixMicro(us).UTC()
	}
	attention, err := a.Store.Attention(ctx, customer)
	if err != nil {
		return nil, err
	}
	decisions, err := a.Store.Decisions(ctx, customer)
	if err != nil {
		return nil, err
	}
	att := map[string]AccountAttention{}
	for _, x := range attention {
		att[x.Source+":"+x.SourceID] = x
	}
	dec := map[string]AccountDecision{}
	for _, d := range decisions {
		dec[d.Source+":"+d.SourceID] = d
	}
	rotations, err := a.Store.Rotations(ctx, customer)
	if err != nil {
		return nil, err
	}
	rot := map[string]PasswordRotation{}
	for _, x := range rotations {
		rot[x.Source+":"+x.SourceID] = x
	}
	var out []AccountRow
	seen := map[string]bool{}
	for l, err := range a.Store.ImportedAccounts(ctx, customer) {
		if err != nil {
			return nil, err
		}
		r := AccountRow{Source: l.Source, ID: l.SourceID, Username: l.Username, UPN: l.UPN, DisplayName: l.DisplayName, Email: l.Email, Type: l.Type,
			State: StateImported, VaultIntegration: l.VaultIntegration, VaultRef: l.VaultRef, VaultName: l.VaultName, PSAIntegration: l.PSAIntegration,
			PSARef: l.PSARef, Welcome: l.Welcome, Flags: &Flags{SelfServe: l.SelfServe, Rotation: l.Rotation, M365Sync: l.M365Sync},
			Options: l.Options, OptionsOrigin: l.OptionsOrigin, ImportedAt: l.ImportedAt, LastSeen: l.LastSeen}
		switch l.State {
		case "disabled":
			r.State, r.Reason = StateDisabled, "disabled in its source: nothing was changed in any vault or PSA"
		case "missing":
			r.State, r.Reason = StateMissing, "no longer in its source: nothing was deleted in any vault or PSA"
		default:
			if lastPass.After(r.LastSeen) {
				r.LastSeen = lastPass
			}
		}
		if x, ok := att[r.Subject()]; ok && r.State == StateImported {
			r.State, r.Reason = x.State, x.Reason
		}
		if d, ok := dec[r.Subject()]; ok {
			r.Decision = &d
		}
		r.LastRotated = l.LastRotated
		if l.Type == Admin {
			r.noteRotationBlocked(signsIn.forAccount(l))
		}
		if x, ok := rot[r.Subject()]; ok {
			r.Rotation = x.State
			if x.State == RotationSet && r.Reason == "" {
				r.Reason = fmt.Sprintf("password changed in %s on %s, vault not yet updated (autoimport accounts password reads it)", x.Target, x.SetAt.Format(time.DateOnly))
			}
		}
		l := l
		r.imported = &l
		seen[r.Subject()] = true
		out = append(out, r)
	}
	for _, x := range attention {
		k := x.Source + ":" + x.SourceID
		if seen[k] {
			continue
		}
		seen[k] = true
		r := AccountRow{Source: x.Source, ID: x.SourceID, Username: x.Username, DisplayName: x.DisplayName, Email: x.Email, Type: x.Type,
			State: x.State, Reason: x.Reason, LastSeen: lastPass}
		if x.State == StateIgnored {
			// Seen only while it was ignored, and ignored no more: it
			// waits, as a held account does, for the next run to plan it.
			r.State, r.Reason = StateHeld, "seen while it was ignored, and no longer ignored: the next run imports it as its options say"
		}
		if d, ok := dec[k]; ok {
			r.Decision = &d
			if d.Kind == DecisionMatch {
				r.Reason += "; " + matchSummary(d) + ": imported by the next run"
			}
		}
		out = append(out, r)
	}
	for _, d := range decisions {
		k := d.Source + ":" + d.SourceID
		if seen[k] || d.Kind != DecisionIgnore {
			continue
		}
		d := d
		out = append(out, AccountRow{Source: d.Source, ID: d.SourceID, Username: d.Username, State: StateIgnored, Reason: ignoredReason(d), Decision: &d})
	}
	// Ignored wins over an attention state left before the exclusion.
	for i := range out {
		if d := out[i].Decision; d != nil && d.Kind == DecisionIgnore && out[i].imported == nil {
			out[i].State, out[i].Reason = StateIgnored, ignoredReason(*d)
		}
	}
	slices.SortStableFunc(out, func(x, y AccountRow) int {
		if c := slices.Index(AccountStates, x.State) - slices.Index(AccountStates, y.State); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(x.Username), strings.ToLower(y.Username))
	})
	return out, nil
}

func matchSummary(d AccountDecision) string {
	var parts []string
	switch {
	case d.VaultRef != "":
		parts = append(parts, "vault entry "+d.VaultRef)
	case d.VaultCreate:
		parts = append(parts, "a new vault entry")
	}
	switch {
	case d.PSARef != "":
		parts = append(parts, "PSA contact "+d.PSARef)
	case d.PSACreate:
		parts = append(parts, "a new PSA contact")
	}
	return fmt.Sprintf("%s chose %s on %s", d.Actor, strings.Join(parts, " and "), d.At.Format(time.DateOnly))
}

// find picks the account a technician named: "ad:<id>", "m365:<id>", a
// username or a UPN. A name that fits several accounts is refused with
// them listed.
func find(rows []AccountRow, customer, name string) (*AccountRow, error) {
	if src, id, ok := strings.Cut(name, ":"); ok && (src == "ad" || src == "m365") {
		for i := range rows {
			if rows[i].Source == src && strings.EqualFold(rows[i].ID, id) {
				return &rows[i], nil
			}
		}
		return nil, fmt.Errorf("customer %s: no account %s is known (autoimport accounts list --customer %s): %w", customer, name, customer, ErrNotFound)
	}
	var hits []*AccountRow
	for i := range rows {
		r := &rows[i]
		if strings.EqualFold(r.Username, name) || (r.UPN != "" && strings.EqualFold(r.UPN, name)) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("customer %s: no account named %q is known (autoimport accounts list --customer %s): %w", customer, name, customer, ErrNotFound)
	case 1:
		return hits[0], nil
	}
	cands := make([]string, len(hits))
	for i, h := range hits {
		cands[i] = fmt.Sprintf("%s (%s, %s, %s)", h.Subject(), h.Username, h.Type, h.State)
	}
	return nil, &UsageError{Msg: fmt.Sprintf("customer %s: %q names %d accounts: %s; name one as source:id", customer, name, len(hits), strings.Join(cands, ", "))}
}

// account finds one account of a customer by the name a technician gave.
func (a *Accounts) account(ctx context.Context, customer, name string) (*AccountRow, error) {
	_, rows, err := a.customerRows(ctx, customer)
	if err != nil {
		return nil, err
	}
	return find(rows, customer, name)
}

// customerRows reads a customer's tenant entry and every account
// autoimport knows for it.
func (a *Accounts) customerRows(ctx context.Context, customer string) (*Tenant, []AccountRow, error) {
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, nil, err
	}
	rows, err := a.rows(ctx, t, c)
	if err != nil {
		return nil, nil, err
	}
	return t, rows, nil
}

// AccountDetail is everything autoimport knows of one account.
type AccountDetail struct {
	AccountRow
	History []AuditEvent `json:"history"`
}

// Show returns one account with its audit history.
func (a *Accounts) Show(ctx context.Context, customer, name string) (*AccountDetail, error) {
	r, err := a.account(ctx, customer, name)
	if err != nil {
		return nil, err
	}
	d := &AccountDetail{AccountRow: *r, History: []AuditEvent{}}
	for e, err := range a.Store.AuditEvents(ctx, AuditFilter{Customer: customer, Subject: r.Subject()}) {
		if err != nil {
			return nil, err
		}
		d.History = append(d.History, e)
	}
	return d, nil
}

// ErrImportRunning is returned when an import of the customer holds its
// lease.
var ErrImportRunning = errors.New("an import is running")

// locked runs fn under the customer's lease, refusing while an import (or
// another technician's action) holds it; fn writes through update with
// that lease. A dry run writes nothing and takes no lease (fn gets nil).
func (a *Accounts) locked(ctx context.Context, customer string, dryRun bool, fn func(l *Lease) error) error {
	if dryRun {
		return fn(nil)
	}
	holder := a.Holder
	if holder == "" {
		holder = newHolderName()
	}
	l, err := AcquireLease(ctx, a.Store, customer, holder, a.LeaseTTL, a.log())
	var held *ErrLeaseHeld
	if errors.As(err, &held) {
		return fmt.Errorf("an import of %s is running (%v): %w", customer, held, ErrImportRunning)
	}
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	if err := fn(l); err != nil {
		return err
	}
	return l.Lost()
}

// update writes fn's changes in one transaction fenced by the customer's
// lease (see fenced).
func (a *Accounts) update(ctx context.Context, l *Lease, fn func(tx Tx) error) error {
	return fenced(ctx, a.Store, l, fn)
}

// audit writes one event about an account in tx.
func (a *Accounts) audit(ctx context.Context, tx Tx, customer, action, subject string, before, after any) error {
	_, err := tx.AppendAudit(ctx, AuditEvent{At: a.now(), Actor: a.actor(), Action: action, Customer: customer, Subject: subject, Before: doc(before), After: doc(after)})
	return err
}

// vaultOf is the vault an account's type goes to for the customer.
func vaultOf(conn *Connections, typ AccountType) (sinks.Vault, sinks.VaultScope) {
	return conn.Vaults[typ], conn.VaultScope[typ]
}

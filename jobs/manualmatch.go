package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/msp-tools/autoimport/sinks"
)

// entryReader reads one vault entry by id: it must exist and belong to the
// scope's organization or company.
type entryReader interface {
	Entry(ctx context.Context, scope sinks.VaultScope, ref string) (sinks.VaultEntry, error)
}

// contactReader reads one PSA contact by id, in the scope's company.
type contactReader interface {
	Contact(ctx context.Context, scope sinks.PSAScope, ref string) (sinks.Contact, error)
}

// MatchRequest is a technician's Manual Matching choice for one account:
// an existing vault entry or a new one, and optionally a PSA contact or a
// new one.
type MatchRequest struct {
	VaultRef    string
	VaultCreate bool
	PSARef      string
	PSACreate   bool
	DryRun      bool
}

// MatchResult says what a match did (or, in a dry run, would do).
type MatchResult struct {
	Account AccountRow `json:"account"`
	// Action is "relinked" for an imported account (its ledger links
	// changed), "stored" for one the next run imports with the choice.
	Action   string            `json:"action"`
	Entry    *sinks.VaultEntry `json:"vault_entry,omitempty"`
	Contact  *sinks.Contact    `json:"psa_contact,omitempty"`
	Before   *ImportedAccount  `json:"before,omitempty"`
	Decision *AccountDecision  `json:"decision,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	DryRun   bool              `json:"dry_run,omitempty"`
}

func (r MatchRequest) check() error {
	switch {
	case r.VaultRef == "" && !r.VaultCreate:
		return &UsageError{Msg: "say which vault entry to use (--vault-entry ID) or to create one (--vault-create)"}
	case r.VaultRef != "" && r.VaultCreate:
		return &UsageError{Msg: "--vault-entry and --vault-create exclude each other"}
	case r.PSARef != "" && r.PSACreate:
		return &UsageError{Msg: "--psa-contact and --psa-create exclude each other"}
	}
	return nil
}

// Match records a technician's choice for an account: for one not imported
// yet (ambiguous, a possible duplicate, held or failed) the next run
// imports it with the chosen entry and contact; an imported account is
// re-linked at once, the old links kept in the audit event. The entry and
// the contact are read from the vault and the PSA first: they must exist
// and belong to the customer; an entry whose category does not fit the
// account's source is a warning.
func (a *Accounts) Match(ctx context.Context, customer, name string, req MatchRequest) (*MatchResult, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	res := &MatchResult{DryRun: req.DryRun}
	err = a.locked(ctx, customer, req.DryRun, func(l *Lease) error {
		rows, err := a.rows(ctx, t, c)
		if err != nil {
			return err
		}
		r, err := find(rows, customer, name)
		if err != nil {
			return err
		}
		res.Account = *r
		if r.State == StateIgnored {
			return &UsageError{Msg: fmt.Sprintf("customer %s: %s is ignored: autoimport accounts unignore it first", customer, r.Subject())}
		}
		if r.imported != nil && req.VaultCreate {
			return &UsageError{Msg: fmt.Sprintf("customer %s: %s is imported, linked to vault entry %q: name the entry to link it to (--vault-entry ID); autoimport never creates a second entry for an imported account", customer, r.Subject(), r.VaultRef)}
		}
		if r.Type != EndUser && (req.PSARef != "" || req.PSACreate) {
			return &UsageError{Msg: fmt.Sprintf("customer %s: %s is an administrator account: administrators are not added to the PSA", customer, r.Subject())}
		}
		conn, err := a.Connector.Connect(ctx, t, c)
		if err != nil {
			return fmt.Errorf("customer %s: %w", customer, err)
		}
		if err := a.checkChoice(ctx, conn, r, req, res); err != nil {
			return err
		}
		if err := entryFree(customer, rows, conn, r, req.VaultRef); err != nil {
			return err
		}
		if r.imported != nil {
			return a.relink(ctx, l, customer, r, req, res)
		}
		return a.storeChoice(ctx, l, customer, r, req, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkChoice reads the chosen entry and contact from the vault and PSA.
func (a *Accounts) checkChoice(ctx context.Context, conn *Connections, r *AccountRow, req MatchRequest, res *MatchResult) error {
	subject := r.Subject()
	v, scope := vaultOf(conn, r.Type)
	if v == nil {
		return fmt.Errorf("customer %s: no vault is configured for %s accounts", scope.Customer, r.Type)
	}
	if req.VaultRef != "" {
		er, ok := v.(entryReader)
		if !ok {
			return fmt.Errorf("%s cannot look an entry up by id", v.Name())
		}
		e, err := er.Entry(ctx, scope, req.VaultRef)
		if err != nil {
			return fmt.Errorf("customer %s: %s entry %s cannot be used for %s: %w", scope.Customer, v.Name(), req.VaultRef, subject, err)
		}
		res.Entry = &e
		if names := sinks.CategoryNames(r.Source); !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, e.Category) }) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("entry %s %q is in category %q, not one for this account's source (%s); it is used as chosen", e.Ref, e.Name, e.Category, strings.Join(names, ", ")))
		}
		if !strings.EqualFold(e.Username, r.Username) && !strings.EqualFold(e.Username, r.UPN) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("entry %s has username %q, not %q", e.Ref, e.Username, r.Username))
		}
	}
	if req.PSARef != "" {
		if conn.PSA == nil {
			return fmt.Errorf("customer %s: no PSA company is mapped", scope.Customer)
		}
		cr, ok := conn.PSA.(contactReader)
		if !ok {
			return fmt.Errorf("%s cannot look a contact up by id", conn.PSA.Name())
		}
		ct, err := cr.Contact(ctx, conn.PSAScope, req.PSARef)
		if err != nil {
			return fmt.Errorf("customer %s: %s contact %s cannot be used for %s: %w", scope.Customer, conn.PSA.Name(), req.PSARef, subject, err)
		}
		res.Contact = &ct
	}
	if req.VaultRef != "" && r.VaultIntegration == "" {
		r.VaultIntegration = v.Name()
	}
	if req.PSARef != "" && r.PSAIntegration == "" {
		r.PSAIntegration = conn.PSA.Name()
	}
	return nil
}

// entryFree refuses an entry that another account of the customer holds:
// an imported account linked to it, or one a technician chose it for.
// One vault entry holds one account's password; two accounts in one
// entry would be rotated into it, and one password lost.
func entryFree(customer string, rows []AccountRow, conn *Connections, r *AccountRow, ref string) error {
	if ref == "" {
		return nil
	}
	v, _ := vaultOf(conn, r.Type)
	for i := range rows {
		o := &rows[i]
		if o.Source == r.Source && o.ID == r.ID {
			continue
		}
		var how string
		switch {
		case o.imported != nil && o.VaultRef == ref && o.VaultIntegration == v.Name():
			how = "is linked to"
		case o.imported == nil && o.Decision != nil && o.Decision.Kind == DecisionMatch && o.Decision.VaultRef == ref && sameVault(conn, o.Type, r.Type):
			how = fmt.Sprintf("was chosen by %s on %s for", o.Decision.Actor, o.Decision.At.Format("2006-01-02"))
		default:
			continue
		}
		return &UsageError{Msg: fmt.Sprintf("customer %s: %s entry %s %s %s already, and one vault entry holds one account's password: choose another entry for %s (or --vault-create), or first link %s to another entry",
			customer, v.Name(), ref, how, accountName(o.Source, o.ID, o.Username), r.Username, o.Username)}
	}
	return nil
}

// sameVault reports whether accounts of two types go to the same vault.
func sameVault(conn *Connections, a, b AccountType) bool {
	va, sa := vaultOf(conn, a)
	vb, sb := vaultOf(conn, b)
	return va != nil && vb != nil && va.Name() == vb.Name() && sa.Container == sb.Container
}

// relink changes an imported account's links; the event keeps the old ones.
func (a *Accounts) relink(ctx context.Context, l *Lease, customer string, r *AccountRow, req MatchRequest, res *MatchResult) error {
	before := *r.imported
	after := before
	after.VaultIntegration, after.VaultRef = r.VaultIntegration, req.VaultRef
	if res.Entry != nil {
		after.VaultName = res.Entry.Name
	}
	if req.PSARef != "" {
		after.PSAIntegration, after.PSARef = r.PSAIntegration, req.PSARef
	}
	res.Action, res.Before = "relinked", &before
	res.Account.VaultIntegration, res.Account.VaultRef, res.Account.VaultName = after.VaultIntegration, after.VaultRef, after.VaultName
	res.Account.PSAIntegration, res.Account.PSARef = after.PSAIntegration, after.PSARef
	if r.State == StatePossibleDuplicate {
		res.Account.State, res.Account.Reason = StateImported, ""
	}
	if req.DryRun {
		return nil
	}
	return a.update(ctx, l, func(tx Tx) error {
		if err := tx.SetLinks(ctx, after); err != nil {
			return err
		}
		if err := tx.DeleteAttention(ctx, customer, r.Source, r.ID); err != nil {
			return err
		}
		links := func(x ImportedAccount) map[string]string {
			return map[string]string{"vault_integration": x.VaultIntegration, "vault_ref": x.VaultRef, "vault_name": x.VaultName, "psa_integration": x.PSAIntegration, "psa_ref": x.PSARef}
		}
		return a.audit(ctx, tx, customer, "accounts.relink", r.Subject(), links(before), map[string]any{"links": links(after), "warnings": res.Warnings})
	})
}

// storeChoice keeps the choice for the next run.
func (a *Accounts) storeChoice(ctx context.Context, l *Lease, customer string, r *AccountRow, req MatchRequest, res *MatchResult) error {
	d := AccountDecision{Customer: customer, Source: r.Source, SourceID: r.ID, Username: r.Username, Kind: DecisionMatch,
		VaultRef: req.VaultRef, VaultCreate: req.VaultCreate, PSARef: req.PSARef, PSACreate: req.PSACreate, Actor: a.actor(), At: a.now()}
	res.Action, res.Decision = "stored", &d
	if req.DryRun {
		return nil
	}
	return a.update(ctx, l, func(tx Tx) error {
		if err := tx.PutDecision(ctx, d); err != nil {
			return err
		}
		var before any
		if r.Decision != nil {
			before = r.Decision
		}
		return a.audit(ctx, tx, customer, "accounts.match", r.Subject(), before, map[string]any{"decision": d, "state": r.State, "warnings": res.Warnings})
	})
}

// ExclusionResult is what an ignore or unignore did to one account.
type ExclusionResult struct {
	Account string `json:"account"`
	Subject string `json:"subject"`
	Done    bool   `json:"done"`
	Reason  string `json:"reason,omitempty"` // why nothing was done
}

// Ignore excludes accounts from every future import: an ignored account is
// never imported and never counted by the surge guard. An account
// autoimport has not seen yet can be named as ad:<id> or m365:<id>.
func (a *Accounts) Ignore(ctx context.Context, customer string, names []string, reason string, dryRun bool) ([]ExclusionResult, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, &UsageError{Msg: "say why the accounts are ignored (--reason TEXT): it is shown to every technician"}
	}
	return a.exclusions(ctx, customer, names, dryRun, func(tx Tx, r *AccountRow) (string, error) {
		if r.imported != nil {
			return "it is imported already: ignoring only prevents imports", nil
		}
		if r.State == StateIgnored {
			return "it is ignored already", nil
		}
		d := AccountDecision{Customer: customer, Source: r.Source, SourceID: r.ID, Username: r.Username, Kind: DecisionIgnore, Reason: reason, Actor: a.actor(), At: a.now()}
		if tx == nil {
			return "", nil
		}
		// The account's row stays: it is listed as ignored, and unignore
		// returns it to the state it had.
		if err := tx.PutDecision(ctx, d); err != nil {
			return "", err
		}
		return "", a.audit(ctx, tx, customer, "accounts.ignore", r.Subject(), r.Decision, d)
	})
}

// Unignore withdraws exclusions: an account returns to the state it had
// when it was ignored (and can be matched at once), and the next run
// imports it as its options say.
func (a *Accounts) Unignore(ctx context.Context, customer string, names []string, dryRun bool) ([]ExclusionResult, error) {
	return a.exclusions(ctx, customer, names, dryRun, func(tx Tx, r *AccountRow) (string, error) {
		if r.Decision == nil || r.Decision.Kind != DecisionIgnore {
			return "it is not ignored", nil
		}
		if tx == nil {
			return "", nil
		}
		if err := tx.DeleteDecision(ctx, customer, r.Source, r.ID); err != nil {
			return "", err
		}
		return "", a.audit(ctx, tx, customer, "accounts.unignore", r.Subject(), r.Decision, nil)
	})
}

// exclusions applies fn to each named account in one transaction; fn gets
// a nil Tx in a dry run and returns why it would do nothing, if so.
func (a *Accounts) exclusions(ctx context.Context, customer string, names []string, dryRun bool, fn func(tx Tx, r *AccountRow) (string, error)) ([]ExclusionResult, error) {
	if len(names) == 0 {
		return nil, &UsageError{Msg: "name at least one account (username, UPN, ad:<id> or m365:<id>)"}
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	var out []ExclusionResult
	err = a.locked(ctx, customer, dryRun, func(l *Lease) error {
		rows, err := a.rows(ctx, t, c)
		if err != nil {
			return err
		}
		var targets []*AccountRow
		for _, n := range names {
			r, err := find(rows, customer, n)
			if err != nil {
				src, id, explicit := strings.Cut(n, ":")
				if !explicit || (src != "ad" && src != "m365") || id == "" {
					return err
				}
				// Not seen yet: known by its id alone.
				r = &AccountRow{Source: src, ID: id, Username: n}
			}
			targets = append(targets, r)
		}
		apply := func(tx Tx) error {
			out = out[:0]
			for i, r := range targets {
				why, err := fn(tx, r)
				if err != nil {
					return err
				}
				out = append(out, ExclusionResult{Account: names[i], Subject: r.Subject(), Done: why == "", Reason: why})
			}
			return nil
		}
		if dryRun {
			return apply(nil)
		}
		return a.update(ctx, l, apply)
	})
	return out, err
}

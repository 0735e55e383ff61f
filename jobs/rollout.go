package jobs

import (
	"context"
	"fmt"
)

// Selection names the imported accounts a roll-out acts on: all of them
// (of Type, when set) or the named ones.
type Selection struct {
	All      bool
	Accounts []string
	Type     AccountType
}

func (s Selection) check() error {
	switch {
	case s.All && len(s.Accounts) > 0:
		return &UsageError{Msg: "name accounts or say --all, not both"}
	case !s.All && len(s.Accounts) == 0:
		return &UsageError{Msg: "name the accounts (username, UPN, ad:<id> or m365:<id>) or say --all"}
	case s.Type != "" && s.Type != EndUser && s.Type != Admin:
		return &UsageError{Msg: fmt.Sprintf("unknown account type %q: want end-user or admin", s.Type)}
	}
	return nil
}

// pick returns the imported accounts the selection names; a named account
// that is not imported is refused.
func (s Selection) pick(rows []AccountRow, customer string) ([]*AccountRow, error) {
	var out []*AccountRow
	if s.All {
		for i := range rows {
			if rows[i].imported != nil && (s.Type == "" || rows[i].Type == s.Type) {
				out = append(out, &rows[i])
			}
		}
		return out, nil
	}
	for _, n := range s.Accounts {
		r, err := find(rows, customer, n)
		if err != nil {
			return nil, err
		}
		if r.imported == nil {
			return nil, &UsageError{Msg: fmt.Sprintf("customer %s: %s is %s, not imported: a roll-out acts on imported accounts only", customer, r.Subject(), r.State)}
		}
		if s.Type != "" && r.Type != s.Type {
			return nil, &UsageError{Msg: fmt.Sprintf("customer %s: %s is an %s account, not %s", customer, r.Subject(), r.Type, s.Type)}
		}
		out = append(out, r)
	}
	return out, nil
}

// FlagChange is what a roll-out does to one account's flags.
type FlagChange struct {
	Account string      `json:"account"`
	Subject string      `json:"subject"`
	Type    AccountType `json:"type"`
	Before  Flags       `json:"before"`
	After   Flags       `json:"after"`
	Changed bool        `json:"changed"`
	Reason  string      `json:"reason,omitempty"` // why it is left as it is
}

// FlagSettings are the flags a roll-out sets; nil leaves a flag alone.
type FlagSettings struct {
	SelfServe *bool
	Rotation  *bool
}

// SetFlags turns self_serve (end users) and rotation (administrators) on
// or off for accounts already imported. The ledger's flags change; the
// options snapshot each account was imported under does not, and options
// still apply to future imports only. Rotation needs the account's
// password in a vault entry.
func (a *Accounts) SetFlags(ctx context.Context, customer string, sel Selection, set FlagSettings, dryRun bool) ([]FlagChange, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	if set.SelfServe == nil && set.Rotation == nil {
		return nil, &UsageError{Msg: "say what to set: self_serve=true|false and/or rotation=true|false"}
	}
	if _, _, err := a.customer(ctx, customer); err != nil {
		return nil, err
	}
	var out []FlagChange
	err := a.locked(ctx, customer, dryRun, func() error {
		rows, err := a.rows(ctx, customer)
		if err != nil {
			return err
		}
		targets, err := sel.pick(rows, customer)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range targets {
			out = append(out, planFlags(r, set))
		}
		if dryRun {
			return nil
		}
		return a.Store.Update(ctx, func(tx Tx) error {
			for _, ch := range out {
				if !ch.Changed {
					continue
				}
				r, _ := find(rows, customer, ch.Subject)
				if err := tx.SetFlags(ctx, customer, r.Source, r.ID, ch.After); err != nil {
					return err
				}
				if err := a.audit(ctx, tx, customer, "accounts.flags", ch.Subject, ch.Before, ch.After); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return out, err
}

// planFlags decides one account's new flags.
func planFlags(r *AccountRow, set FlagSettings) FlagChange {
	ch := FlagChange{Account: r.Username, Subject: r.Subject(), Type: r.Type, Before: *r.Flags, After: *r.Flags}
	var why []string
	if set.SelfServe != nil {
		if r.Type == EndUser {
			ch.After.SelfServe = *set.SelfServe
		} else {
			why = append(why, "self_serve is for end users")
		}
	}
	if set.Rotation != nil {
		switch {
		case r.Type != Admin:
			why = append(why, "rotation is for administrators")
		case *set.Rotation && r.VaultRef == "":
			why = append(why, "rotation needs the password in a vault entry, and this account has none")
		default:
			ch.After.Rotation = *set.Rotation
		}
	}
	ch.Changed = ch.After != ch.Before
	if !ch.Changed {
		if len(why) == 0 {
			why = append(why, "already so")
		}
		ch.Reason = why[0]
		for _, w := range why[1:] {
			ch.Reason += "; " + w
		}
	}
	return ch
}

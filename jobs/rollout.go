package jobs

import (
	"context"
	"fmt"
	"strings"
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
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	var out []FlagChange
	err = a.locked(ctx, customer, dryRun, func(l *Lease) error {
		rows, err := a.rows(ctx, t, c)
		if err != nil {
			return err
		}
		targets, err := sel.pick(rows, customer)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range targets {
			if !sel.All && set.Rotation != nil && *set.Rotation && r.RotationBlocked != "" {
				return &UsageError{Msg: fmt.Sprintf("customer %s: %s (%s): rotation cannot be turned on: %s", customer, r.Subject(), r.Username, r.RotationBlocked)}
			}
			out = append(out, planFlags(r, set))
		}
		if dryRun {
			return nil
		}
		return a.update(ctx, l, func(tx Tx) error {
			for i, ch := range out {
				if !ch.Changed {
					continue
				}
				r := targets[i]
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
	// The ledger's flags, not those shown: rotation shows off for an
	// account autoimport signs in as, whatever its flag.
	l := r.imported
	ledger := Flags{SelfServe: l.SelfServe, Rotation: l.Rotation, M365Sync: l.M365Sync}
	ch := FlagChange{Account: r.Username, Subject: r.Subject(), Type: r.Type, Before: ledger, After: ledger}
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
		case *set.Rotation && r.RotationBlocked != "":
			why = append(why, "rotation cannot be turned on: "+r.RotationBlocked)
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

// WelcomeOutcome is what a welcome roll-out did for one account.
type WelcomeOutcome struct {
	Account string `json:"account"`
	Subject string `json:"subject"`
	To      string `json:"to,omitempty"`
	// Before and After are the account's welcome email states.
	Before string `json:"before"`
	After  string `json:"after"`
	// Skipped says why the account gets no email from this roll-out.
	Skipped string `json:"skipped,omitempty"`
}

// welcomeSkip says why an imported account is not sent a welcome email by
// a roll-out; "" when it is.
func welcomeSkip(r *AccountRow) string {
	switch {
	case r.Type != EndUser:
		return "administrator accounts get no welcome email"
	case strings.TrimSpace(r.Email) == "":
		return "the account has no email address"
	case r.imported.State != "active":
		return "the account is " + r.imported.State + " in its source"
	}
	switch r.Welcome {
	case WelcomeNone, WelcomePending:
		return ""
	case WelcomeSent:
		return "it got one already"
	case WelcomeAttempted:
		return "one was handed to the relay and never confirmed: it may have arrived, so it is never sent again (check the relay's log)"
	case WelcomeFailed:
		return "the relay refused this address for good"
	}
	return "its welcome email is " + r.Welcome
}

// Welcome sends the welcome email to imported end users who have an
// address and never received one (none, or pending after a relay outage),
// with the import's at-most-once guarantee: each email is made pending
// and claimed (attempted) in the ledger before it is sent, and one whose
// outcome is unknown is never sent again. Accounts that got one, or
// cannot, are listed as skipped, with why.
func (a *Accounts) Welcome(ctx context.Context, customer string, sel Selection, dryRun bool) ([]WelcomeOutcome, WelcomeResult, error) {
	var res WelcomeResult
	if err := sel.check(); err != nil {
		return nil, res, err
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, res, err
	}
	var out []WelcomeOutcome
	err = a.locked(ctx, customer, dryRun, func(l *Lease) error {
		rows, err := a.rows(ctx, t, c)
		if err != nil {
			return err
		}
		if sel.All && sel.Type == "" {
			sel.Type = EndUser
		}
		targets, err := sel.pick(rows, customer)
		if err != nil {
			return err
		}
		var due []ImportedAccount
		out = out[:0]
		for _, r := range targets {
			o := WelcomeOutcome{Account: r.Username, Subject: r.Subject(), To: r.Email, Before: r.Welcome, After: r.Welcome, Skipped: welcomeSkip(r)}
			if o.Skipped == "" {
				due = append(due, *r.imported)
				if dryRun {
					o.After = WelcomeSent + " (would be sent)"
				}
			}
			out = append(out, o)
		}
		if dryRun || len(due) == 0 {
			return nil
		}
		conn, err := a.Connector.Connect(ctx, t, c)
		if err != nil {
			return fmt.Errorf("customer %s: %w", customer, err)
		}
		if conn.Mailer == nil {
			return fmt.Errorf("customer %s: no SMTP relay is configured (integrations.smtp): no welcome email can be sent", customer)
		}
		// Due emails become pending, audited as the technician's act; the
		// sender then claims each (pending to attempted) before sending.
		err = a.update(ctx, l, func(tx Tx) error {
			for _, d := range due {
				if d.Welcome == WelcomePending {
					continue
				}
				if _, err := tx.SetWelcomeIf(ctx, customer, d.Source, d.SourceID, WelcomeNone, WelcomePending); err != nil {
					return err
				}
				if err := a.audit(ctx, tx, customer, "accounts.welcome", d.Source+":"+d.SourceID, map[string]string{"welcome": d.Welcome}, map[string]string{"welcome": WelcomePending, "to": d.Email}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		im := &Importer{Store: a.Store, Log: a.log(), Actor: a.actor(), Now: a.Now}
		res = im.SendPendingWelcomes(ctx, c, due, conn, l)
		after := map[string]string{}
		for row, err := range a.Store.LedgerEntries(ctx, customer) {
			if err != nil {
				return err
			}
			after[row.Source+":"+row.SourceID] = row.Welcome
		}
		for i := range out {
			if out[i].Skipped == "" {
				out[i].After = after[out[i].Subject]
			}
		}
		if res.RelayDown != nil {
			return fmt.Errorf("customer %s: the SMTP relay is unavailable (%w): %d welcome emails stay pending and are sent by the next run or the next autoimport accounts welcome", customer, res.RelayDown, res.Pending)
		}
		return nil
	})
	return out, res, err
}

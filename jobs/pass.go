package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/msp-tools/autoimport/sources"
)

// pass is the state of one customer's import pass. It is built so that a
// directory of any size streams through it: skipped and already-imported
// accounts are decided and reported as they are read, the ledger is held
// as small entries, and only the new accounts are kept until they are
// planned.
type pass struct {
	im   *Importer
	c    Customer
	opt  ImportOptions
	opts map[AccountType]Resolved
	rep  *CustomerReport

	ledger *ledger
	// changes are the source states to record: disabled, missing, active.
	changes map[ledgerKey]string
	// complete says which sources were read whole, so that an account
	// absent from them is really missing.
	complete map[string]bool
	// read notes the sources whose copy this pass brought up to date;
	// copiesRead that the pass read them (readCopies).
	read       map[sources.Kind]bool
	copiesRead bool
	// decisions are what needs a person (skips, ambiguities, failures,
	// holds), audited as one event when they change; a dry run keeps none.
	decisions decisionLog
	// shared holds one copy of the strings that many accounts repeat.
	shared stringTable
	// attention tracks the accounts that need a person, for the store;
	// choices are the technicians' decisions, by "source:id".
	attention attentionLog
	choices   map[string]AccountDecision

	// pendingRows are the ledger rows whose welcome email is pending, by
	// key, while the sources are read; pending are those of accounts
	// still active, which the pass sends (welcome.go).
	pendingRows map[ledgerKey]ImportedAccount
	pending     []ImportedAccount
	// mail sends the pass's welcome emails.
	mail *welcomeSender
	// unchanged are the ambiguous accounts held aside while the sources
	// are read; rechecked says the pass checked every ambiguous account
	// against the indexes (attentionrecheck.go).
	unchanged []heldAside
	rechecked bool

	// version is the customer's version read as the pass began, last the
	// record of the last settled pass while it may still hold, and
	// hadRecord whether there was one (settled.go). noticesFrom is where
	// the notices of the pass itself start in the report; hadPending and
	// attentionWritten say that it found welcome emails pending and wrote
	// accounts that need a person; passingFailure that it noted a failure
	// the next pass may not meet (a notice a settled pass must not
	// repeat).
	version          int64
	last             *settledPass
	hadRecord        bool
	noticesFrom      int
	hadPending       bool
	attentionWritten bool
	passingFailure   bool
}

// notice is one decision that needs a person.
type notice struct {
	Account, Action, Reason string
}

// attentionLimit bounds the accounts a report lists for a person; the
// counts stay exact and OnAccount still receives every account.
const attentionLimit = 1000

func newPass(im *Importer, c Customer, opt ImportOptions, opts map[AccountType]Resolved, rep *CustomerReport) *pass {
	ps := &pass{im: im, c: c, opt: opt, opts: opts, rep: rep, changes: map[ledgerKey]string{}, complete: map[string]bool{}, read: map[sources.Kind]bool{}, pendingRows: map[ledgerKey]ImportedAccount{}}
	ps.ledger = newLedger(&ps.shared)
	ps.noticesFrom = len(rep.Notices)
	return ps
}

// emit reports one account's final plan: counts, the decisions to audit,
// the accounts for a person, and OnAccount.
func (ps *pass) emit(p *AccountPlan) {
	p.work = nil
	ps.rep.Counts.count(p)
	ps.attention.note(ps.c.ID, p)
	switch p.Action {
	case ActionSkip, ActionAmbiguous, ActionError:
		ps.decide(notice{p.Source + ":" + p.ID + " " + p.Username, p.Action, p.Reason}, 1)
	}
	if p.Action == ActionAmbiguous || p.Action == ActionError || p.Vault.Warning != "" || p.PSA.Warning != "" {
		if len(ps.rep.Attention) < attentionLimit {
			ps.rep.Attention = append(ps.rep.Attention, *p)
		} else {
			ps.rep.AttentionOmitted++
		}
	}
	if ps.opt.OnAccount != nil {
		ps.opt.OnAccount(*p)
	}
}

// decide notes a decision about one account, or about accounts at once.
func (ps *pass) decide(n notice, accounts int) {
	if !ps.opt.DryRun {
		ps.decisions.add(n, accounts)
	}
}

// decisionLog keeps the decisions of a pass as the JSON array of notices
// they are audited as: the digest covers them all, the event lists the
// first decisionsListed, so that a customer with thousands of ambiguous
// accounts neither holds them all nor writes an audit row of megabytes
// (MySQL refuses rows over max_allowed_packet).
type decisionLog struct {
	digest   hash.Hash // of "[n1,n2,…]", as json.Marshal writes the slice
	listed   bytes.Buffer
	n        int
	accounts int // the accounts the decisions are about
}

// decisionsListed is how many decisions an import.decisions event lists.
const decisionsListed = 1000

func (d *decisionLog) add(n notice, accounts int) {
	if d.digest == nil {
		d.digest = sha256.New()
	}
	d.accounts += accounts
	b, _ := json.Marshal(n) // three strings: cannot fail
	sep := byte(',')
	if d.n == 0 {
		sep = '['
	}
	d.digest.Write([]byte{sep})
	d.digest.Write(b)
	if d.n < decisionsListed {
		d.listed.WriteByte(sep)
		d.listed.Write(b)
	}
	d.n++
}

// sum is the hex digest of every decision; that of "null" when there was
// none, as for a nil slice. It ends the log: call it once, at the end.
func (d *decisionLog) sum() string {
	if d.n == 0 {
		s := sha256.Sum256([]byte("null"))
		return hex.EncodeToString(s[:])
	}
	h := d.digest
	h.Write([]byte{']'})
	return hex.EncodeToString(h.Sum(nil))
}

// list is the JSON array of the first decisionsListed decisions.
func (d *decisionLog) list() string { return d.listed.String() + "]" }

// readLedger loads the customer's imported accounts, small.
func (ps *pass) readLedger(ctx context.Context) error {
	for a, err := range ps.im.Store.LedgerEntries(ctx, ps.c.ID) {
		if err != nil {
			return err
		}
		ps.ledger.add(a)
		ps.notePending(a)
	}
	ps.hadPending = len(ps.pendingRows) > 0
	return nil
}

func (ps *pass) imported(k ledgerKey) imported {
	l, _ := ps.ledger.get(k)
	return l
}

// trim drops what planning never reads of an account and shares the
// strings many accounts repeat, so that new accounts are held compactly.
func (ps *pass) trim(a sources.Account) sources.Account {
	a.DN, a.SelectedBy, a.Changed = "", nil, ""
	a.Domain, a.TypeReason, a.SkipReason = ps.shared.share(a.Domain), ps.shared.share(a.TypeReason), ps.shared.share(a.SkipReason)
	return a
}

// skipped reports an account that is not a candidate, unless it was
// imported before: then its source state is noted.
func (ps *pass) skipped(a *sources.Account) {
	k := ledgerKey{string(a.Source), a.ID}
	if l, ok := ps.ledger.see(k); ok {
		if strings.HasPrefix(a.SkipReason, "disabled") && l.state != "disabled" {
			ps.changes[k] = "disabled"
		}
		return
	}
	ps.emit(&AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Type: a.Type,
		Action: ActionSkip, Reason: a.SkipReason, Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}})
}

// skipIgnored reports a new account a technician chose to ignore: it is
// skipped with who ignored it and why, and never counts towards a surge.
func (ps *pass) skipIgnored(a *sources.Account) bool {
	d, ok := ps.ignored(string(a.Source), a.ID)
	if !ok {
		return false
	}
	ps.emit(&AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Type: a.Type,
		Action: ActionSkip, Reason: ignoredReason(d), Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}})
	return true
}

// known reports a candidate the ledger holds as already imported; it
// returns false for a new account.
func (ps *pass) known(a *sources.Account) bool {
	k := ledgerKey{string(a.Source), a.ID}
	l, ok := ps.ledger.see(k)
	if !ok {
		return false
	}
	if l.state != "active" {
		ps.changes[k] = "active"
		ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("%s %s (%s) is back in its source: it is the same imported account", a.Source, a.Username, a.ID))
	}
	if !strings.EqualFold(l.username, a.Username) {
		ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("%s account %s was renamed from %q to %q: same identity, nothing changed", a.Source, a.ID, l.username, a.Username))
	}
	if l.welcome == WelcomeAttempted {
		ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("welcome email to %s (%s) was attempted but never confirmed: check the mail relay's log; it is not sent again", a.Username, a.Email))
	}
	mail := EmailStep{Op: OpNone, State: l.welcome}
	ps.duePending(k, &mail)
	ps.emit(&AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Type: l.typ,
		Action: ActionAlreadyImported, Reason: l.imported,
		Vault: SinkStep{Op: OpNone, Integration: l.vaultIntegration, Ref: l.vaultRef}, PSA: SinkStep{Op: OpNone, Integration: l.psaIntegration, Ref: l.psaRef},
		WelcomeMail: mail, Flags: l.flags})
	return true
}

// markMissing notes the imported accounts that a source read whole no
// longer holds.
func (ps *pass) markMissing() {
	ps.ledger.unseen(func(k ledgerKey, l imported) {
		if l.state != "missing" && ps.complete[k.source] {
			ps.changes[k] = "missing"
		}
	})
}

// recordStates marks imported accounts disabled, missing or active again.
func (ps *pass) recordStates(ctx context.Context) error {
	if len(ps.changes) == 0 {
		return nil
	}
	im := ps.im
	err := ps.update(ctx, func(tx Tx) error {
		for k, st := range ps.changes {
			if err := tx.SetSourceState(ctx, ps.c.ID, k.source, k.id, st); err != nil {
				return err
			}
			_, err := tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: "import.source-state", Customer: ps.c.ID, Subject: k.source + ":" + k.id,
				Before: doc(map[string]string{"state": ps.imported(k).state}), After: doc(map[string]string{"state": st})})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, st := range ps.changes {
		if st != "active" {
			ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("imported %s account %s (%s) is %s in its source: marked so; nothing was deleted anywhere", k.source, ps.imported(k).username, k.id, st))
		}
	}
	return nil
}

// selections are what a pass reads of each source.
type selections struct{ ad, m365 sources.Selection }

// selections returns the customer's selection of each source; admins
// only when administrator imports are not paused.
func (ps *pass) selections() selections {
	c, wantAdmins := ps.c, !ps.opts[Admin].On(Paused)
	var sel selections
	if m := c.Sources.M365; m != nil {
		sel.m365 = sources.Selection{Groups: m.Select.Groups, Roles: m.Select.Roles, IncludeDisabled: m.IncludeDisabled}
	}
	if ad := c.Sources.AD; ad != nil {
		sel.ad = sources.Selection{Groups: ad.Select.Groups, OUs: ad.Select.OUs, Builtin: ad.Select.Builtin, Admins: wantAdmins, IncludeDisabled: ad.IncludeDisabled}
	}
	return sel
}

// collect returns the new candidates of the customer's sources, in a
// stable order; skipped and already-imported accounts are reported as
// they come. With linkTwins, every M365 user is read as well, to find the
// Entra twin of each AD account (m365_sync), not only those the M365
// selection holds.
func (ps *pass) collect(ctx context.Context, conn *Connections, sels selections, linkTwins bool) (*newAccounts, error) {
	c := ps.c
	fresh := &newAccounts{shared: &ps.shared}
	endUserSource := sources.KindM365
	if conn.AD != nil {
		endUserSource = sources.KindAD
	}
	each := func(name string, kind sources.Kind, src sources.Source, sel sources.Selection, fn func(sources.Account)) error {
		accounts, err := ps.accounts(ctx, kind, src, sel)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for a, err := range accounts {
			var ee *sources.EntryError
			if errors.As(err, &ee) {
				ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("%s: %v", name, ee))
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fn(a)
		}
		return nil
	}

	// Microsoft 365 first: its users are the twins AD accounts link to.
	var m365Accounts []sources.Account
	twins := newTwinIndex()
	if conn.M365 != nil {
		sel := sels.m365
		if err := each("Microsoft 365", sources.KindM365, conn.M365, sel, func(a sources.Account) { m365Accounts = append(m365Accounts, ps.trim(a)) }); err != nil {
			return nil, err
		}
		ps.complete[string(sources.KindM365)] = true
		if linkTwins && !sel365Empty(c) {
			if err := each("Microsoft 365 (all users, for hybrid links)", sources.KindM365, conn.M365, sources.Selection{}, twins.add); err != nil {
				return nil, err
			}
		} else {
			for _, a := range m365Accounts {
				twins.add(a)
			}
		}
	}

	// Active Directory, streamed: accounts are decided as they come.
	linked := map[string]bool{} // M365 ids that are an AD account's twin
	if conn.AD != nil {
		err := each("Active Directory", sources.KindAD, conn.AD, sels.ad, func(a sources.Account) {
			if !a.Candidate() {
				ps.skipped(&a)
				return
			}
			ps.rep.Counts.Candidates++
			l, note := twins.find(a)
			if l != nil {
				linked[l.M365ID] = true
			}
			if ps.known(&a) {
				return
			}
			if ps.skipIgnored(&a) {
				return
			}
			if note != "" {
				ps.rep.Notices = append(ps.rep.Notices, note)
			}
			if ps.settledAmbiguous(a, l) {
				return
			}
			fresh.add(a, l)
		})
		if err != nil {
			return nil, err
		}
		ps.complete[string(sources.KindAD)] = true
	}
	for i := range m365Accounts {
		a := &m365Accounts[i]
		if linked[a.ID] {
			continue // one person is imported once, from AD
		}
		if !a.Candidate() {
			ps.skipped(a)
			continue
		}
		if endUserSource == sources.KindAD && a.Type == EndUser {
			continue // end users come from AD only
		}
		ps.rep.Counts.Candidates++
		if !ps.known(a) && !ps.skipIgnored(a) && !ps.settledAmbiguous(*a, nil) {
			fresh.add(*a, nil)
		}
	}
	fresh.sort()
	return fresh, nil
}

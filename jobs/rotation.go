package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/sirupsen/logrus"
)

// PasswordDirectory is what rotation needs of the directory an
// administrator's password lives in: Active Directory, or Microsoft 365
// for a cloud-only account. cmd/internal/connect adapts the source clients.
type PasswordDirectory interface {
	// Name is "Active Directory" or "Microsoft 365".
	Name() string
	// Status says whether the account exists and may sign in; a reason
	// when it cannot be rotated here (e.g. synced from AD).
	Status(ctx context.Context, a ImportedAccount) (DirectoryStatus, error)
	// Mark returns what Took later compares with, read before a change
	// (Microsoft 365: when the password last changed); "" when unneeded.
	Mark(ctx context.Context, a ImportedAccount) (string, error)
	// SetPassword sets the account's password. An error wrapping
	// ErrPasswordRefused means the directory refused it (its reason in the
	// message) and nothing changed; ErrOutcomeUnknown that it may or may
	// not have changed; any other error that nothing changed.
	SetPassword(ctx context.Context, a ImportedAccount, pw string) error
	// Took reports whether the directory can show that pw is the
	// account's password now: AD binds with it; Microsoft 365 finds the
	// password changed after marker. A rotation asks it only when the
	// directory refuses to set a pending password again, to go on to the
	// vault instead of waiting for a person; false or an error never
	// discards a sealed password.
	Took(ctx context.Context, a ImportedAccount, pw, marker string) (bool, error)
}

// DirectoryStatus is what a directory says of an account before rotation.
type DirectoryStatus struct {
	Exists, Enabled bool
	// NotHere says why the account cannot be rotated in this directory.
	NotHere string
}

// Errors a PasswordDirectory's SetPassword wraps.
var (
	ErrPasswordRefused = errors.New("the directory refused the password")
	ErrOutcomeUnknown  = errors.New("the directory did not say whether it took the password")
)

// Rotation outcomes, for a report and the metrics.
const (
	OutcomeRotated      = "rotated"
	OutcomeNotDue       = "not-due"
	OutcomeWouldRotate  = "would-rotate"
	OutcomeSkipped      = "skipped"
	OutcomeFailed       = "failed"
	OutcomeUnknown      = "pending"       // set again by the next pass
	OutcomeVaultPending = "vault-pending" // password changed, vault not yet updated
)

// AccountRotation is what a rotation pass did, or would do, for one
// administrator.
type AccountRotation struct {
	Subject  string    `json:"account"`
	Username string    `json:"username"`
	Due      bool      `json:"due"`
	DueAt    time.Time `json:"due_at,omitzero"`
	// Target is where the password is set; VaultIntegration and VaultRef
	// the entry that receives it.
	Target           string `json:"target,omitempty"`
	VaultIntegration string `json:"vault_integration,omitempty"`
	VaultRef         string `json:"vault_ref,omitempty"`
	Outcome          string `json:"outcome"`
	Reason           string `json:"reason,omitempty"`
}

// RotationReport is one customer's rotation pass.
type RotationReport struct {
	Customer string            `json:"customer"`
	Status   string            `json:"status"`
	Error    string            `json:"error,omitempty"`
	DryRun   bool              `json:"dry_run,omitempty"`
	Accounts []AccountRotation `json:"accounts"`
	// Outcomes counts the accounts by outcome.
	Outcomes map[string]int `json:"outcomes"`
}

// RotateOptions change what a rotation pass does.
type RotateOptions struct {
	DryRun bool
	// Account limits the pass to one account (username, UPN or
	// source:id).
	Account string
	// Now rotates the accounts in scope whether due or not.
	Now bool
	// Lease is the customer's lease the pass runs under: every state
	// change is fenced with it, and every directory and vault call is
	// made only while it holds. Without one, Rotate takes the lease
	// itself.
	Lease *Lease
}

// Rotator rotates the passwords of one customer's imported administrators
// whose ledger flag rotation is on, and writes each new password to the
// account's vault entry. A password is never lost (product.md §7b):
//   - the new password is sealed and recorded pending before the
//     directory is changed, and a rotation left open is rolled forward by
//     setting the same password again; a new one is made only when none
//     is open;
//   - the sealed copy is dropped only when a read-back shows the vault
//     holds it;
//   - every state change is conditional on the version its writer read
//     and on the writer still holding the customer's lease, and no
//     directory or vault call is made without it.
type Rotator struct {
	Store     Store
	Connector Connector
	// Key seals pending passwords in the store.
	Key   *secret.Key
	Log   logrus.FieldLogger
	Actor string
	Now   func() time.Time
	// Holder and LeaseTTL are the lease Rotate takes when it is given
	// none (RotateOptions.Lease).
	Holder   string
	LeaseTTL time.Duration

	// step, in tests, is called after each step of a rotation; an error
	// stops the pass there, as a crash would.
	step func(step string) error
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Rotator) actor() string {
	if r.Actor != "" {
		return r.Actor
	}
	return "autoimport"
}

func (r *Rotator) log() logrus.FieldLogger {
	if r.Log == nil {
		return logrus.StandardLogger()
	}
	return r.Log
}

// errCrash stops a pass in tests.
var errCrash = errors.New("stopped")

// after runs the test hook after a step.
func (r *Rotator) after(step string) error {
	if r.step == nil {
		return nil
	}
	if err := r.step(step); err != nil {
		return fmt.Errorf("%w after %s: %w", errCrash, step, err)
	}
	return nil
}

// rotationPass is one customer's pass.
type rotationPass struct {
	r     *Rotator
	t     *Tenant
	c     Customer
	opt   RotateOptions
	rep   *RotationReport
	opts  Resolved
	conn  *Connections
	lease *Lease
	log   logrus.FieldLogger
	// open are the rotations earlier passes left open, by account.
	open   map[ledgerKey]PasswordRotation
	admins []ImportedAccount
	// sharing names, by account, the other accounts linked to its vault
	// entry: such an entry receives no password (it would overwrite
	// another account's).
	sharing map[ledgerKey][]string
	// attention are the accounts a person was asked about, by account.
	attention map[ledgerKey]AccountAttention
	// mu guards rep.Accounts while accounts are rotated concurrently.
	mu sync.Mutex
}

// Rotate runs one customer's rotation pass: it rolls forward the
// rotations left open, then rotates the administrators that are due.
func (r *Rotator) Rotate(ctx context.Context, t *Tenant, c Customer, opt RotateOptions) *RotationReport {
	rep := &RotationReport{Customer: c.ID, Status: StatusOK, DryRun: opt.DryRun, Accounts: []AccountRotation{}, Outcomes: map[string]int{}}
	if !opt.DryRun && opt.Lease == nil {
		holder := r.Holder
		if holder == "" {
			holder = newHolderName()
		}
		l, err := AcquireLease(ctx, r.Store, c.ID, holder, r.LeaseTTL, r.log())
		var held *ErrLeaseHeld
		switch {
		case errors.As(err, &held):
			rep.Status, rep.Error = StatusBusy, held.Error()
			return rep
		case err != nil:
			rep.Status, rep.Error = StatusFailed, err.Error()
			return rep
		}
		defer l.Release(ctx)
		opt.Lease = l
	}
	p := &rotationPass{r: r, t: t, c: c, opt: opt, rep: rep, opts: Resolve(t, c, Admin), lease: opt.Lease, log: r.log().WithField("customer", c.ID)}
	if err := p.run(ctx); err != nil {
		rep.Status, rep.Error = StatusFailed, err.Error()
	}
	sort.SliceStable(rep.Accounts, func(i, j int) bool { return rep.Accounts[i].Username < rep.Accounts[j].Username })
	for _, a := range rep.Accounts {
		rep.Outcomes[a.Outcome]++
		if a.Outcome == OutcomeFailed || a.Outcome == OutcomeVaultPending || a.Outcome == OutcomeUnknown {
			rep.Status = StatusFailed
			if rep.Error == "" {
				rep.Error = fmt.Sprintf("customer %s: %s: %s", c.ID, a.Username, a.Reason)
			}
		}
	}
	return rep
}

func (p *rotationPass) run(ctx context.Context) error {
	if err := p.read(ctx); err != nil {
		return err
	}
	work := p.work(ctx)
	if len(work) == 0 {
		return nil
	}
	if p.opt.DryRun {
		p.plan(work)
		return nil
	}
	if p.r.Key == nil {
		return fmt.Errorf("customer %s: AUTOIMPORT_SECRET_KEY is not set: rotation seals each new password with it before changing the directory", p.c.ID)
	}
	if err := p.holds(); err != nil {
		return err
	}
	conn, err := p.r.Connector.Connect(ctx, p.t, p.c)
	if err != nil {
		return fmt.Errorf("customer %s: %w", p.c.ID, err)
	}
	p.conn = conn
	defer conn.closeIdleConnections()
	return p.each(ctx, work)
}

// rotationWork is one account a pass works on: an open rotation to roll
// forward, or a new one to start.
type rotationWork struct {
	a    ImportedAccount
	open *PasswordRotation
}

// work lists what the pass does: every open rotation (whatever the
// account's flags: a sealed password is never left behind), then the due
// accounts. The others are reported, with when they are due or why they
// are not rotated.
func (p *rotationPass) work(ctx context.Context) []rotationWork {
	var open, due []rotationWork
	now := p.r.now()
	signsIn := p.credentialUses(ctx)
	for _, a := range p.admins {
		if x, ok := p.open[ledgerKey{a.Source, a.SourceID}]; ok {
			if why := signsIn.forAccount(a); why != "" && x.State == RotationPending {
				p.rep.Accounts = append(p.rep.Accounts, p.signsInOpen(a, x, why))
				continue
			}
			open = append(open, rotationWork{a: a, open: &x})
			continue
		}
		ar := AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, VaultIntegration: a.VaultIntegration, VaultRef: a.VaultRef,
			Target: targetOf(a), DueAt: p.dueAt(a)}
		switch {
		case signsIn.forAccount(a) != "":
			ar.Outcome, ar.Reason, ar.DueAt = OutcomeSkipped, "not rotated: "+signsIn.forAccount(a), time.Time{}
		case !a.Rotation:
			ar.Outcome, ar.Reason, ar.DueAt = OutcomeSkipped, "rotation is off for this account (autoimport accounts set ... rotation=true)", time.Time{}
		case a.State != "active":
			ar.Outcome, ar.Reason = OutcomeSkipped, "not rotated: the account is "+a.State+" in its source"
		case a.VaultRef == "":
			ar.Outcome, ar.Reason = OutcomeSkipped, "not rotated: the account has no vault entry to write the password to"
		case len(p.sharing[ledgerKey{a.Source, a.SourceID}]) > 0:
			ar.Outcome, ar.Reason = OutcomeSkipped, "not rotated: "+p.sharedEntry(a)
		case !p.opt.Now && now.Before(ar.DueAt):
			ar.Outcome, ar.Reason = OutcomeNotDue, fmt.Sprintf("due on %s (every %d days)", ar.DueAt.Format(time.DateOnly), p.opts.Number(RotationDays).Value)
		default:
			due = append(due, rotationWork{a: a})
			continue
		}
		p.rep.Accounts = append(p.rep.Accounts, ar)
	}
	return append(open, due...)
}

// each works on the accounts, RotationWorkers at a time: the directory
// calls wait on the network, not on each other. The first error (a lost
// lease, a failed record) stops the others from starting; those under way
// stop at their next step.
func (p *rotationPass) each(ctx context.Context, work []rotationWork) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, RotationWorkers)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for _, w := range work {
		sem <- struct{}{}
		if err := p.holds(); err != nil {
			fail(err)
		}
		if failed() {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			if w.open != nil {
				err = p.rollForward(ctx, w.a, *w.open)
			} else {
				err = p.start(ctx, w.a)
			}
			if err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	return first
}

// RotationWorkers is how many of one customer's administrators are
// rotated at once.
const RotationWorkers = 4

// holds returns why the pass may not go on: its lease is lost (or its
// time ran out).
func (p *rotationPass) holds() error {
	if err := p.lease.Lost(); err != nil {
		return fmt.Errorf("%w: stopped before the next directory or vault call; whatever is open is rolled forward by the holder", err)
	}
	return nil
}

// read loads the customer's administrators, their open rotations, the
// accounts that share a vault entry, and those a person was asked about.
func (p *rotationPass) read(ctx context.Context) error {
	rots, err := p.r.Store.Rotations(ctx, p.c.ID)
	if err != nil {
		return err
	}
	p.open = map[ledgerKey]PasswordRotation{}
	for _, x := range rots {
		if x.Open() {
			p.open[ledgerKey{x.Source, x.SourceID}] = x
		}
	}
	att, err := p.r.Store.Attention(ctx, p.c.ID)
	if err != nil {
		return err
	}
	p.attention = map[ledgerKey]AccountAttention{}
	for _, a := range att {
		p.attention[ledgerKey{a.Source, a.SourceID}] = a
	}
	var rows []AccountRow
	byEntry := map[[2]string][]ImportedAccount{}
	for a, err := range p.r.Store.LedgerEntries(ctx, p.c.ID) {
		if err != nil {
			return err
		}
		if a.VaultRef != "" {
			e := [2]string{a.VaultIntegration, a.VaultRef}
			byEntry[e] = append(byEntry[e], a)
		}
		if a.Type != Admin {
			continue
		}
		p.admins = append(p.admins, a)
		rows = append(rows, AccountRow{Source: a.Source, ID: a.SourceID, Username: a.Username, UPN: a.UPN})
	}
	p.sharing = map[ledgerKey][]string{}
	for _, as := range byEntry {
		for _, a := range as {
			for _, o := range as {
				if o.Source != a.Source || o.SourceID != a.SourceID {
					p.sharing[ledgerKey{a.Source, a.SourceID}] = append(p.sharing[ledgerKey{a.Source, a.SourceID}], o.Username)
				}
			}
		}
	}
	if p.opt.Account != "" {
		r, err := find(rows, p.c.ID, p.opt.Account)
		if err != nil {
			return err
		}
		for _, a := range p.admins {
			if a.Source == r.Source && a.SourceID == r.ID {
				p.admins = []ImportedAccount{a}
				break
			}
		}
		for k := range p.open {
			if k != (ledgerKey{r.Source, r.ID}) {
				delete(p.open, k)
			}
		}
	}
	return nil
}

// sharedEntry says why an account's entry receives no password.
func (p *rotationPass) sharedEntry(a ImportedAccount) string {
	return fmt.Sprintf("its vault entry %s %s is also linked to %s, and one entry holds one account's password: link each to its own entry (autoimport accounts match --customer %s %s --vault-entry ID)",
		a.VaultIntegration, a.VaultRef, strings.Join(p.sharing[ledgerKey{a.Source, a.SourceID}], ", "), p.c.ID, a.Username)
}

// dueAt is when an account's next rotation is due: its last rotation, or
// its import, plus rotation_days.
func (p *rotationPass) dueAt(a ImportedAccount) time.Time {
	from := a.ImportedAt
	if !a.LastRotated.IsZero() {
		from = a.LastRotated
	}
	return from.AddDate(0, 0, p.opts.Number(RotationDays).Value)
}

// targetOf names where an account's password is set.
func targetOf(a ImportedAccount) string {
	if a.Source == "m365" {
		return "Microsoft 365"
	}
	return "Active Directory"
}

// plan reports, in a dry run, what the pass would do.
func (p *rotationPass) plan(work []rotationWork) {
	for _, w := range work {
		a := w.a
		ar := AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, Target: targetOf(a),
			VaultIntegration: a.VaultIntegration, VaultRef: a.VaultRef, Outcome: OutcomeWouldRotate}
		if o := w.open; o != nil {
			ar.Reason = fmt.Sprintf("finish the rotation left %s on %s: set its sealed password again in %s, then write it to %s entry %s",
				o.State, o.StartedAt.Format(time.DateTime), targetOf(a), a.VaultIntegration, a.VaultRef)
			if o.State == RotationSet {
				ar.Reason = fmt.Sprintf("finish the rotation left set on %s: write its sealed password to %s entry %s", o.StartedAt.Format(time.DateTime), a.VaultIntegration, a.VaultRef)
			}
		} else {
			ar.Due, ar.DueAt = true, p.dueAt(a)
			ar.Reason = fmt.Sprintf("set a new %d-character password in %s, then write it to %s entry %s", p.opts.Number(RotationLength).Value, targetOf(a), a.VaultIntegration, a.VaultRef)
		}
		p.rep.Accounts = append(p.rep.Accounts, ar)
	}
}

// report adds one account's outcome.
func (p *rotationPass) report(a ImportedAccount, outcome, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rep.Accounts = append(p.rep.Accounts, AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, Due: true, DueAt: p.dueAt(a),
		Target: targetOf(a), VaultIntegration: a.VaultIntegration, VaultRef: a.VaultRef, Outcome: outcome, Reason: reason})
	if outcome == OutcomeFailed || outcome == OutcomeVaultPending || outcome == OutcomeUnknown {
		p.log.WithFields(logrus.Fields{"account": a.Username, "outcome": outcome}).Warn(reason)
	}
}

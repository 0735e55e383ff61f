package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
)

// PasswordDirectory is what rotation needs of the directory an
// administrator's password lives in: Active Directory, or Microsoft 365
// for a cloud-only account. internal/connect adapts the source clients.
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
	// Took learns whether a pending password took, after a crash or an
	// unanswered change: AD binds with it; Microsoft 365 compares when the
	// password last changed with marker. An error means it cannot tell
	// yet.
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

// passwordWriter writes a new password into a vault entry and reads it
// back (sinks.PasswordWriter).
type passwordWriter interface {
	SetPassword(ctx context.Context, scope sinks.VaultScope, ref, password, notes string) error
	Password(ctx context.Context, scope sinks.VaultScope, ref string) (string, error)
}

// Rotation outcomes, for a report and the metrics.
const (
	OutcomeRotated      = "rotated"
	OutcomeNotDue       = "not-due"
	OutcomeWouldRotate  = "would-rotate"
	OutcomeSkipped      = "skipped"
	OutcomeFailed       = "failed"
	OutcomeUnknown      = "pending"       // the directory's answer is awaited
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
	// Lease, when set, is done once the customer's lease is lost: the pass
	// starts nothing new (see ImportOptions.Lease).
	Lease context.Context
}

// Rotator rotates the passwords of one customer's imported administrators
// whose ledger flag rotation is on, and writes each new password to the
// account's vault entry. A password is never lost: the new one is sealed
// and recorded pending before the directory is changed, recorded set once
// the directory took it, written to the vault, and recorded done; a pass
// first finishes every rotation a crash or a failure left open.
type Rotator struct {
	Store     Store
	Connector Connector
	// Key seals pending passwords in the store.
	Key   *secret.Key
	Log   logrus.FieldLogger
	Actor string
	Now   func() time.Time

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
	r      *Rotator
	t      *Tenant
	c      Customer
	opt    RotateOptions
	rep    *RotationReport
	opts   Resolved
	conn   *Connections
	log    logrus.FieldLogger
	open   map[ledgerKey]PasswordRotation
	admins []ImportedAccount
	// mu guards rep.Accounts while accounts are rotated concurrently.
	mu sync.Mutex
}

// Rotate runs one customer's rotation pass: it finishes the rotations
// left open, then rotates the administrators that are due.
func (r *Rotator) Rotate(ctx context.Context, t *Tenant, c Customer, opt RotateOptions) *RotationReport {
	rep := &RotationReport{Customer: c.ID, Status: StatusOK, DryRun: opt.DryRun, Accounts: []AccountRotation{}, Outcomes: map[string]int{}}
	log := r.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	p := &rotationPass{r: r, t: t, c: c, opt: opt, rep: rep, opts: Resolve(t, c, Admin), log: log.WithField("customer", c.ID)}
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
	due := p.dueAccounts(ctx)
	if len(p.open) == 0 && len(due) == 0 {
		return nil
	}
	if p.opt.DryRun {
		p.plan(due)
		return nil
	}
	if p.r.Key == nil {
		return fmt.Errorf("customer %s: AUTOIMPORT_SECRET_KEY is not set: rotation seals each new password with it before changing the directory", p.c.ID)
	}
	conn, err := p.r.Connector.Connect(ctx, p.t, p.c)
	if err != nil {
		return fmt.Errorf("customer %s: %w", p.c.ID, err)
	}
	p.conn = conn
	// First finish what earlier passes left open, then the due accounts.
	for _, a := range p.admins {
		if o, ok := p.open[ledgerKey{a.Source, a.SourceID}]; ok {
			if err := p.leaseLost(); err != nil {
				return err
			}
			if err := p.finish(ctx, a, o); err != nil {
				return err
			}
		}
	}
	// The due accounts are independent: RotationWorkers at a time. The
	// first error (a failed record, a lost lease) stops the others from
	// starting; those under way finish.
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
	for _, a := range due {
		if _, open := p.open[ledgerKey{a.Source, a.SourceID}]; open {
			continue // finished above, or still open: not rotated again now
		}
		sem <- struct{}{}
		if err := p.leaseLost(); err != nil {
			fail(err)
		}
		if failed() {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.rotate(ctx, a); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	return first
}

// RotationWorkers is how many of one customer's administrators are
// rotated at once: the directory calls wait on the network, not on each
// other.
const RotationWorkers = 4

func (p *rotationPass) leaseLost() error {
	if err := leaseCause(p.opt.Lease); err != nil {
		return fmt.Errorf("%w: no further rotation was started", err)
	}
	return nil
}

// read loads the customer's administrators and their open rotations.
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
	var rows []AccountRow
	for a, err := range p.r.Store.ImportedAccounts(ctx, p.c.ID) {
		if err != nil {
			return err
		}
		if a.Type != Admin {
			continue
		}
		p.admins = append(p.admins, a)
		rows = append(rows, AccountRow{Source: a.Source, ID: a.SourceID, Username: a.Username, UPN: a.UPN})
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

// dueAt is when an account's next rotation is due: its last rotation, or
// its import, plus rotation_days.
func (p *rotationPass) dueAt(a ImportedAccount) time.Time {
	from := a.ImportedAt
	if !a.LastRotated.IsZero() {
		from = a.LastRotated
	}
	return from.AddDate(0, 0, p.opts.Number(RotationDays).Value)
}

// dueAccounts lists the administrators to rotate now; the others are
// reported, with when they are due or why they are not rotated.
func (p *rotationPass) dueAccounts(ctx context.Context) []ImportedAccount {
	var due []ImportedAccount
	now := p.r.now()
	signsIn := p.credentialUses(ctx)
	for _, a := range p.admins {
		ar := AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, VaultIntegration: a.VaultIntegration, VaultRef: a.VaultRef,
			Target: targetOf(a), DueAt: p.dueAt(a)}
		_, open := p.open[ledgerKey{a.Source, a.SourceID}]
		switch {
		case open:
			continue // reported by finish
		case signsIn.forAccount(a) != "":
			ar.Outcome, ar.Reason, ar.DueAt = OutcomeSkipped, "not rotated: "+signsIn.forAccount(a), time.Time{}
		case !a.Rotation:
			ar.Outcome, ar.Reason, ar.DueAt = OutcomeSkipped, "rotation is off for this account (autoimport accounts set ... rotation=true)", time.Time{}
		case a.State != "active":
			ar.Outcome, ar.Reason = OutcomeSkipped, "not rotated: the account is "+a.State+" in its source"
		case a.VaultRef == "":
			ar.Outcome, ar.Reason = OutcomeSkipped, "not rotated: the account has no vault entry to write the password to"
		case !p.opt.Now && now.Before(ar.DueAt):
			ar.Outcome, ar.Reason = OutcomeNotDue, fmt.Sprintf("due on %s (every %d days)", ar.DueAt.Format(time.DateOnly), p.opts.Number(RotationDays).Value)
		default:
			ar.Due = true
			due = append(due, a)
			continue
		}
		p.rep.Accounts = append(p.rep.Accounts, ar)
	}
	return due
}

// targetOf names where an account's password is set.
func targetOf(a ImportedAccount) string {
	if a.Source == "m365" {
		return "Microsoft 365"
	}
	return "Active Directory"
}

// plan reports, in a dry run, what the pass would do.
func (p *rotationPass) plan(due []ImportedAccount) {
	for _, a := range p.admins {
		if o, ok := p.open[ledgerKey{a.Source, a.SourceID}]; ok {
			p.rep.Accounts = append(p.rep.Accounts, AccountRotation{Subject: o.Source + ":" + o.SourceID, Username: o.Username, Target: o.Target,
				VaultIntegration: o.VaultIntegration, VaultRef: o.VaultRef, Outcome: OutcomeWouldRotate,
				Reason: fmt.Sprintf("finish the rotation left %s on %s", o.State, o.StartedAt.Format(time.DateTime))})
		}
	}
	for _, a := range due {
		p.rep.Accounts = append(p.rep.Accounts, AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, Due: true, DueAt: p.dueAt(a),
			Target: targetOf(a), VaultIntegration: a.VaultIntegration, VaultRef: a.VaultRef, Outcome: OutcomeWouldRotate,
			Reason: fmt.Sprintf("set a new %d-character password in %s, then write it to %s entry %s", p.opts.Number(RotationLength).Value, targetOf(a), a.VaultIntegration, a.VaultRef)})
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

// directoryOf is where an account's password is set.
func (p *rotationPass) directoryOf(a ImportedAccount) (PasswordDirectory, error) {
	d := p.conn.Directories[a.Source]
	if d == nil {
		return nil, fmt.Errorf("customer %s has no %s source configured to set %s's password in", p.c.ID, targetOf(a), a.Username)
	}
	return d, nil
}

// vaultOf is the vault an administrator's entry is in, and the calls
// rotation needs of it.
func (p *rotationPass) vaultOf(a ImportedAccount) (sinks.Vault, sinks.VaultScope, passwordWriter, error) {
	v, scope := vaultOf(p.conn, Admin)
	if v == nil {
		return nil, scope, nil, fmt.Errorf("customer %s has no vault for administrators any more", p.c.ID)
	}
	if a.VaultIntegration != "" && a.VaultIntegration != v.Name() {
		return nil, scope, nil, fmt.Errorf("%s's entry %s is in %s, but the customer's administrator vault is now %s: re-link it (autoimport accounts match)", a.Username, a.VaultRef, a.VaultIntegration, v.Name())
	}
	pw, ok := v.(passwordWriter)
	if !ok {
		return nil, scope, nil, fmt.Errorf("%s cannot write passwords", v.Name())
	}
	return v, scope, pw, nil
}

// audit writes one rotation event; it names the account and the vault
// entry, never the password.
func (p *rotationPass) audit(ctx context.Context, tx Tx, action string, x PasswordRotation, extra map[string]string) error {
	after := map[string]string{"state": x.State, "target": x.Target, "vault_integration": x.VaultIntegration, "vault_ref": x.VaultRef}
	for k, v := range extra {
		after[k] = v
	}
	_, err := tx.AppendAudit(ctx, AuditEvent{At: p.r.now(), Actor: p.r.actor(), Action: action, Customer: p.c.ID, Subject: x.Source + ":" + x.SourceID, After: doc(after)})
	return err
}

// record writes a rotation's new state with its audit event in one
// transaction; done also notes when the account was rotated.
func (p *rotationPass) record(ctx context.Context, x PasswordRotation, action string, extra map[string]string) error {
	err := p.r.Store.Update(ctx, func(tx Tx) error {
		if err := tx.PutRotation(ctx, x); err != nil {
			return err
		}
		if x.State == RotationDone {
			if err := tx.SetRotated(ctx, x.Customer, x.Source, x.SourceID, x.DoneAt); err != nil {
				return err
			}
		}
		return p.audit(ctx, tx, action, x, extra)
	})
	if err != nil {
		return fmt.Errorf("customer %s: %s: %w", p.c.ID, x.Username, err)
	}
	return nil
}

// rotate rotates one due administrator: check, seal and record pending,
// set in the directory, record set, write to the vault, record done.
func (p *rotationPass) rotate(ctx context.Context, a ImportedAccount) error {
	dir, err := p.directoryOf(a)
	if err != nil {
		p.report(a, OutcomeSkipped, "not rotated: "+err.Error())
		return nil
	}
	st, err := dir.Status(ctx, a)
	switch {
	case err != nil:
		p.report(a, OutcomeFailed, "not rotated: "+err.Error())
		return nil
	case !st.Exists:
		p.report(a, OutcomeSkipped, fmt.Sprintf("not rotated: the account is missing in %s", dir.Name()))
		return nil
	case !st.Enabled:
		p.report(a, OutcomeSkipped, fmt.Sprintf("not rotated: the account is disabled in %s", dir.Name()))
		return nil
	case st.NotHere != "":
		p.report(a, OutcomeSkipped, "not rotated: "+st.NotHere)
		return nil
	}
	v, scope, _, err := p.vaultOf(a)
	if err != nil {
		p.report(a, OutcomeFailed, "not rotated: "+err.Error())
		return nil
	}
	er, ok := v.(entryReader)
	if !ok {
		p.report(a, OutcomeFailed, "not rotated: "+v.Name()+" cannot look an entry up by id")
		return nil
	}
	if _, err := er.Entry(ctx, scope, a.VaultRef); err != nil {
		if errors.Is(err, sinks.ErrNotFound) {
			return p.entryGone(ctx, a, err)
		}
		p.report(a, OutcomeFailed, fmt.Sprintf("not rotated: %s entry %s: %v", v.Name(), a.VaultRef, err))
		return nil
	}

	// 1. Seal the new password and record the rotation pending.
	pw, err := password.Generate(p.opts.Number(RotationLength).Value, a.Username, a.DisplayName)
	if err != nil {
		return fmt.Errorf("customer %s: %s: %w", p.c.ID, a.Username, err)
	}
	marker, err := dir.Mark(ctx, a)
	if err != nil {
		p.report(a, OutcomeFailed, "not rotated: "+err.Error())
		return nil
	}
	x := PasswordRotation{Customer: p.c.ID, Source: a.Source, SourceID: a.SourceID, Username: a.Username, State: RotationPending,
		Sealed: p.r.Key.Seal([]byte(pw)), Target: dir.Name(), Marker: marker, VaultIntegration: v.Name(), VaultRef: a.VaultRef, StartedAt: p.r.now()}
	if err := p.record(ctx, x, "rotation.pending", nil); err != nil {
		return err
	}
	if err := p.r.after("pending"); err != nil {
		return err
	}

	// 2. Set it in the directory.
	err = dir.SetPassword(ctx, a, pw)
	if err := p.r.after("directory"); err != nil {
		return err
	}
	switch {
	case errors.Is(err, ErrOutcomeUnknown) || (err != nil && ctx.Err() != nil):
		p.report(a, OutcomeUnknown, fmt.Sprintf("%s did not answer whether it took the new password (%v): the next pass finds out and finishes or starts over", dir.Name(), err))
		return nil
	case err != nil:
		x.State, x.Sealed, x.Error, x.DoneAt = RotationFailed, "", err.Error(), p.r.now()
		if rerr := p.record(ctx, x, "rotation.failed", map[string]string{"error": err.Error()}); rerr != nil {
			return rerr
		}
		p.report(a, OutcomeFailed, "not rotated: "+err.Error()+"; the old password stands and nothing was written to the vault")
		return nil
	}
	// 3. Record that the directory took it.
	x.State, x.SetAt = RotationSet, p.r.now()
	if err := p.record(ctx, x, "rotation.set", nil); err != nil {
		return err
	}
	if err := p.r.after("set"); err != nil {
		return err
	}
	return p.writeBack(ctx, a, x, pw)
}

// writeBack writes a password the directory took to the vault entry (4)
// and records the rotation done (5). A vault write that fails leaves the
// rotation set: every pass retries it, and the password can be read from
// the store meanwhile (autoimport accounts password).
func (p *rotationPass) writeBack(ctx context.Context, a ImportedAccount, x PasswordRotation, pw string) error {
	v, scope, w, err := p.vaultOf(a)
	if err == nil {
		notes := fmt.Sprintf("Password rotated by autoimport on %s; set in %s.", p.r.now().Format(time.DateOnly), x.Target)
		err = w.SetPassword(ctx, scope, x.VaultRef, pw, notes)
	}
	if err != nil {
		if errors.Is(err, sinks.ErrNotFound) {
			p.setAttention(ctx, a, fmt.Sprintf("vault entry %s no longer exists: the new password of %s is in autoimport's store (autoimport accounts password); choose an entry with autoimport accounts match", x.VaultRef, x.Target))
		}
		p.report(a, OutcomeVaultPending, fmt.Sprintf("password changed in %s, vault not yet updated: %v; retried every pass (autoimport accounts password --customer %s %s reads it meanwhile)", x.Target, err, p.c.ID, a.Username))
		return nil
	}
	if err := p.r.after("vault"); err != nil {
		return err
	}
	x.State, x.Sealed, x.DoneAt, x.Error = RotationDone, "", p.r.now(), ""
	if err := p.record(ctx, x, "rotation.done", map[string]string{"vault": v.Name()}); err != nil {
		return err
	}
	if err := p.r.after("done"); err != nil {
		return err
	}
	p.report(a, OutcomeRotated, fmt.Sprintf("new password set in %s and written to %s entry %s", x.Target, v.Name(), x.VaultRef))
	return nil
}

// finish resolves a rotation an earlier pass left open: a pending one
// whose directory call never answered (or a crash) is looked up in the
// directory; a set one still needs its vault write.
func (p *rotationPass) finish(ctx context.Context, a ImportedAccount, x PasswordRotation) error {
	pwb, err := p.r.Key.Open(x.Sealed)
	if err != nil {
		p.report(a, OutcomeFailed, fmt.Sprintf("the pending password of the rotation started %s cannot be opened: %v", x.StartedAt.Format(time.DateTime), err))
		return nil
	}
	pw := string(pwb)
	if x.State == RotationPending {
		dir, err := p.directoryOf(a)
		if err != nil {
			p.report(a, OutcomeUnknown, "the rotation left pending cannot be checked: "+err.Error())
			return nil
		}
		took, err := dir.Took(ctx, a, pw, x.Marker)
		if err != nil {
			p.report(a, OutcomeUnknown, fmt.Sprintf("cannot tell yet whether %s took the password of the rotation left pending: %v; the next pass asks again", dir.Name(), err))
			return nil
		}
		if !took {
			x.State, x.Sealed, x.DoneAt = RotationAbandoned, "", p.r.now()
			if err := p.record(ctx, x, "rotation.abandoned", map[string]string{"reason": dir.Name() + " never took the pending password: the old one stands"}); err != nil {
				return err
			}
			delete(p.open, ledgerKey{a.Source, a.SourceID})
			// The account is still due: rotate it anew now.
			if p.opt.Now || !p.r.now().Before(p.dueAt(a)) {
				return p.rotate(ctx, a)
			}
			return nil
		}
		x.State, x.SetAt = RotationSet, p.r.now()
		if err := p.record(ctx, x, "rotation.set", map[string]string{"found": "after the pass that set it stopped"}); err != nil {
			return err
		}
	}
	return p.writeBack(ctx, a, x, pw)
}

// entryGone turns an administrator whose vault entry was deleted to
// ambiguous: it is not rotated until a technician links an entry.
func (p *rotationPass) entryGone(ctx context.Context, a ImportedAccount, err error) error {
	reason := fmt.Sprintf("vault entry %s no longer exists (%v): not rotated; link an entry with autoimport accounts match --customer %s %s --vault-entry ID", a.VaultRef, err, p.c.ID, a.Username)
	p.setAttention(ctx, a, reason)
	p.report(a, OutcomeSkipped, reason)
	return nil
}

func (p *rotationPass) setAttention(ctx context.Context, a ImportedAccount, reason string) {
	err := p.r.Store.Update(ctx, func(tx Tx) error {
		return tx.PutAttention(ctx, AccountAttention{Customer: p.c.ID, Source: a.Source, SourceID: a.SourceID, Type: a.Type, Username: a.Username,
			DisplayName: a.DisplayName, Email: a.Email, State: StateAmbiguous, Reason: reason, Since: p.r.now()})
	})
	if err != nil {
		p.log.WithError(err).Warn("could not record that an administrator needs a person")
	}
}

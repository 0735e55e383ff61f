package jobs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Connections are one customer's ready clients, as its tenant
// configuration describes them. A nil field is an integration the customer
// does not use.
type Connections struct {
	AD   sources.Source
	M365 sources.Source
	// Vaults per account type with the customer's place in them.
	Vaults     map[AccountType]sinks.Vault
	VaultScope map[AccountType]sinks.VaultScope
	PSA        sinks.PSA
	PSAScope   sinks.PSAScope
	Mailer     sinks.Mailer
	// EnrollmentURL is the self-serve enrollment link in welcome emails.
	EnrollmentURL string
	// Directories set administrators' passwords, by source ("ad",
	// "m365"), for rotation.
	Directories map[string]PasswordDirectory
}

// idleConnectionCloser is a client that keeps connections open between
// its calls (an Active Directory source between password exchanges).
type idleConnectionCloser interface {
	CloseIdleConnections()
}

// closeIdleConnections closes what the customer's directory clients keep
// open between calls, once a pass is done with them.
func (c *Connections) closeIdleConnections() {
	for _, d := range c.Directories {
		if ic, ok := d.(idleConnectionCloser); ok {
			ic.CloseIdleConnections()
		}
	}
}

// Connector makes a customer's clients. Secret references are resolved
// here, at run time: a missing one fails that customer only.
type Connector interface {
	Connect(ctx context.Context, t *Tenant, c Customer) (*Connections, error)
}

// ImportOptions change how one import pass runs.
type ImportOptions struct {
	DryRun     bool
	AllowSurge bool
	// Surge is the threshold unless the customer sets its own.
	Surge SurgeThreshold
	// Stop, when closed or cancelled, ends the pass after the accounts in
	// hand are applied, recorded and mailed; the others are left for the
	// next run.
	Stop context.Context
	// OnAccount, when set, receives every account's final plan as soon as
	// it is known: skipped and already-imported accounts while the sources
	// are read, new accounts once they are applied, recorded and mailed,
	// in no set order (or planned, in order, in a dry run). Calls come one
	// at a time.
	OnAccount func(AccountPlan)
	// Lease, when set, is the customer's lease. Once it is lost (see
	// Lease.Lost: a failed renewal, another holder, or its time run out
	// on this process's clock, as after a pause) another autoimport may
	// import the customer, so the pass makes no further sink call and
	// records nothing more, and the customer is reported failed with the
	// cause.
	Lease *Lease
	// FullRead reads every source that reads incrementally in full
	// (reconciling its copy) this time.
	FullRead bool
	// EveryAccount has every account's plan go to OnAccount, even when
	// nothing changed since the last pass: a settled pass (settled.go)
	// reports only what needs a person and the counts.
	EveryAccount bool
}

// leaseLost returns why the customer's lease was lost, nil while it holds.
func (o *ImportOptions) leaseLost() error { return o.Lease.Lost() }

// update writes fn's changes in one transaction fenced by the customer's
// lease (see fenced): once another holder may have taken the customer,
// the pass's records are refused by the database, not only by this
// process's own clock.
func (ps *pass) update(ctx context.Context, fn func(tx Tx) error) error {
	return fenced(ctx, ps.im.Store, ps.opt.Lease, fn)
}

// Counts sum up one customer's pass.
type Counts struct {
	Candidates         int `json:"candidates"`
	Imported           int `json:"imported"`
	AlreadyImported    int `json:"already_imported"`
	Skipped            int `json:"skipped"`
	Ambiguous          int `json:"ambiguous"`
	Failed             int `json:"failed"`
	Held               int `json:"held"`
	VaultMatched       int `json:"vault_matched"`
	VaultCreated       int `json:"vault_created"`
	PSAMatched         int `json:"psa_matched"`
	PSACreated         int `json:"psa_created"`
	EmailsSent         int `json:"emails_sent"`
	PossibleDuplicates int `json:"possible_duplicates"`
}

// Customer statuses in a report.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
	StatusHeld   = "held"
	StatusBusy   = "busy" // another runner holds the customer's lease
)

// CustomerReport is the outcome of one customer's pass. It holds counts
// and the accounts that need a person; every account's plan goes to
// ImportOptions.OnAccount as it is decided, so that a directory of any
// size is never held whole.
type CustomerReport struct {
	Customer string   `json:"customer"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	DryRun   bool     `json:"dry_run,omitempty"`
	Counts   Counts   `json:"counts"`
	Notices  []string `json:"notices,omitempty"`
	// Attention lists the accounts a person must look at: ambiguous
	// matches, failures and possible duplicates, the first 1,000 of them;
	// AttentionOmitted counts the rest.
	Attention        []AccountPlan `json:"attention,omitempty"`
	AttentionOmitted int           `json:"attention_omitted,omitempty"`
	// NeedPerson counts, by state, the customer's accounts that need a
	// person after this pass, as the store keeps them (autoimport
	// accounts list shows them): this pass's and those left before.
	NeedPerson map[string]int `json:"need_person,omitempty"`
	// NextStep tells a person where to look when accounts need one:
	// "N accounts need a person: autoimport accounts list --customer C
	// --state S".
	NextStep string `json:"next_step,omitempty"`
	// Reads says, per source read incrementally, whether this pass read
	// it in full or only what changed, why, and what it cost.
	Reads []sources.ReadReport `json:"reads,omitempty"`
	// UnchangedSince, when set, says that nothing this pass would read
	// had changed since the pass that ended then, whose counts, notices
	// and accounts that need a person this report repeats: the pass read
	// only its directories' changes (settled.go).
	UnchangedSince time.Time     `json:"unchanged_since,omitzero"`
	Elapsed        time.Duration `json:"elapsed_ns"`
	// Times says where the pass's time went.
	Times PassTimes `json:"times"`
}

// Settled reports that the pass found nothing changed since the
// customer's last pass and repeated its report (UnchangedSince).
func (r *CustomerReport) Settled() bool { return !r.UnchangedSince.IsZero() }

func (r *CustomerReport) fail(err error) {
	r.Status, r.Error = StatusFailed, err.Error()
}

// Importer runs one customer's import pass.
type Importer struct {
	Store     Store
	Connector Connector
	Log       logrus.FieldLogger
	// Actor is recorded in audit events ("autoimport").
	Actor string
	Now   func() time.Time
	// Copies keeps the local copies of the sources that read
	// incrementally; nil reads every source whole, every pass.
	Copies sources.CopyStore
	// FullReadEvery is the longest time between two full reads of such a
	// source (DefaultFullReadEvery when zero).
	FullReadEvery time.Duration
	// FullReads, shared by the customers of a run, limits how many of
	// their directories are read in full at once (see
	// sources.ReadOptions.FullReads); nil: no limit.
	FullReads *semaphore.Weighted
	// AttentionRecheckEvery is how long an unchanged ambiguous account
	// goes without a check against the vault and the PSA
	// (DefaultAttentionRecheckEvery when zero).
	AttentionRecheckEvery time.Duration
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now().UTC()
	}
	return time.Now().UTC()
}

// Import runs one pass for a customer, step by step: begin (options,
// connections, the last settled pass, the ledger and the accounts that
// need a person), settle (a pass that finds nothing changed since the
// last pass that had nothing to do ends there, with that pass's report;
// otherwise it reads the ledger now if begin did not), collect the new
// accounts (deciding skipped and already-imported ones as they
// stream in), read each sink's index once into a planner, hold a surge,
// then plan only (a dry run) or apply the new accounts and end the pass.
// Only the new accounts are held for the whole pass, compactly; every
// account's plan leaves through ImportOptions.OnAccount.
func (im *Importer) Import(ctx context.Context, t *Tenant, c Customer, opt ImportOptions) *CustomerReport {
	start := time.Now()
	rep := &CustomerReport{Customer: c.ID, Name: c.Name, Status: StatusOK, DryRun: opt.DryRun}
	defer func() { rep.Elapsed = time.Since(start); rep.NextStep = nextStep(rep); sortAttention(rep.Attention) }()

	ps, conn, err := im.begin(ctx, t, c, opt, rep)
	if err != nil {
		rep.fail(err)
		return rep
	}
	if ps == nil {
		return rep // no source: nothing to import
	}
	settled, err := ps.settle(ctx, conn)
	if err != nil {
		rep.fail(err)
		return rep
	}
	if settled {
		return rep // nothing changed since the last pass: its report stands
	}
	fresh, err := ps.collectNew(ctx, conn)
	if err != nil {
		rep.fail(err)
		return rep
	}
	plans, err := ps.newPlanner(ctx, conn, fresh)
	if err != nil {
		rep.fail(err)
		return rep
	}
	if ps.holdSurge(ctx, plans) {
		return rep
	}
	if opt.DryRun {
		ps.planOnly(ctx, conn, plans)
		return rep
	}
	if err := ps.beforeWrites(ctx, conn); err != nil {
		rep.fail(err)
		return rep
	}
	ps.apply(ctx, conn, plans)
	ps.end(ctx, conn, plans.len())
	return rep
}

// begin resolves the customer's options and notes those paused, connects
// to its integrations, and reads the customer's version and last settled
// pass (settled.go). A customer without a source has nothing to import:
// begin returns no pass, and no error.
func (im *Importer) begin(ctx context.Context, t *Tenant, c Customer, opt ImportOptions, rep *CustomerReport) (*pass, *Connections, error) {
	opts := map[AccountType]Resolved{EndUser: Resolve(t, c, EndUser), Admin: Resolve(t, c, Admin)}
	for _, typ := range AccountTypes {
		if opts[typ].On(Paused) {
			rep.Notices = append(rep.Notices, fmt.Sprintf("%s imports are paused (%s)", typ, originOf(opts[typ])))
		}
	}
	if c.Sources.AD == nil && c.Sources.M365 == nil {
		rep.Notices = append(rep.Notices, "no source is configured (sources.ad or sources.m365): nothing to import")
		return nil, nil, nil
	}
	conn, err := im.Connector.Connect(ctx, t, c)
	if err != nil {
		return nil, nil, fmt.Errorf("customer %s: %w", c.ID, err)
	}
	ps := newPass(im, c, opt, opts, rep)
	if err := ps.loadSettled(ctx); err != nil {
		return nil, nil, fmt.Errorf("customer %s: %w", c.ID, err)
	}
	return ps, conn, nil
}

// readStored reads the customer's ledger and the accounts that need a
// person.
func (ps *pass) readStored(ctx context.Context) error {
	if err := ps.readLedger(ctx); err != nil {
		return fmt.Errorf("read the ledger: %w", err)
	}
	return ps.readAttention(ctx, !ps.opt.DryRun)
}

// collectNew reads the customer's sources (their copies at once), then
// its ledger and the accounts that need a person, and returns the new
// accounts; skipped and already-imported accounts are decided and
// reported as they come. It then notes the imported accounts gone from a
// source read whole and settles the ambiguous accounts held aside. The
// ledger is read after the directories, not beside them: a full read of
// a large domain holds the most memory as it ends, and the ledger and the
// accounts that need a person are the selection's, not the read's.
func (ps *pass) collectNew(ctx context.Context, conn *Connections) (*newAccounts, error) {
	linkTwins := conn.AD != nil && conn.M365 != nil && ps.opts[EndUser].On(M365Sync)
	sels := ps.selections()
	if err := ps.readCopies(ctx, conn, sels); err != nil {
		return nil, fmt.Errorf("customer %s: %w", ps.c.ID, err)
	}
	if err := ps.readStored(ctx); err != nil {
		return nil, fmt.Errorf("customer %s: %w", ps.c.ID, err)
	}
	defer timed(&ps.rep.Times.Selection)()
	fresh, err := ps.collect(ctx, conn, sels, linkTwins)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", ps.c.ID, err)
	}
	ps.markMissing()
	ps.settleAmbiguous(ctx, fresh)
	return fresh, nil
}

// planner plans a pass's new accounts a batch of applyBatch at a time, so
// that only a batch of plans is held at once, never a plan per account.
type planner struct {
	ps    *pass
	in    PlanInput
	fresh *newAccounts
}

// newPlanner reads each sink's index once, only where a new account needs
// it, and the vault entries the new accounts contend for. The indexes are
// listed once the new accounts are known, on a first import too: listed
// beside the reads and the selection, they added 20-40 MiB to the peak of
// a 100,000-user first import to save one to three seconds of it (see
// docs/benchmarks.md).
func (ps *pass) newPlanner(ctx context.Context, conn *Connections, fresh *newAccounts) (*planner, error) {
	defer timed(&ps.rep.Times.Indexes)()
	in, err := readIndexes(ctx, ps.c, conn, ps.opts, fresh.types())
	if err != nil {
		return nil, err
	}
	in.Entries = ps.entryUses(in, fresh)
	return &planner{ps: ps, in: in, fresh: fresh}, nil
}

// len is the number of new accounts.
func (pl *planner) len() int { return pl.fresh.len() }

// batchOf plans the new accounts from the from-th, applyBatch of them or
// those left.
func (pl *planner) batchOf(from int) []AccountPlan {
	to := min(from+applyBatch, pl.fresh.len())
	cands := make([]*Candidate, 0, to-from)
	for i := from; i < to; i++ {
		cands = append(cands, new(pl.fresh.get(i)))
	}
	pl.in.Candidates = cands
	pl.in.Choices = pl.ps.choices
	return Plan(pl.in)
}

// each plans every new account, batch by batch, and calls fn with each
// plan in order.
func (pl *planner) each(fn func(p *AccountPlan)) {
	for from := 0; from < pl.len(); from += applyBatch {
		batch := pl.batchOf(from)
		for i := range batch {
			fn(&batch[i])
		}
	}
}

// holdSurge is the surge guard: a wrong selection must never flood the
// sinks. It counts the accounts the plan would import, not those it
// leaves ambiguous or paused, which write nothing; the plan is only
// counted when the new accounts are numerous enough to be held at all.
// A held customer's new accounts are reported held, the hold is audited
// as one decision, and holdSurge returns true: the pass ends there.
func (ps *pass) holdSurge(ctx context.Context, pl *planner) bool {
	c, opt := ps.c, ps.opt
	surge := opt.Surge
	if c.Surge != nil {
		surge = *c.Surge
	}
	surges := func(n int) bool {
		return !opt.AllowSurge && n > surge.Max && float64(n) > float64(ps.ledger.len())*surge.Percent/100
	}
	importable := 0
	if surges(pl.len()) {
		pl.each(func(p *AccountPlan) {
			if p.Action == ActionImport {
				importable++
			}
		})
	}
	if !surges(importable) {
		return false
	}
	ps.rep.Status = StatusHeld
	ps.rep.Error = fmt.Sprintf("customer %s held: this run would import %d new accounts, more than %d and more than %.0f%% of the %d already imported. Check the import selection; if it is right, run again with --allow-surge --customer %s (or raise the customer's surge threshold)",
		c.ID, importable, surge.Max, surge.Percent, ps.ledger.len(), c.ID)
	pl.each(func(p *AccountPlan) {
		if p.Action == ActionImport {
			*p = AccountPlan{Source: p.Source, ID: p.ID, Username: p.Username, DisplayName: p.DisplayName, Type: p.Type,
				Action: ActionHeld, Reason: "surge guard", Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}}
		}
		ps.emit(p)
	})
	ps.decide(notice{Account: fmt.Sprintf("%d new accounts", importable), Action: ActionHeld, Reason: "surge guard"}, importable)
	if !opt.DryRun {
		ps.recordNotices(ctx, nil) // new accounts: any record is refused by the copies' versions
		ps.keepAttention(ctx)
	}
	return true
}

// planOnly is a dry run's end: every new account's plan is reported, and
// what the pending welcome emails would do; nothing is written.
func (ps *pass) planOnly(ctx context.Context, conn *Connections, pl *planner) {
	pl.each(ps.emit)
	ps.finishWelcomes(ctx, conn)
}

// beforeWrites checks that the customer's lease still holds, then records
// the imported accounts' source states and the account autoimport binds
// as, before any sink is written to.
func (ps *pass) beforeWrites(ctx context.Context, conn *Connections) error {
	if err := ps.opt.leaseLost(); err != nil {
		return fmt.Errorf("%w: nothing was written", err)
	}
	if err := ps.recordStates(ctx); err != nil {
		return err
	}
	ps.recordBindAccount(ctx, conn)
	return nil
}

// end closes a pass that wrote: a lost lease fails the customer, as do
// new accounts that failed; then the welcome emails left pending by
// earlier runs are sent, the accounts that need a person are recorded,
// and last the pass's decisions with its settled record (settled.go).
func (ps *pass) end(ctx context.Context, conn *Connections, fresh int) {
	rep := ps.rep
	if err := ps.opt.leaseLost(); err != nil {
		rep.fail(fmt.Errorf("%w: stopped before the next write; what was created and not recorded is matched, not created twice, on the next run", err))
		return
	}
	if rep.Counts.Failed > 0 {
		rep.Status, rep.Error = StatusFailed, fmt.Sprintf("customer %s: %d of %d new accounts failed; they are retried next run (see each account's reason)", ps.c.ID, rep.Counts.Failed, fresh)
	}
	ps.finishWelcomes(ctx, conn)
	ps.keepAttention(ctx)
	ps.recordNotices(ctx, ps.settledNote(ctx, conn, fresh))
}

// sortAttention orders the accounts that need a person by username (then
// source and id): new accounts are reported as the pipeline finishes
// them, in no set order, and a person reads a list in a stable one.
func sortAttention(plans []AccountPlan) {
	slices.SortStableFunc(plans, func(a, b AccountPlan) int {
		return cmp.Or(strings.Compare(a.Username, b.Username), strings.Compare(a.Source, b.Source), strings.Compare(a.ID, b.ID))
	})
}

// abandon turns a batch's plans to import into skips for reason: they were
// not recorded and are imported by a later run.
func abandon(batch []AccountPlan, reason string) {
	for i := range batch {
		if batch[i].Action == ActionImport {
			batch[i].Action, batch[i].Reason, batch[i].deferred = ActionSkip, reason, true
		}
	}
}

// readIndexes lists each sink's existing entries once, only where new
// accounts of the types in need would use them: the vault of each account
// type (once per vault and container they share) and the PSA's contacts.
// The listings go to different services, so they run at once; the first
// to fail ends the others.
func readIndexes(ctx context.Context, c Customer, conn *Connections, opts map[AccountType]Resolved, need map[AccountType]bool) (PlanInput, error) {
	in := PlanInput{Customer: c, Options: opts, VaultName: map[AccountType]string{}, Vaults: map[AccountType]*sinks.VaultIndex{}, Mail: conn.Mailer != nil}
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	indexed := map[string]*sinks.VaultIndex{} // by vault and container, under mu
	keyOf := map[AccountType]string{}
	listing := map[string]bool{}
	for _, typ := range AccountTypes {
		v := conn.Vaults[typ]
		if v == nil || !need[typ] || !opts[typ].On(VaultMatch) {
			continue
		}
		in.VaultName[typ] = v.Name()
		scope := conn.VaultScope[typ]
		key := v.Name() + "\x00" + scope.Container
		keyOf[typ] = key
		if listing[key] {
			continue // listed for the other type
		}
		listing[key] = true
		g.Go(func() error {
			ix, err := v.Index(gctx, scope)
			if err != nil {
				return fmt.Errorf("customer %s: %s: list existing password entries: %w", c.ID, v.Name(), err)
			}
			mu.Lock()
			indexed[key] = ix
			mu.Unlock()
			return nil
		})
	}
	if conn.PSA != nil {
		in.PSAName = conn.PSA.Name()
	}
	if conn.PSA != nil && need[EndUser] && opts[EndUser].On(PSAMatch) {
		g.Go(func() error {
			ix, err := conn.PSA.Index(gctx, conn.PSAScope)
			if err != nil {
				return fmt.Errorf("customer %s: %s: list existing contacts: %w", c.ID, conn.PSA.Name(), err)
			}
			in.Contacts = ix
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return in, err
	}
	for typ, key := range keyOf {
		in.Vaults[typ] = indexed[key]
	}
	return in, nil
}

func sel365Empty(c Customer) bool {
	m := c.Sources.M365
	return m == nil || (len(m.Select.Groups) == 0 && len(m.Select.Roles) == 0)
}

// twinIndex finds an AD account's Entra twin among the M365 users. It
// keeps only what linking needs of each user.
type twinIndex struct {
	byImmutable map[string]*twin
	byUPN       map[string][]*twin
	byNameUser  map[string][]*twin
}

type twin struct {
	id, upn   string
	immutable bool // has an onPremisesImmutableId
	licensed  bool
}

func newTwinIndex() *twinIndex {
	return &twinIndex{byImmutable: map[string]*twin{}, byUPN: map[string][]*twin{}, byNameUser: map[string][]*twin{}}
}

func (ix *twinIndex) add(u sources.Account) {
	t := &twin{id: u.ID, upn: u.UPN, immutable: u.ImmutableID != "", licensed: u.Licensed}
	if u.ImmutableID != "" {
		ix.byImmutable[u.ImmutableID] = t
	}
	upn := strings.ToLower(u.UPN)
	if upn == "" {
		upn = strings.ToLower(u.Username)
	}
	ix.byUPN[upn] = append(ix.byUPN[upn], t)
	if at := strings.IndexByte(upn, '@'); at > 0 {
		k := upn[:at] + "\x00" + strings.ToLower(u.DisplayName)
		ix.byNameUser[k] = append(ix.byNameUser[k], t)
	}
}

func (ix *twinIndex) find(a sources.Account) (*Link, string) {
	link := func(t *twin, kind string) *Link {
		return &Link{M365ID: t.id, UPN: t.upn, Kind: kind, Licensed: t.licensed}
	}
	if a.ImmutableID != "" {
		if t, ok := ix.byImmutable[a.ImmutableID]; ok {
			return link(t, "hard"), ""
		}
	}
	if a.UPN != "" {
		if ts := ix.byUPN[strings.ToLower(a.UPN)]; len(ts) == 1 && !ts[0].immutable {
			return link(ts[0], "soft"), fmt.Sprintf("AD %s linked to Entra %s by UPN (soft match: no immutable id)", a.Username, ts[0].upn)
		}
	}
	k := strings.ToLower(a.Username) + "\x00" + strings.ToLower(a.DisplayName)
	if ts := ix.byNameUser[k]; len(ts) == 1 && !ts[0].immutable {
		return link(ts[0], "soft"), fmt.Sprintf("AD %s linked to Entra %s by username and display name (soft match)", a.Username, ts[0].upn)
	}
	return nil, ""
}

// Accounts are applied by a pipeline (pipeline.go): applyWorkers make
// sink calls at once, and a transaction records up to applyBatch
// accounts; plans are made applyBatch at a time.
const (
	applyBatch   = 64
	applyWorkers = 8
)

// markFailed turns a plan to import into an error that is retried next run.
func markFailed(p *AccountPlan, what string, err error, log logrus.FieldLogger) {
	p.Action = ActionError
	p.Reason = fmt.Sprintf("%s: %v — nothing was recorded; the account is retried next run and matched, not created twice", what, err)
	log.WithFields(logrus.Fields{"account": p.Username, "source": p.Source}).WithError(err).Warn("account import failed")
}

// createInSinks creates what an account's plan calls for, vault then
// PSA. Before each call it asks lost whether the customer's lease still
// holds; once it does not, the account is left alone (and not recorded).
// Each call carries lost as its fence, which the clients ask again right
// before a request goes out: a create that waited on a rate limiter or a
// Retry-After, or in a paused process, is not sent once the lease ran out.
func (im *Importer) createInSinks(ctx context.Context, conn *Connections, p *AccountPlan, lost func() error, log logrus.FieldLogger) {
	if p.Action != ActionImport || lost() != nil {
		return
	}
	ctx = fence.With(ctx, lost)
	if p.Vault.Op == OpCreate {
		v, scope := conn.Vaults[p.Type], conn.VaultScope[p.Type]
		e, err := v.Create(ctx, scope, p.work.newEntry)
		if err != nil {
			markFailed(p, v.Name()+": create password entry", err, log)
			return
		}
		p.Vault.Ref = e.Ref
	}
	if p.PSA.Op == OpCreate && lost() == nil {
		ct, err := conn.PSA.Create(ctx, conn.PSAScope, p.work.newContact)
		if err != nil {
			markFailed(p, conn.PSA.Name()+": create contact", err, log)
			return
		}
		p.PSA.Ref = ct.Ref
	}
}

// record writes a group's ledger rows and their audit events in one
// transaction fenced by the customer's lease l (see fenced), which also
// records each welcome email's attempt before the mailer sends it. A
// group with nothing to import opens none. Once the lease is lost —
// before the transaction, when the database is asked, or before it
// commits — the group is not recorded: its plans to import are left for
// the next run, which matches what was created. A failed transaction
// fails the group's plans to import.
func (im *Importer) record(ctx context.Context, c Customer, opts map[AccountType]Resolved, batch []AccountPlan, l *Lease, log logrus.FieldLogger) {
	if !slices.ContainsFunc(batch, func(p AccountPlan) bool { return p.Action == ActionImport }) {
		return
	}
	notRecorded := func(err error) {
		abandon(batch, "not recorded: "+err.Error()+"; the next run matches what was created, never creates it twice")
	}
	if err := l.Lost(); err != nil {
		notRecorded(err)
		return
	}
	rows := make([]ImportedAccount, 0, len(batch))
	for i := range batch {
		if batch[i].Action == ActionImport {
			rows = append(rows, im.ledgerRow(c, opts, &batch[i]))
		}
	}
	err := fenced(ctx, im.Store, l, func(tx Tx) error {
		// The batch's rows go in one statement; its events are chained
		// and written together when the transaction ends.
		if err := tx.InsertImported(ctx, rows...); err != nil {
			return err
		}
		for i := range batch {
			p := &batch[i]
			if p.Action != ActionImport {
				continue
			}
			for _, e := range importEvents(c.ID, p) {
				e.At, e.Actor = im.now(), im.actor()
				if _, err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
		}
		return l.Lost()
	})
	switch {
	case err != nil && l.Lost() != nil:
		// Lost before the commit, refused by the database (which loses
		// the lease), or lost meanwhile.
		notRecorded(err)
	case err != nil:
		for i := range batch {
			if batch[i].Action == ActionImport {
				markFailed(&batch[i], "record the import", err, log)
			}
		}
	}
}

// ledgerRow is the ledger record of an applied plan.
func (im *Importer) ledgerRow(c Customer, opts map[AccountType]Resolved, p *AccountPlan) ImportedAccount {
	a := p.work.account
	welcome := WelcomeNone
	if p.WelcomeMail.Op == OpSend {
		welcome = WelcomeAttempted
	}
	row := ImportedAccount{Customer: c.ID, Source: p.Source, SourceID: p.ID, Type: p.Type, Username: a.Username, UPN: a.UPN, DisplayName: a.DisplayName, Email: a.Email,
		ImmutableID: a.ImmutableID, SelfServe: p.Flags.SelfServe, Rotation: p.Flags.Rotation, M365Sync: p.Flags.M365Sync,
		Options: opts[p.Type].Snapshot(), OptionsOrigin: originOf(opts[p.Type]), Welcome: welcome, State: "active", ImportedAt: im.now()}
	if p.Flags.M365Sync && p.Link != nil {
		row.M365ID = p.Link.M365ID
	}
	if p.Vault.Op != OpNone {
		row.VaultIntegration, row.VaultRef, row.VaultName = p.Vault.Integration, p.Vault.Ref, p.Vault.Name
	}
	if p.PSA.Op != OpNone {
		row.PSAIntegration, row.PSARef = p.PSA.Integration, p.PSA.Ref
	}
	return row
}

func (im *Importer) actor() string {
	if im.Actor != "" {
		return im.Actor
	}
	return "autoimport"
}

// importEvents are the audit events of one imported account.
func importEvents(customer string, p *AccountPlan) []AuditEvent {
	subject := p.Source + ":" + p.ID
	ev := []AuditEvent{{Action: "import.account", Customer: customer, Subject: subject, After: doc(p)}}
	step := func(kind string, s SinkStep) {
		switch s.Op {
		case OpMatch:
			ev = append(ev, AuditEvent{Action: "import." + kind + ".matched", Customer: customer, Subject: subject, After: doc(s)})
		case OpCreate:
			ev = append(ev, AuditEvent{Action: "import." + kind + ".created", Customer: customer, Subject: subject, After: doc(s)})
		}
		if s.Warning != "" {
			ev = append(ev, AuditEvent{Action: "import." + kind + ".possible-duplicate", Customer: customer, Subject: subject, After: doc(s)})
		}
	}
	step("vault", p.Vault)
	step("psa", p.PSA)
	return ev
}

// stateLastPass holds when the customer's last complete pass ended (unix
// microseconds): every account it reported was seen then.
const stateLastPass = "last_pass"

// noteLastPass notes when the customer's last complete pass ended.
func (ps *pass) noteLastPass(ctx context.Context, tx Tx) error {
	return tx.PutState(ctx, ps.c.ID, stateLastPass, strconv.FormatInt(ps.im.now().UnixMicro(), 10))
}

// recordNotices notes the end of the pass, with its settled record (see
// settledNote; settled may be nil), and audits the decisions that need a
// person — skips, ambiguities, holds, failures — once: only when they
// differ from what the last run audited, so a run that changes nothing
// writes nothing.
func (ps *pass) recordNotices(ctx context.Context, settled func(ctx context.Context, tx Tx) error) {
	im, customer, ns := ps.im, ps.c.ID, &ps.decisions
	digest := ns.sum()
	err := ps.update(ctx, func(tx Tx) error {
		if err := ps.noteLastPass(ctx, tx); err != nil {
			return err
		}
		if settled != nil {
			if err := settled(ctx, tx); err != nil {
				return err
			}
		}
		last, err := tx.State(ctx, customer, "notices")
		if err != nil || last == digest {
			return err
		}
		if err := tx.PutState(ctx, customer, "notices", digest); err != nil {
			return err
		}
		if ns.n == 0 {
			return nil
		}
		_, err = tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: "import.decisions", Customer: customer, Subject: decisionsSubject(ns), After: ns.list()})
		return err
	})
	if err != nil {
		im.Log.WithField("customer", customer).WithError(err).Warn("could not audit the run's skipped and ambiguous accounts")
	}
}

func decisionsSubject(ns *decisionLog) string {
	if ns.n > decisionsListed {
		return fmt.Sprintf("%d accounts not imported (the first %d of %d decisions listed)", ns.accounts, decisionsListed, ns.n)
	}
	return fmt.Sprintf("%d accounts not imported", ns.accounts)
}

// count adds one account's final plan to the counts.
func (n *Counts) count(a *AccountPlan) {
	switch a.Action {
	case ActionImport:
		n.Imported++
		switch a.Vault.Op {
		case OpMatch:
			n.VaultMatched++
		case OpCreate:
			n.VaultCreated++
		}
		switch a.PSA.Op {
		case OpMatch:
			n.PSAMatched++
		case OpCreate:
			n.PSACreated++
		}
		if a.WelcomeMail.State == WelcomeSent {
			n.EmailsSent++
		}
		if a.Vault.Warning != "" {
			n.PossibleDuplicates++
		}
	case ActionAlreadyImported:
		n.AlreadyImported++
	case ActionSkip:
		n.Skipped++
	case ActionAmbiguous:
		n.Ambiguous++
	case ActionError:
		n.Failed++
	case ActionHeld:
		n.Held++
	}
}

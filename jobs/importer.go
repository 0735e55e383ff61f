package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/sirupsen/logrus"
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
	// Stop, when closed or cancelled, ends the pass after the account in
	// hand is applied and recorded.
	Stop context.Context
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

// CustomerReport is the outcome of one customer's pass.
type CustomerReport struct {
	Customer string        `json:"customer"`
	Name     string        `json:"name"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	DryRun   bool          `json:"dry_run,omitempty"`
	Counts   Counts        `json:"counts"`
	Notices  []string      `json:"notices,omitempty"`
	Accounts []AccountPlan `json:"accounts"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

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
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now().UTC()
	}
	return time.Now().UTC()
}

type ledgerKey struct{ source, id string }

// Import runs one pass for a customer: resolve options, collect candidates,
// reconcile with the ledger and hybrid twins, read each sink's index once,
// plan, and (unless a dry run) apply and record each account.
func (im *Importer) Import(ctx context.Context, t *Tenant, c Customer, opt ImportOptions) *CustomerReport {
	start := time.Now()
	rep := &CustomerReport{Customer: c.ID, Name: c.Name, Status: StatusOK, DryRun: opt.DryRun, Accounts: []AccountPlan{}}
	defer func() { rep.Elapsed = time.Since(start) }()
	log := im.Log.WithField("customer", c.ID)

	opts := map[AccountType]Resolved{EndUser: Resolve(t, c, EndUser), Admin: Resolve(t, c, Admin)}
	for _, typ := range AccountTypes {
		if opts[typ].On(Paused) {
			rep.Notices = append(rep.Notices, fmt.Sprintf("%s imports are paused (%s)", typ, originOf(opts[typ])))
		}
	}
	if c.Sources.AD == nil && c.Sources.M365 == nil {
		rep.Notices = append(rep.Notices, "no source is configured (sources.ad or sources.m365): nothing to import")
		return rep
	}
	conn, err := im.Connector.Connect(ctx, t, c)
	if err != nil {
		rep.fail(fmt.Errorf("customer %s: %w", c.ID, err))
		return rep
	}

	// Collect.
	linkTwins := conn.AD != nil && conn.M365 != nil && opts[EndUser].On(M365Sync)
	col, err := collect(ctx, c, conn, !opts[Admin].On(Paused), linkTwins)
	if err != nil {
		rep.fail(fmt.Errorf("customer %s: %w", c.ID, err))
		return rep
	}
	rep.Notices = append(rep.Notices, col.notices...)

	// Reconcile with the ledger.
	ledger := map[ledgerKey]ImportedAccount{}
	for a, err := range im.Store.ImportedAccounts(ctx, c.ID) {
		if err != nil {
			rep.fail(err)
			return rep
		}
		a.Options = nil // the snapshot is not needed here; a large ledger stays small
		ledger[ledgerKey{a.Source, a.SourceID}] = a
	}
	var fresh []*Candidate
	rep.Accounts = make([]AccountPlan, 0, len(col.candidates)+len(col.skipped))
	stateChanges := map[ledgerKey]string{}
	seen := map[ledgerKey]bool{}
	for _, s := range col.skipped {
		k := ledgerKey{string(s.Source), s.ID}
		if l, ok := ledger[k]; ok {
			seen[k] = true
			if strings.HasPrefix(s.SkipReason, "disabled") && l.State != "disabled" {
				stateChanges[k] = "disabled"
			}
			continue
		}
		rep.Accounts = append(rep.Accounts, AccountPlan{Source: string(s.Source), ID: s.ID, Username: s.Username, DisplayName: s.DisplayName, Type: s.Type,
			Action: ActionSkip, Reason: s.SkipReason, Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}})
	}
	for i := range col.candidates {
		cand := &col.candidates[i]
		a := cand.Account
		k := ledgerKey{string(a.Source), a.ID}
		if l, ok := ledger[k]; ok {
			seen[k] = true
			if l.State != "active" {
				stateChanges[k] = "active"
				rep.Notices = append(rep.Notices, fmt.Sprintf("%s %s (%s) is back in its source: it is the same imported account", a.Source, a.Username, a.ID))
			}
			if !strings.EqualFold(l.Username, a.Username) {
				rep.Notices = append(rep.Notices, fmt.Sprintf("%s account %s was renamed from %q to %q: same identity, nothing changed", a.Source, a.ID, l.Username, a.Username))
			}
			rep.Accounts = append(rep.Accounts, AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Type: l.Type,
				Action: ActionAlreadyImported, Reason: "imported " + l.ImportedAt.Format(time.DateOnly) + " under " + l.OptionsOrigin,
				Vault: SinkStep{Op: OpNone, Integration: l.VaultIntegration, Ref: l.VaultRef}, PSA: SinkStep{Op: OpNone, Integration: l.PSAIntegration, Ref: l.PSARef},
				WelcomeMail: EmailStep{Op: OpNone, State: l.Welcome}, Flags: Flags{SelfServe: l.SelfServe, Rotation: l.Rotation, M365Sync: l.M365Sync}})
			if l.Welcome == "attempted" {
				rep.Notices = append(rep.Notices, fmt.Sprintf("welcome email to %s (%s) was attempted but never confirmed: check the mail relay's log; it is not sent again", a.Username, a.Email))
			}
			continue
		}
		fresh = append(fresh, cand)
	}
	for k, l := range ledger {
		if !seen[k] && l.State != "missing" && col.complete[l.Source] {
			stateChanges[k] = "missing"
		}
	}
	rep.Counts.Candidates = len(col.candidates)

	// Surge guard: a wrong selection must never flood the sinks.
	importable := 0
	for _, cand := range fresh {
		if !opts[cand.Account.Type].On(Paused) {
			importable++
		}
	}
	surge := opt.Surge
	if c.Surge != nil {
		surge = *c.Surge
	}
	if !opt.AllowSurge && importable > surge.Max && float64(importable) > float64(len(ledger))*surge.Percent/100 {
		rep.Status = StatusHeld
		rep.Error = fmt.Sprintf("customer %s held: this run would import %d new accounts, more than %d and more than %.0f%% of the %d already imported. Check the import selection; if it is right, run again with --allow-surge --customer %s (or raise the customer's surge threshold)",
			c.ID, importable, surge.Max, surge.Percent, len(ledger), c.ID)
		for _, cand := range fresh {
			a := cand.Account
			rep.Accounts = append(rep.Accounts, AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Type: a.Type,
				Action: ActionHeld, Reason: "surge guard", Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}})
		}
		rep.tally()
		if !opt.DryRun {
			im.recordNotices(ctx, c.ID, rep)
		}
		return rep
	}

	// Read each sink's index once, only where a new account needs it.
	in := PlanInput{Customer: c, Options: opts, Candidates: fresh, VaultName: map[AccountType]string{}, Vaults: map[AccountType]*sinks.VaultIndex{}, Mail: conn.Mailer != nil}
	need := map[AccountType]bool{}
	for _, cand := range fresh {
		need[cand.Account.Type] = true
	}
	indexed := map[string]*sinks.VaultIndex{}
	for _, typ := range AccountTypes {
		v := conn.Vaults[typ]
		if v == nil || !need[typ] || !opts[typ].On(VaultMatch) {
			continue
		}
		in.VaultName[typ] = v.Name()
		key := v.Name() + "\x00" + conn.VaultScope[typ].Container
		if ix, ok := indexed[key]; ok {
			in.Vaults[typ] = ix
			continue
		}
		ix, err := v.Index(ctx, conn.VaultScope[typ])
		if err != nil {
			rep.fail(fmt.Errorf("customer %s: %s: list existing password entries: %w", c.ID, v.Name(), err))
			return rep
		}
		indexed[key] = ix
		in.Vaults[typ] = ix
	}
	if conn.PSA != nil && need[EndUser] && opts[EndUser].On(PSAMatch) {
		in.PSAName = conn.PSA.Name()
		ix, err := conn.PSA.Index(ctx, conn.PSAScope)
		if err != nil {
			rep.fail(fmt.Errorf("customer %s: %s: list existing contacts: %w", c.ID, conn.PSA.Name(), err))
			return rep
		}
		in.Contacts = ix
	} else if conn.PSA != nil {
		in.PSAName = conn.PSA.Name()
	}

	plans := Plan(in)
	if opt.DryRun {
		rep.Accounts = append(rep.Accounts, plans...)
		rep.tally()
		return rep
	}

	// Apply and record, one account at a time.
	if len(stateChanges) > 0 {
		if err := im.recordStates(ctx, c.ID, ledger, stateChanges); err != nil {
			rep.fail(err)
			return rep
		}
		for k, st := range stateChanges {
			if st != "active" {
				rep.Notices = append(rep.Notices, fmt.Sprintf("imported %s account %s (%s) is %s in its source: marked so; nothing was deleted anywhere", k.source, ledger[k].Username, k.id, st))
			}
		}
	}
	stop := opt.Stop
	if stop == nil {
		stop = ctx
	}
	// Batches flow through two stages: the next batch's sink calls and
	// record run while the previous batch's welcome emails go out.
	var emails sync.WaitGroup
	for start := 0; start < len(plans); start += applyBatch {
		end := min(start+applyBatch, len(plans))
		if stop.Err() != nil || ctx.Err() != nil {
			for i := start; i < len(plans); i++ {
				if plans[i].Action == ActionImport {
					plans[i].Action, plans[i].Reason = ActionSkip, "the run was stopped before this account; it is imported next run"
				}
			}
			rep.Notices = append(rep.Notices, fmt.Sprintf("stopped after %d of %d new accounts", start, len(plans)))
			break
		}
		// The batch in hand finishes even when a stop arrives.
		batch := plans[start:end]
		im.applyBatch(context.WithoutCancel(ctx), c, conn, opts, batch, log)
		emails.Wait()
		emails.Add(1)
		go func() {
			defer emails.Done()
			im.sendWelcomes(context.WithoutCancel(ctx), c, conn, batch, log)
		}()
	}
	emails.Wait()
	rep.Accounts = append(rep.Accounts, plans...)
	rep.tally()
	if rep.Counts.Failed > 0 {
		rep.Status, rep.Error = StatusFailed, fmt.Sprintf("customer %s: %d of %d new accounts failed; they are retried next run (see each account's reason)", c.ID, rep.Counts.Failed, len(plans))
	}
	im.recordNotices(ctx, c.ID, rep)
	return rep
}

// collected is what the sources yielded for one customer.
type collected struct {
	candidates []Candidate
	skipped    []sources.Account
	notices    []string
	// complete says which sources were read whole (so an account absent
	// from them is really missing).
	complete map[string]bool
}

// collect reads the customer's sources, classifies, and links hybrid twins.
// With linkTwins, every M365 user is read as well, to find the Entra twin
// of each AD account (m365_sync), not only those the M365 selection holds.
func collect(ctx context.Context, c Customer, conn *Connections, wantAdmins, linkTwins bool) (*collected, error) {
	col := &collected{complete: map[string]bool{}}
	endUserSource := sources.KindM365
	if conn.AD != nil {
		endUserSource = sources.KindAD
	}
	each := func(name string, src sources.Source, sel sources.Selection, fn func(sources.Account)) error {
		for a, err := range src.Accounts(ctx, sel) {
			var ee *sources.EntryError
			if errors.As(err, &ee) {
				col.notices = append(col.notices, fmt.Sprintf("%s: %v", name, ee))
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
		m := c.Sources.M365
		sel := sources.Selection{Groups: m.Select.Groups, Roles: m.Select.Roles, IncludeDisabled: m.IncludeDisabled}
		if err := each("Microsoft 365", conn.M365, sel, func(a sources.Account) { m365Accounts = append(m365Accounts, a) }); err != nil {
			return nil, err
		}
		col.complete[string(sources.KindM365)] = true
		if linkTwins && !sel365Empty(c) {
			if err := each("Microsoft 365 (all users, for hybrid links)", conn.M365, sources.Selection{}, twins.add); err != nil {
				return nil, err
			}
		} else {
			for _, a := range m365Accounts {
				twins.add(a)
			}
		}
	}

	// Active Directory, streamed: accounts are classified as they come.
	linked := map[string]bool{} // M365 ids that are an AD account's twin
	if conn.AD != nil {
		ad := c.Sources.AD
		sel := sources.Selection{Groups: ad.Select.Groups, OUs: ad.Select.OUs, Builtin: ad.Select.Builtin, Admins: wantAdmins, IncludeDisabled: ad.IncludeDisabled}
		err := each("Active Directory", conn.AD, sel, func(a sources.Account) {
			if !a.Candidate() {
				col.skipped = append(col.skipped, a)
				return
			}
			cand := Candidate{Account: a}
			if l, note := twins.find(a); l != nil {
				cand.Link = l
				linked[l.M365ID] = true
				if note != "" {
					col.notices = append(col.notices, note)
				}
			}
			col.candidates = append(col.candidates, cand)
		})
		if err != nil {
			return nil, err
		}
		col.complete[string(sources.KindAD)] = true
	}
	for _, a := range m365Accounts {
		if linked[a.ID] {
			continue // one person is imported once, from AD
		}
		if !a.Candidate() {
			col.skipped = append(col.skipped, a)
			continue
		}
		if endUserSource == sources.KindAD && a.Type == EndUser {
			continue // end users come from AD only
		}
		col.candidates = append(col.candidates, Candidate{Account: a})
	}
	sort.SliceStable(col.candidates, func(i, j int) bool {
		a, b := col.candidates[i].Account, col.candidates[j].Account
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return strings.ToLower(a.Username) < strings.ToLower(b.Username)
	})
	return col, nil
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

// Accounts are applied in batches: the sink calls of a batch run
// concurrently, then the batch's ledger rows and audit events are written
// in one transaction, then its welcome emails are sent. A crash before the
// transaction leaves entries that the next run matches; emails go out only
// after their attempt is recorded.
const (
	applyBatch   = 64
	applyWorkers = 8
)

// applyBatch carries out a batch of plans: vault, then PSA, per account
// (concurrently across accounts); then the ledger rows and their audit
// events in one transaction, which also records each welcome email's
// attempt before sendWelcomes sends it.
func (im *Importer) applyBatch(ctx context.Context, c Customer, conn *Connections, opts map[AccountType]Resolved, batch []AccountPlan, log logrus.FieldLogger) {
	failed := func(p *AccountPlan, what string, err error) {
		p.Action = ActionError
		p.Reason = fmt.Sprintf("%s: %v — nothing was recorded; the account is retried next run and matched, not created twice", what, err)
		log.WithFields(logrus.Fields{"account": p.Username, "source": p.Source}).WithError(err).Warn("account import failed")
	}
	// 1. Sinks.
	parallelPlans(batch, func(p *AccountPlan) {
		if p.Vault.Op == OpCreate {
			v, scope := conn.Vaults[p.Type], conn.VaultScope[p.Type]
			e, err := v.Create(ctx, scope, p.work.newEntry)
			if err != nil {
				failed(p, v.Name()+": create password entry", err)
				return
			}
			p.Vault.Ref = e.Ref
		}
		if p.PSA.Op == OpCreate {
			ct, err := conn.PSA.Create(ctx, conn.PSAScope, p.work.newContact)
			if err != nil {
				failed(p, conn.PSA.Name()+": create contact", err)
				return
			}
			p.PSA.Ref = ct.Ref
		}
	})

	// 2. Record.
	err := im.Store.Update(ctx, func(tx Tx) error {
		for i := range batch {
			p := &batch[i]
			if p.Action != ActionImport {
				continue
			}
			if err := tx.InsertImported(ctx, im.ledgerRow(c, opts, p)); err != nil {
				return err
			}
			for _, e := range importEvents(c.ID, p) {
				e.At, e.Actor = im.now(), im.actor()
				if _, err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		for i := range batch {
			if batch[i].Action == ActionImport {
				failed(&batch[i], "record the import", err)
			}
		}
		return
	}

}

// sendWelcomes sends a recorded batch's welcome emails, whose attempts
// the batch's transaction holds, then records their outcomes.
func (im *Importer) sendWelcomes(ctx context.Context, c Customer, conn *Connections, batch []AccountPlan, log logrus.FieldLogger) {
	type outcome struct {
		p           *AccountPlan
		action, doc string
	}
	var mu sync.Mutex
	var outcomes []outcome
	parallelPlans(batch, func(p *AccountPlan) {
		if p.WelcomeMail.Op != OpSend {
			return
		}
		a := p.work.account
		w := sinks.Welcome{Customer: c.ID, CustomerName: c.Name, To: a.Email, DisplayName: a.DisplayName, Username: a.Username,
			EnrollmentURL: conn.EnrollmentURL, MessageID: sinks.WelcomeMessageID(c.ID, p.Source+":"+p.ID)}
		state, action, after := "sent", "import.email.sent", doc(map[string]string{"to": a.Email, "message_id": w.MessageID})
		if err := conn.Mailer.SendWelcome(ctx, w); err != nil {
			// The attempt stays on record; an email is never sent twice. An
			// unconfirmed send stays "attempted" for a person to check.
			state, action = "failed", "import.email.failed"
			if errors.Is(err, sinks.ErrUnconfirmed) {
				state, action = "attempted", "import.email.unconfirmed"
			}
			after = doc(map[string]string{"to": a.Email, "message_id": w.MessageID, "error": err.Error()})
			log.WithField("account", p.Username).WithError(err).Warn("welcome email failed; it is not retried automatically")
		}
		p.WelcomeMail.State = state
		mu.Lock()
		outcomes = append(outcomes, outcome{p, action, after})
		mu.Unlock()
	})
	if len(outcomes) == 0 {
		return
	}
	err := im.Store.Update(ctx, func(tx Tx) error {
		for _, o := range outcomes {
			if err := tx.SetWelcome(ctx, c.ID, o.p.Source, o.p.ID, o.p.WelcomeMail.State); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: o.action, Customer: c.ID, Subject: o.p.Source + ":" + o.p.ID, After: o.doc}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.WithError(err).Warn("could not record the welcome emails' outcomes; they stay 'attempted' and are not sent again")
		for _, o := range outcomes {
			o.p.WelcomeMail.State = "attempted"
		}
	}
}

// parallelPlans runs fn for each plan to import, applyWorkers at a time.
func parallelPlans(batch []AccountPlan, fn func(p *AccountPlan)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, applyWorkers)
	for i := range batch {
		if batch[i].Action != ActionImport {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(p *AccountPlan) {
			defer func() { <-sem; wg.Done() }()
			fn(p)
		}(&batch[i])
	}
	wg.Wait()
}

// ledgerRow is the ledger record of an applied plan.
func (im *Importer) ledgerRow(c Customer, opts map[AccountType]Resolved, p *AccountPlan) ImportedAccount {
	a := p.work.account
	welcome := "none"
	if p.WelcomeMail.Op == OpSend {
		welcome = "attempted"
	}
	row := ImportedAccount{Customer: c.ID, Source: p.Source, SourceID: p.ID, Type: p.Type, Username: a.Username, UPN: a.UPN, DisplayName: a.DisplayName, Email: a.Email,
		ImmutableID: a.ImmutableID, SelfServe: p.Flags.SelfServe, Rotation: p.Flags.Rotation, M365Sync: p.Flags.M365Sync,
		Options: opts[p.Type].Snapshot(), OptionsOrigin: originOf(opts[p.Type]), Welcome: welcome, State: "active", ImportedAt: im.now()}
	if p.Flags.M365Sync && p.Link != nil {
		row.M365ID = p.Link.M365ID
	}
	if p.Vault.Op != OpNone {
		row.VaultIntegration, row.VaultRef = p.Vault.Integration, p.Vault.Ref
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

// recordStates marks imported accounts disabled, missing or active again.
func (im *Importer) recordStates(ctx context.Context, customer string, ledger map[ledgerKey]ImportedAccount, changes map[ledgerKey]string) error {
	return im.Store.Update(ctx, func(tx Tx) error {
		for k, st := range changes {
			if err := tx.SetSourceState(ctx, customer, k.source, k.id, st); err != nil {
				return err
			}
			_, err := tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: "import.source-state", Customer: customer, Subject: k.source + ":" + k.id,
				Before: doc(map[string]string{"state": ledger[k].State}), After: doc(map[string]string{"state": st})})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// recordNotices audits the decisions that need a person — skips,
// ambiguities, holds, failures — once: only when they differ from what
// the last run audited, so a run that changes nothing writes nothing.
func (im *Importer) recordNotices(ctx context.Context, customer string, rep *CustomerReport) {
	type notice struct {
		Account, Action, Reason string
	}
	var ns []notice
	for _, a := range rep.Accounts {
		switch a.Action {
		case ActionSkip, ActionAmbiguous, ActionHeld, ActionError:
			ns = append(ns, notice{a.Source + ":" + a.ID + " " + a.Username, a.Action, a.Reason})
		}
	}
	b, _ := json.Marshal(ns)
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	err := im.Store.Update(ctx, func(tx Tx) error {
		last, err := tx.State(ctx, customer, "notices")
		if err != nil || last == digest {
			return err
		}
		if err := tx.PutState(ctx, customer, "notices", digest); err != nil {
			return err
		}
		if len(ns) == 0 {
			return nil
		}
		_, err = tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: "import.decisions", Customer: customer, Subject: fmt.Sprintf("%d accounts not imported", len(ns)), After: string(b)})
		return err
	})
	if err != nil {
		im.Log.WithField("customer", customer).WithError(err).Warn("could not audit the run's skipped and ambiguous accounts")
	}
}

func (r *CustomerReport) tally() {
	n := Counts{Candidates: r.Counts.Candidates}
	for _, a := range r.Accounts {
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
			if a.WelcomeMail.State == "sent" {
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
	r.Counts = n
}

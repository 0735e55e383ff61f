package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sources"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/semaphore"
)

// Runner runs import passes over customers: a bounded worker pool, one
// lease per customer so that replicas never import one customer at once,
// and a report.
type Runner struct {
	Store     Store
	Connector Connector
	Log       logrus.FieldLogger
	// Holder names this runner in leases (host, process and a random part
	// by default; see HolderName).
	Holder      string
	LeaseTTL    time.Duration
	Concurrency int
	Surge       SurgeThreshold
	Metrics     *Metrics
	// Key seals pending passwords of rotations (AUTOIMPORT_SECRET_KEY).
	Key *secret.Key
	// Actor is recorded in the audit events of imports and rotations
	// ("autoimport" when empty; see RecordedActor).
	Actor string
	// Copies, FullReadEvery and AttentionRecheckEvery: see Importer.
	Copies                sources.CopyStore
	FullReadEvery         time.Duration
	AttentionRecheckEvery time.Duration
	// FullReads is how many directories are read in full at once, across
	// the customers of a run (DefaultFullReads when zero).
	FullReads int
	// Progress, when set, is called after each customer.
	Progress   func(done, total int, r *CustomerReport)
	mu         sync.Mutex // one run at a time
	holderOnce sync.Once
	holderName string
	// accountMu makes OnAccount calls come one at a time.
	accountMu sync.Mutex
	// fullReads is the run's FullReads, shared by its customers.
	fullReads *semaphore.Weighted
}

// RunOptions select what a run does.
type RunOptions struct {
	// Customers limits the run to these ids (all when empty).
	Customers  []string
	DryRun     bool
	AllowSurge bool
	// Stop ends the run after the accounts in hand; the context passed to
	// Run bounds I/O.
	Stop context.Context
	// OnAccount, when set, receives every account's final plan with its
	// customer as soon as it is known (see ImportOptions.OnAccount). Calls
	// come one at a time, whichever customer's pass makes them.
	OnAccount func(customer string, p AccountPlan)
	// FullRead reads every source in full this time (run --once --full).
	FullRead bool
	// EveryAccount sends every account's plan to OnAccount even for a
	// customer of which nothing changed since its last pass (see
	// ImportOptions.EveryAccount).
	EveryAccount bool
}

// Report is the outcome of one run.
type Report struct {
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	DryRun    bool              `json:"dry_run"`
	Status    string            `json:"status"` // ok, failed
	Totals    Counts            `json:"totals"`
	Customers []*CustomerReport `json:"customers"`
}

// Failed reports whether any customer failed or was held.
func (r *Report) Failed() bool { return r.Status != StatusOK }

// Unchanged counts the customers whose pass found nothing changed since
// their last one and repeated its report (settled.go).
func (r *Report) Unchanged() int {
	n := 0
	for _, c := range r.Customers {
		if c.Settled() {
			n++
		}
	}
	return n
}

// ErrBusy is returned when another run of this runner is under way.
var ErrBusy = fmt.Errorf("a run is already under way")

// HolderName is the name this runner takes leases under: Holder when
// set, else one made once per runner from the host, the process and a
// random part.
func (r *Runner) HolderName() string {
	if r.Holder != "" {
		return r.Holder
	}
	r.holderOnce.Do(func() { r.holderName = newHolderName() })
	return r.holderName
}

// Run imports every customer (or those named) once.
func (r *Runner) Run(ctx context.Context, opt RunOptions) (*Report, error) {
	if !r.mu.TryLock() {
		return nil, ErrBusy
	}
	defer r.mu.Unlock()
	rep := &Report{Started: time.Now().UTC(), DryRun: opt.DryRun, Status: StatusOK}
	t, err := r.Store.LoadTenant(ctx)
	if err != nil {
		return nil, err
	}
	customers, err := selectCustomers(t, opt.Customers)
	if err != nil {
		return nil, err
	}
	var runID int64
	if !opt.DryRun {
		if runID, err = r.Store.StartRun(ctx, rep.Started); err != nil {
			return nil, err
		}
	}
	r.fullReads = semaphore.NewWeighted(int64(cmp.Or(r.FullReads, DefaultFullReads)))
	workers := max(1, min(r.Concurrency, len(customers)))
	jobs := make(chan Customer)
	results := make(chan *CustomerReport)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				results <- r.one(ctx, t, c, opt)
			}
		}()
	}
	stop := opt.Stop
	if stop == nil {
		stop = ctx
	}
	go func() {
		defer close(jobs)
		for _, c := range customers {
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			case <-stop.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	done := 0
	for cr := range results {
		done++
		rep.Customers = append(rep.Customers, cr)
		if r.Progress != nil {
			r.Progress(done, len(customers), cr)
		}
	}
	sort.Slice(rep.Customers, func(i, j int) bool { return rep.Customers[i].Customer < rep.Customers[j].Customer })
	for _, cr := range rep.Customers {
		rep.Totals.Add(cr.Counts)
		// A busy customer is another replica's work, unless it was named:
		// then this run did not do what it was asked.
		if cr.Status == StatusFailed || cr.Status == StatusHeld || (cr.Status == StatusBusy && len(opt.Customers) > 0) {
			rep.Status = StatusFailed
		}
	}
	rep.Finished = time.Now().UTC()
	r.Metrics.observeRun(rep)
	if !opt.DryRun {
		summary, _ := json.Marshal(struct {
			Totals    Counts   `json:"totals"`
			Customers []string `json:"customers"`
		}{rep.Totals, customerStatuses(rep)})
		if err := r.Store.FinishRun(context.WithoutCancel(ctx), runID, rep.Finished, rep.Status, string(summary)); err != nil {
			r.Log.WithError(err).Warn("could not record the run's end")
		}
	}
	return rep, nil
}

func customerStatuses(rep *Report) []string {
	out := make([]string, len(rep.Customers))
	for i, c := range rep.Customers {
		out[i] = c.Customer + ":" + c.Status
	}
	return out
}

// one imports one customer under its lease.
func (r *Runner) one(ctx context.Context, t *Tenant, c Customer, opt RunOptions) *CustomerReport {
	im := &Importer{Store: r.Store, Connector: r.Connector, Log: r.Log, Copies: r.Copies, FullReadEvery: r.FullReadEvery, Actor: r.Actor,
		AttentionRecheckEvery: r.AttentionRecheckEvery, FullReads: r.fullReads}
	iopt := ImportOptions{DryRun: opt.DryRun, AllowSurge: opt.AllowSurge, Surge: r.Surge, Stop: opt.Stop, FullRead: opt.FullRead, EveryAccount: opt.EveryAccount, OnAccount: func(p AccountPlan) {
		r.accountMu.Lock()
		defer r.accountMu.Unlock()
		if !opt.DryRun {
			r.Metrics.observeAccount(c.ID, &p)
		}
		if opt.OnAccount != nil {
			opt.OnAccount(c.ID, p)
		}
	}}
	if opt.DryRun {
		// A dry run writes nothing anywhere, not even a lease.
		return im.Import(ctx, t, c, iopt)
	}
	var rep *CustomerReport
	held, err := r.withLease(ctx, c.ID, func(l *Lease) {
		iopt.Lease = l
		rep = im.Import(ctx, t, c, iopt)
	})
	switch {
	case held != nil:
		return &CustomerReport{Customer: c.ID, Name: c.Name, Status: StatusBusy,
			Notices: []string{held.Error() + ": skipped this time"}}
	case err != nil:
		return &CustomerReport{Customer: c.ID, Name: c.Name, Status: StatusFailed, Error: err.Error()}
	}
	return rep
}

// Add adds c's counts to t.
func (t *Counts) Add(c Counts) {
	t.Candidates += c.Candidates
	t.Imported += c.Imported
	t.AlreadyImported += c.AlreadyImported
	t.Skipped += c.Skipped
	t.Ambiguous += c.Ambiguous
	t.Failed += c.Failed
	t.Held += c.Held
	t.VaultMatched += c.VaultMatched
	t.VaultCreated += c.VaultCreated
	t.PSAMatched += c.PSAMatched
	t.PSACreated += c.PSACreated
	t.EmailsSent += c.EmailsSent
	t.PossibleDuplicates += c.PossibleDuplicates
}

// selectCustomers returns the customers named by ids, or every customer
// when ids is empty; an unknown id is a usage error.
func selectCustomers(t *Tenant, ids []string) ([]Customer, error) {
	if len(ids) == 0 {
		return t.Customers, nil
	}
	var out []Customer
	for _, id := range ids {
		c, ok := t.Customer(id)
		if !ok {
			return nil, &UsageError{Msg: fmt.Sprintf("no customer %q (autoimport customer list shows them)", id)}
		}
		out = append(out, c)
	}
	return out, nil
}

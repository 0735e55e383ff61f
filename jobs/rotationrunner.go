package jobs

import (
	"context"
	"sort"
	"sync"
	"time"
)

// RotationRunOptions select what a rotation run does.
type RotationRunOptions struct {
	// Customers limits the run to these ids (all when empty).
	Customers []string
	DryRun    bool
	// Account and Now: see RotateOptions.
	Account string
	Now     bool
}

// RotationRun is the outcome of a rotation run over customers.
type RotationRun struct {
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	DryRun    bool              `json:"dry_run"`
	Status    string            `json:"status"`
	Outcomes  map[string]int    `json:"outcomes"`
	Customers []*RotationReport `json:"customers"`
}

// Failed reports whether any customer's rotation failed or is unfinished.
func (r *RotationRun) Failed() bool { return r.Status != StatusOK }

// Rotate runs a rotation pass over every customer (or those named), each
// under its lease, Concurrency at a time: the scheduler calls it after
// each import pass, `autoimport rotate` on its own.
func (r *Runner) Rotate(ctx context.Context, opt RotationRunOptions) (*RotationRun, error) {
	if !r.mu.TryLock() {
		return nil, ErrBusy
	}
	defer r.mu.Unlock()
	run := &RotationRun{Started: time.Now().UTC(), DryRun: opt.DryRun, Status: StatusOK, Outcomes: map[string]int{}}
	t, err := r.Store.LoadTenant(ctx)
	if err != nil {
		return nil, err
	}
	customers, err := selectCustomers(t, opt.Customers)
	if err != nil {
		return nil, err
	}
	if opt.Account != "" && len(customers) != 1 {
		return nil, &UsageError{Msg: "--account needs --customer: name the account's customer"}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, r.Concurrency))
	for _, c := range customers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rep := r.rotateOne(ctx, t, c, opt)
			mu.Lock()
			run.Customers = append(run.Customers, rep)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(run.Customers, func(i, j int) bool { return run.Customers[i].Customer < run.Customers[j].Customer })
	for _, c := range run.Customers {
		for k, n := range c.Outcomes {
			run.Outcomes[k] += n
		}
		if c.Status == StatusFailed || (c.Status == StatusBusy && len(opt.Customers) > 0) {
			run.Status = StatusFailed
		}
		r.Metrics.observeRotation(c)
	}
	run.Finished = time.Now().UTC()
	return run, nil
}

// rotateOne rotates one customer under its lease; a dry run takes none.
func (r *Runner) rotateOne(ctx context.Context, t *Tenant, c Customer, opt RotationRunOptions) *RotationReport {
	rot := &Rotator{Store: r.Store, Connector: r.Connector, Key: r.Key, Log: r.Log, Actor: r.Actor}
	ropt := RotateOptions{DryRun: opt.DryRun, Account: opt.Account, Now: opt.Now}
	if opt.DryRun {
		return rot.Rotate(ctx, t, c, ropt)
	}
	var rep *RotationReport
	held, err := r.withLease(ctx, c.ID, func(l *Lease) {
		ropt.Lease = l
		rep = rot.Rotate(ctx, t, c, ropt)
	})
	switch {
	case held != nil:
		return &RotationReport{Customer: c.ID, Status: StatusBusy, Error: held.Error() + ": skipped this time",
			Accounts: []AccountRotation{}, Outcomes: map[string]int{}}
	case err != nil:
		return &RotationReport{Customer: c.ID, Status: StatusFailed, Error: err.Error(), Accounts: []AccountRotation{}, Outcomes: map[string]int{}}
	}
	return rep
}

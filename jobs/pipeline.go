package jobs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// The new accounts of a pass are applied by a pipeline of three stages,
// each account moving on as soon as it is through a stage:
//
//   - applyWorkers workers each take the next planned account and make
//     its sink creates, vault then PSA;
//   - one recorder writes the accounts the workers finish, grouped as
//     they arrive within recordWindow (up to applyBatch of them), each
//     group's ledger rows and audit events in one transaction — which
//     also records each welcome email's attempt;
//   - one mailer sends a recorded group's welcome emails, then reports
//     its plans (OnAccount), one at a time.
//
// No account waits for a slower one before its sink calls, so the sinks
// stay busy as long as accounts are left, however long one of them takes.
// A crash between a create and its record leaves an entry the next run
// matches; an email goes out only once its attempt is on record. Plans
// are made a batch at a time as the workers need them and every channel
// is bounded, so only a few batches of plans are held at once.
//
// A stop (ImportOptions.Stop, the pass's context, a lost lease) lets no
// more accounts in: those in hand are created, recorded, mailed and
// reported; the rest are reported as left for the next run. A lost lease
// also stops every sink call and record from then on.

// recordWindow is how long the recorder waits, after an account reaches
// it, for more to record in the same transaction. A customer whose
// accounts come fast fills a group of applyBatch well within it; one
// held back by latency or a shared rate limit, a few accounts a second,
// records once a second instead of once per account, which would multiply
// the store's transactions many times over. Waiting costs no sink time:
// the workers go on meanwhile, and the end of the pass records at once.
const recordWindow = time.Second

// pipeline is one pass's apply stages at work.
type pipeline struct {
	ps   *pass
	conn *Connections
	log  logrus.FieldLogger
	// work is the context of sink calls, records and emails: a stop
	// lets the accounts in hand finish, so it does not cut them short.
	work context.Context
	// halt is done once no more accounts may enter.
	halt context.Context

	// feed takes each account to import to a worker; created takes
	// accounts to the recorder (those not to import go there directly);
	// recorded takes recorded groups to the mailer.
	feed     chan AccountPlan
	created  chan AccountPlan
	recorded chan []AccountPlan
	workers  sync.WaitGroup
	stages   sync.WaitGroup

	// entered counts the accounts let in (read by the feeder only).
	entered int
}

// apply creates, records and mails the new accounts, and reports each
// one's plan; a stop ends it after the accounts in hand (see above).
func (ps *pass) apply(ctx context.Context, conn *Connections, pl *planner) {
	defer timed(&ps.rep.Times.NewAccounts)()
	halt, cancel := ps.haltContext(ctx)
	defer cancel()
	pp := ps.startPipeline(ctx, conn, halt)
	for from := 0; from < pl.len(); from += applyBatch {
		batch := pl.batchOf(from)
		for i := range batch {
			if pp.enter(batch[i]) {
				continue
			}
			pp.finish() // the accounts in hand report first
			ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("stopped after %d of %d new accounts", pp.entered, pl.len()))
			ps.leaveForNextRun(batch[i:])
			for from += applyBatch; from < pl.len(); from += applyBatch {
				ps.leaveForNextRun(pl.batchOf(from))
			}
			return
		}
	}
	pp.finish()
}

// haltContext is done once the pass must let no more accounts in: on a
// stop, at the end of ctx, or when the customer's lease is lost.
func (ps *pass) haltContext(ctx context.Context) (context.Context, context.CancelFunc) {
	stop := ps.opt.Stop
	if stop == nil {
		stop = ctx
	}
	halt, cancel := context.WithCancel(stop)
	stops := []func() bool{context.AfterFunc(ctx, cancel)}
	if ps.opt.Lease != nil {
		stops = append(stops, context.AfterFunc(ps.opt.Lease.Context(), cancel))
	}
	return halt, func() {
		for _, f := range stops {
			f()
		}
		cancel()
	}
}

// leaveForNextRun reports plans a stop kept out of the pipeline: those to
// import are skipped, to be imported by the next run.
func (ps *pass) leaveForNextRun(plans []AccountPlan) {
	abandon(plans, "the run was stopped before this account; it is imported next run")
	for i := range plans {
		ps.emit(&plans[i])
	}
}

// startPipeline starts the workers, the recorder and the mailer.
func (ps *pass) startPipeline(ctx context.Context, conn *Connections, halt context.Context) *pipeline {
	pp := &pipeline{ps: ps, conn: conn, log: ps.im.Log.WithField("customer", ps.c.ID), work: context.WithoutCancel(ctx), halt: halt,
		feed: make(chan AccountPlan), created: make(chan AccountPlan, applyBatch), recorded: make(chan []AccountPlan, 1)}
	for range applyWorkers {
		pp.workers.Go(pp.create)
	}
	pp.stages.Go(pp.record)
	pp.stages.Go(pp.mail)
	return pp
}

// enter lets an account into the pipeline, unless the pass is halted: it
// returns false then, and the account is not in hand. An account to
// import waits for a free worker; any other goes straight on, to be
// reported in turn.
func (pp *pipeline) enter(p AccountPlan) bool {
	if pp.halt.Err() != nil {
		return false
	}
	if p.Action != ActionImport {
		pp.created <- p
	} else {
		select {
		case pp.feed <- p:
		case <-pp.halt.Done():
			return false
		}
	}
	pp.entered++
	return true
}

// finish lets the accounts in hand through every stage and waits for them.
func (pp *pipeline) finish() {
	close(pp.feed)
	pp.workers.Wait()
	close(pp.created)
	pp.stages.Wait()
}

// create is a worker: it makes each account's sink creates in turn.
func (pp *pipeline) create() {
	for p := range pp.feed {
		pp.ps.im.createInSinks(pp.work, pp.conn, &p, pp.ps.opt.leaseLost, pp.log)
		pp.created <- p
	}
}

// record is the recorder: it groups the accounts that arrive within
// recordWindow of the first, up to applyBatch, records each group in one
// transaction and hands it to the mailer. Once the lease is lost nothing
// more is recorded.
func (pp *pipeline) record() {
	defer close(pp.recorded)
	ps := pp.ps
	window := time.NewTimer(recordWindow)
	defer window.Stop()
	for first := range pp.created {
		group := []AccountPlan{first}
		window.Reset(recordWindow)
	gather:
		for len(group) < applyBatch {
			select {
			case p, ok := <-pp.created:
				if !ok {
					break gather
				}
				group = append(group, p)
			case <-window.C:
				break gather
			}
		}
		ps.im.record(pp.work, ps.c, ps.opts, group, ps.opt.Lease, pp.log)
		pp.recorded <- group
	}
}

// mail is the mailer: it sends each recorded group's welcome emails, then
// reports the group's plans.
func (pp *pipeline) mail() {
	for group := range pp.recorded {
		pp.ps.welcome(pp.conn).sendBatch(pp.work, group)
		for i := range group {
			pp.ps.emit(&group[i])
		}
	}
}

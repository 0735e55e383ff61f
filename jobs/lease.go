package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultLeaseTTL is how long a customer's lease lasts without renewal.
const DefaultLeaseTTL = 10 * time.Minute

// LeaseInfo is a customer's lease as the store holds it.
type LeaseInfo struct {
	Holder string
	// Token grows each time the lease is taken anew.
	Token int64
	// Expires and Now are on the database's clock.
	Expires time.Time
	Now     time.Time
}

// Lease is a customer's lease held by this process and renewed in the
// background until Release. While another holder may have taken the
// customer, nothing may write for it: the lease is lost when a renewal
// fails or finds another holder, and also when its time runs out on this
// process's own clock before a renewal came back, whatever the reason (a
// renewal stuck, a process paused). Check says whether it still holds;
// Context is done once it is lost. Writes to the store are fenced besides
// (Tx.HoldLease with Token): the database refuses a holder whose lease
// expired on its clock.
type Lease struct {
	store    Store
	customer string
	holder   string
	token    int64
	ttl      time.Duration
	log      logrus.FieldLogger

	// ctx is done once the lease is lost; its cause says why.
	ctx  context.Context
	lose context.CancelCauseFunc
	stop context.CancelFunc
	// runOut loses the lease when its time is up; each renewal moves it.
	mu      sync.Mutex
	runOut  *time.Timer
	until   time.Time // when the lease runs out on this process's clock
	renewed sync.WaitGroup
}

// ErrLeaseHeld is returned by AcquireLease when another holder's lease
// on the customer lasts.
type ErrLeaseHeld struct {
	Customer string
	// Holder and Until say who holds it and until when (the database's
	// clock), Now is the database's clock when it was read; zero when
	// unknown.
	Holder     string
	Until, Now time.Time
}

func (e *ErrLeaseHeld) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("customer %s is busy: another autoimport holds its lease (an import, a rotation or a technician's change); try again when it ends", e.Customer)
	}
	left := e.Until.Sub(e.Now).Round(time.Second)
	return fmt.Sprintf("customer %s is busy: autoimport %s holds its lease (an import, a rotation or a technician's change) until %s (%s from now, unless it ends sooner); try again then",
		e.Customer, e.Holder, e.Until.UTC().Format("2006-01-02 15:04:05 UTC"), left)
}

// AcquireLease takes the customer's lease for holder and renews it every
// third of ttl until Release. When another holder has it, the lease is
// taken over at once if that holder is provably gone (see holderGone);
// otherwise AcquireLease returns *ErrLeaseHeld saying who holds it and
// until when.
func AcquireLease(ctx context.Context, s Store, customer, holder string, ttl time.Duration, log logrus.FieldLogger) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	asked := time.Now()
	token, ok, err := s.AcquireLease(ctx, customer, holder, ttl)
	if err != nil {
		return nil, fmt.Errorf("customer %s: take its lease: %w", customer, err)
	}
	if !ok {
		asked = time.Now()
		if token, err = takeOverFromTheGone(ctx, s, customer, holder, ttl, log); err != nil {
			return nil, err
		}
	}
	l := &Lease{store: s, customer: customer, holder: holder, token: token, ttl: ttl, log: log}
	l.ctx, l.lose = context.WithCancelCause(context.Background())
	l.until = time.Now().Add(l.validFor(asked))
	l.runOut = time.AfterFunc(time.Until(l.until), l.ranOut)
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	l.renewed.Add(1)
	go l.renew(renewCtx)
	return l, nil
}

// takeOverFromTheGone takes the lease of a holder that is provably not
// running; *ErrLeaseHeld when the holder may be alive.
func takeOverFromTheGone(ctx context.Context, s Store, customer, holder string, ttl time.Duration, log logrus.FieldLogger) (int64, error) {
	info, err := s.LeaseInfo(ctx, customer)
	if err != nil {
		return 0, &ErrLeaseHeld{Customer: customer}
	}
	why, gone := holderGone(info.Holder)
	if !gone || !info.Expires.After(info.Now) {
		// Alive as far as this process can tell (or just expired: the
		// next try takes it the ordinary way).
		return 0, &ErrLeaseHeld{Customer: customer, Holder: info.Holder, Until: info.Expires, Now: info.Now}
	}
	token, ok, err := s.TakeOverLease(ctx, customer, info, holder, ttl)
	if err != nil {
		return 0, fmt.Errorf("customer %s: take over its lease: %w", customer, err)
	}
	if !ok {
		return 0, &ErrLeaseHeld{Customer: customer}
	}
	log.WithFields(logrus.Fields{"customer": customer, "previous_holder": info.Holder}).
		Warn("took over the customer's lease at once: its holder is gone (" + why + "); what it left open is finished first")
	return token, nil
}

// validFor is how long a lease granted or renewed by a request sent at
// asked lasts on this process's clock: the database counted ttl from a
// moment after asked, so this never outlasts the database's expiry; a
// tenth is kept back for clocks that run at slightly different rates.
func (l *Lease) validFor(asked time.Time) time.Duration {
	return max(0, l.ttl-l.ttl/10-time.Since(asked))
}

func (l *Lease) ranOut() {
	l.lose(fmt.Errorf("customer %s: its lease ran out before a renewal came back (a database or this process too slow for %s), so another autoimport may have taken it", l.customer, l.ttl))
}

func (l *Lease) renew(ctx context.Context) {
	defer l.renewed.Done()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.ctx.Done():
			l.log.WithField("customer", l.customer).Error(context.Cause(l.ctx).Error() + ": stopping before the next write")
			return
		case <-tick.C:
		}
		asked := time.Now()
		// A renewal has a deadline: one stuck longer than a third of the
		// lease would outlast it.
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		ok, err := l.store.RenewLease(rctx, l.customer, l.holder, l.token, l.ttl)
		cancel()
		if ctx.Err() != nil {
			return // released meanwhile
		}
		switch {
		case err != nil:
			l.lose(fmt.Errorf("customer %s: could not renew its lease (%w), so another autoimport may import it now", l.customer, err))
		case !ok:
			l.lose(fmt.Errorf("customer %s: its lease was taken by another autoimport (this run was too slow to renew it within %s)", l.customer, l.ttl))
		default:
			l.mu.Lock()
			if l.ctx.Err() == nil {
				l.until = time.Now().Add(l.validFor(asked))
				l.runOut.Reset(time.Until(l.until))
			}
			l.mu.Unlock()
		}
	}
}

// Lost returns nil while the lease is held, and why it was lost after.
// It reads the lease's time itself, not only whether the timer that ends
// it has fired: a process that was paused checks before it writes. A nil
// lease (a dry run's, a test's) is never lost.
func (l *Lease) Lost() error {
	if l == nil {
		return nil
	}
	if l.ctx.Err() == nil {
		l.mu.Lock()
		out := time.Now().After(l.until)
		l.mu.Unlock()
		if !out {
			return nil
		}
		l.ranOut()
	}
	return context.Cause(l.ctx)
}

// fenced writes fn's changes in one transaction of store fenced by the
// customer's lease l, as every writer's are: a lease whose time ran out on
// this process's clock writes nothing, and the transaction holds the
// lease row under its token (Tx.HoldLease), so that a holder that lost
// the lease to another (paused past its time, say) cannot commit. Once the
// database says so, the lease is lost for the whole process: nothing
// more is written or called under it. A nil lease (a dry run's) fences
// nothing.
func fenced(ctx context.Context, store Store, l *Lease, fn func(tx Tx) error) error {
	if l == nil {
		return store.Update(ctx, fn)
	}
	if err := l.Lost(); err != nil {
		return fmt.Errorf("%w: nothing was written", err)
	}
	return store.Update(ctx, func(tx Tx) error {
		if err := tx.HoldLease(ctx, l.customer, l.holder, l.token); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				l.lose(fmt.Errorf("customer %s: the database refused a write: its lease is another autoimport's now (this one was paused or too slow past it)", l.customer))
			}
			return err
		}
		return fn(tx)
	})
}

// Context is done when the lease is lost; context.Cause says why.
func (l *Lease) Context() context.Context { return l.ctx }

// Holder and Token are what the store's writes are fenced with.
func (l *Lease) Holder() string { return l.holder }

// Token is the lease's fencing token.
func (l *Lease) Token() int64 { return l.token }

// Customer is the customer the lease is on.
func (l *Lease) Customer() string { return l.customer }

// Release stops renewing and gives the lease up. The release is
// conditional on this holder and token, so a lease another holder took
// since is left alone, while one lost without being taken (its time ran
// out here, the database refused a write) is freed for the next holder
// instead of blocking the customer until it expires.
func (l *Lease) Release(ctx context.Context) {
	l.stop()
	l.renewed.Wait()
	l.mu.Lock()
	l.runOut.Stop()
	l.mu.Unlock()
	lost := l.Lost()
	l.lose(context.Canceled)
	if err := l.store.ReleaseLease(context.WithoutCancel(ctx), l.customer, l.holder, l.token); err != nil && lost == nil {
		l.log.WithField("customer", l.customer).WithError(err).Warn("could not release the customer's lease; it expires by itself")
	}
}

// withLease runs fn under the customer's lease, taken under the runner's
// holder name and released at the end. held is the *ErrLeaseHeld when
// another holder has the lease: fn did not run.
func (r *Runner) withLease(ctx context.Context, customer string, fn func(l *Lease)) (held *ErrLeaseHeld, err error) {
	l, err := AcquireLease(ctx, r.Store, customer, r.HolderName(), r.LeaseTTL, r.Log)
	if errors.As(err, &held) {
		return held, nil
	}
	if err != nil {
		return nil, err
	}
	defer l.Release(ctx)
	fn(l)
	return nil, nil
}

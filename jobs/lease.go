package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultLeaseTTL is how long a customer's lease lasts without renewal.
const DefaultLeaseTTL = 10 * time.Minute

// newHolderName names one lease holder: the host and process, for a
// person reading the leases table, and a random part, so that two
// processes that share a host name and pid (containers) or two runners of
// one process never take each other for the same holder.
func newHolderName() string {
	h, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", h, os.Getpid(), hex.EncodeToString(b[:]))
}

// Lease is a customer's lease held by this process and renewed in the
// background until Release. While another holder may have taken the
// customer, nothing may write for it: Lost says when that is the case.
type Lease struct {
	store    Store
	customer string
	holder   string
	ttl      time.Duration
	log      logrus.FieldLogger

	// ctx is done once the lease is lost; its cause says why.
	ctx     context.Context
	lose    context.CancelCauseFunc
	stop    context.CancelFunc
	renewed sync.WaitGroup
}

// ErrLeaseHeld is returned by AcquireLease when another holder's lease
// on the customer lasts.
type ErrLeaseHeld struct{ Customer string }

func (e *ErrLeaseHeld) Error() string {
	return fmt.Sprintf("customer %s is being imported by another autoimport (its lease is held): try again when that run ends", e.Customer)
}

// AcquireLease takes the customer's lease for holder and renews it every
// third of ttl until Release. It returns *ErrLeaseHeld when another
// holder has it. A renewal that fails, or finds another holder, loses the
// lease: Lost then returns why, and Done is closed.
func AcquireLease(ctx context.Context, s Store, customer, holder string, ttl time.Duration, log logrus.FieldLogger) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	ok, err := s.AcquireLease(ctx, customer, holder, ttl)
	if err != nil {
		return nil, fmt.Errorf("customer %s: take its lease: %w", customer, err)
	}
	if !ok {
		return nil, &ErrLeaseHeld{Customer: customer}
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	l := &Lease{store: s, customer: customer, holder: holder, ttl: ttl, log: log}
	l.ctx, l.lose = context.WithCancelCause(context.Background())
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	l.renewed.Add(1)
	go l.renew(renewCtx)
	return l, nil
}

func (l *Lease) renew(ctx context.Context) {
	defer l.renewed.Done()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ok, err := l.store.AcquireLease(ctx, l.customer, l.holder, l.ttl)
		if ctx.Err() != nil {
			return // released meanwhile
		}
		var cause error
		switch {
		case err != nil:
			cause = fmt.Errorf("customer %s: could not renew its lease (%w), so another autoimport may import it now", l.customer, err)
		case !ok:
			cause = fmt.Errorf("customer %s: its lease was taken by another autoimport (this run was too slow to renew it within %s)", l.customer, l.ttl)
		default:
			continue
		}
		l.lose(cause) // first: every check from now on sees it
		l.log.WithField("customer", l.customer).Error(cause.Error() + ": stopping before the next write")
		return
	}
}

// Lost returns nil while the lease is held, and why it was lost after.
func (l *Lease) Lost() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Context is done when the lease is lost; context.Cause says why.
func (l *Lease) Context() context.Context { return l.ctx }

// Release stops renewing and gives the lease up. A lost lease is not
// released: it belongs to another holder now.
func (l *Lease) Release(ctx context.Context) {
	l.stop()
	l.renewed.Wait()
	if l.Lost() != nil {
		return
	}
	l.lose(context.Canceled)
	if err := l.store.ReleaseLease(context.WithoutCancel(ctx), l.customer, l.holder); err != nil {
		l.log.WithField("customer", l.customer).WithError(err).Warn("could not release the customer's lease; it expires by itself")
	}
}

// leaseCause returns why a lease's context (Lease.Context) was lost; nil
// while the lease holds, or when there is none.
func leaseCause(lease context.Context) error {
	if lease == nil || lease.Err() == nil {
		return nil
	}
	return context.Cause(lease)
}

// withLease runs fn under the customer's lease, taken under the runner's
// holder name and released at the end; fn gets the lease's context (see
// Lease.Context). held reports that another holder has the lease: fn did
// not run.
func (r *Runner) withLease(ctx context.Context, customer string, fn func(lease context.Context)) (held bool, err error) {
	l, err := AcquireLease(ctx, r.Store, customer, r.HolderName(), r.LeaseTTL, r.Log)
	var other *ErrLeaseHeld
	if errors.As(err, &other) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer l.Release(ctx)
	fn(l.Context())
	return false, nil
}

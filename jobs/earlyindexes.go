package jobs

import (
	"context"
	"sync"

	"github.com/msp-tools/autoimport/sources"
)

// On a customer's first import (no copy of a directory yet, nothing in its
// ledger, nothing waiting for a person) every account the sources select
// is new, and matching each one needs the vault's and the PSA's indexes.
// Listing them waits for nothing the directories hold, so a first import
// lists them while its copies are written and its accounts selected,
// instead of after: on a large customer each takes seconds. It starts
// once every source has fetched what it reads, not with the reads: a full
// read of a large domain holds the most memory as it ends (the decoding
// of its biggest groups), and the indexes held beside it would add to
// that peak what the copy's write and the selection leave time to list
// (see docs/benchmarks.md). Any later pass
// lists the indexes only once its new accounts are known, and only those
// they need — a run that finds nothing new lists nothing. A first import
// that finds nothing new has listed the indexes for nothing, once.

// earlyIndexes is a listing of the indexes for every account type, under
// way or done.
type earlyIndexes struct {
	cancel context.CancelFunc
	// fetched is closed once the sources are done with the directories
	// (sourcesFetched): the listing starts then.
	fetched     chan struct{}
	fetchedOnce sync.Once
	done        chan struct{}
	in          PlanInput
	err         error
}

// listIndexesEarly starts listing the indexes on a first import, and
// returns nil on any other pass.
func (ps *pass) listIndexesEarly(ctx context.Context, conn *Connections) *earlyIndexes {
	if !ps.firstImport(ctx, conn) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	every := map[AccountType]bool{}
	for _, typ := range AccountTypes {
		every[typ] = true
	}
	e := &earlyIndexes{cancel: cancel, fetched: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		select {
		case <-e.fetched:
		case <-ctx.Done():
			e.err = ctx.Err()
			return
		}
		e.in, e.err = readIndexes(ctx, ps.c, conn, ps.opts, every)
	}()
	return e
}

// sourcesFetched lets the listing start: the sources are done with the
// directories (or failed, or were read before). It may be called more
// than once, and on a nil listing.
func (e *earlyIndexes) sourcesFetched() {
	if e != nil {
		e.fetchedOnce.Do(func() { close(e.fetched) })
	}
}

// result waits for the listing and returns it, with ok true, when there
// is one, whatever types are in need (it covers them all); a listing that
// failed is returned with its error. With nothing in need it returns no
// listing: a pass without new accounts does not fail on an index it does
// not use.
func (e *earlyIndexes) result(need map[AccountType]bool) (in PlanInput, ok bool, err error) {
	if e == nil {
		return PlanInput{}, false, nil
	}
	<-e.done
	e.cancel()
	if len(need) == 0 {
		return PlanInput{}, false, nil
	}
	return e.in, true, e.err
}

// stop ends a listing the pass no longer needs (it failed) and waits for
// it to return.
func (e *earlyIndexes) stop() {
	if e == nil {
		return
	}
	e.cancel()
	<-e.done
}

// firstImport reports a pass with nothing in the ledger and nothing
// waiting for a person that reads a directory into its copy for the first
// time. A store that cannot say is not a first import.
func (ps *pass) firstImport(ctx context.Context, conn *Connections) bool {
	if ps.ledger.len() > 0 || len(ps.attention.before) > 0 {
		return false
	}
	for kind, src := range map[sources.Kind]sources.Source{sources.KindAD: conn.AD, sources.KindM365: conn.M365} {
		if src == nil {
			continue
		}
		if _, ok := ps.incremental(src); !ok {
			continue
		}
		if st, err := ps.im.Copies.CopyState(ctx, ps.c.ID, string(kind)); err == nil && st.Zero() {
			return true
		}
	}
	return false
}

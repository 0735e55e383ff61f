package jobs

import (
	"context"
	"fmt"
	"iter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/msp-tools/autoimport/sources"
)

// A source that reads incrementally (AD DirSync or uSNChanged, Graph
// delta) keeps a local copy of the customer's directory in the store and
// brings it up to date with what changed since its last read; the
// selection is then computed from the copy, exactly as a full read would
// give it. The reader decides, and reports, whether a read is full (no
// copy yet, a token it can no longer trust, another DC, a changed
// selection, the last full read too old, or asked for) or incremental.

// incrementalSource is what the import needs of such a source.
type incrementalSource interface {
	// Read brings the customer's copy up to date, in one store
	// transaction with its new position.
	Read(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection, opt sources.ReadOptions) (sources.ReadReport, error)
	// CopyAccounts streams the accounts of a selection from the copy.
	CopyAccounts(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection) iter.Seq2[sources.Account, error]
}

// DefaultFullReadEvery is the longest time between two full reads of a
// source that reads incrementally: a safety net, far below AD's tombstone
// lifetime (60 to 180 days); Graph's delta links, renewed by every read,
// expire 7 days after the last one.
const DefaultFullReadEvery = 7 * 24 * time.Hour

// DefaultFullReads is how many directories are read in full at once across
// the customers of a run, unless Runner.FullReads says otherwise: as many
// as the customers a run imports at once by default. A first run of many
// customers at once reads their directories a few at a time, so the first
// customers reach their vault and PSA while the rest still read.
const DefaultFullReads = 4

// readCopies brings the copy of each of the customer's sources that reads
// incrementally up to date, before their accounts are collected. The two
// directories are different services, so they are read at once; the first
// to fail ends the other. The read reports are kept in the order of the
// sources, Microsoft 365 first.
func (ps *pass) readCopies(ctx context.Context, conn *Connections, sel selections) error {
	if ps.copiesRead {
		return nil // read by settle already
	}
	ps.copiesRead = true
	defer timed(&ps.rep.Times.Directories)()
	type job struct {
		name string
		kind sources.Kind
		src  sources.Source
		sel  sources.Selection
	}
	var jobs []job
	if conn.M365 != nil {
		jobs = append(jobs, job{"Microsoft 365", sources.KindM365, conn.M365, sel.m365})
	}
	if conn.AD != nil {
		jobs = append(jobs, job{"Active Directory", sources.KindAD, conn.AD, sel.ad})
	}
	reports := make([]*sources.ReadReport, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for i, j := range jobs {
		inc, ok := ps.incremental(j.src)
		if !ok {
			continue
		}
		g.Go(func() error {
			start := time.Now()
			rep, err := inc.Read(gctx, ps.im.Copies, ps.c.ID, j.sel, sources.ReadOptions{Full: ps.opt.FullRead, FullEvery: ps.im.fullReadEvery(), Now: ps.im.Now, FullReads: ps.im.FullReads})
			if err != nil {
				return fmt.Errorf("%s: %w", j.name, err)
			}
			rep.Source, rep.Seconds = j.kind, time.Since(start).Seconds()-rep.Waited
			reports[i] = &rep
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, rep := range reports {
		if rep != nil {
			ps.rep.Reads = append(ps.rep.Reads, *rep)
			ps.read[jobs[i].kind] = true
		}
	}
	return nil
}

// incremental returns src as a source read through its copy, in a pass
// that records (not a dry run: a read writes its copy).
func (ps *pass) incremental(src sources.Source) (incrementalSource, bool) {
	inc, ok := src.(incrementalSource)
	return inc, ok && ps.im.Copies != nil && !ps.opt.DryRun
}

// accounts returns a source's accounts for a selection. A source that
// reads incrementally is read once per pass (by readCopies), with the
// selection its copy is kept for, and every selection of the pass is
// computed from the copy; any other source is read whole for each
// selection.
func (ps *pass) accounts(ctx context.Context, kind sources.Kind, src sources.Source, sel sources.Selection) (iter.Seq2[sources.Account, error], error) {
	inc, ok := ps.incremental(src)
	if !ok {
		return src.Accounts(ctx, sel), nil
	}
	if !ps.read[kind] {
		return nil, fmt.Errorf("the copy of %s was not read in this pass", kind) // a bug here
	}
	return inc.CopyAccounts(ctx, ps.im.Copies, ps.c.ID, sel), nil
}

func (im *Importer) fullReadEvery() time.Duration {
	if im.FullReadEvery > 0 {
		return im.FullReadEvery
	}
	return DefaultFullReadEvery
}

package jobs

import (
	"context"
	"iter"
	"time"

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

// accounts returns a source's accounts for a selection. A source that
// reads incrementally, in a pass that records (not a dry run: a read
// writes its copy), is read once per pass, with the selection readSel
// that its copy is kept for, and every selection of the pass is computed
// from the copy; any other source is read whole for each selection.
func (ps *pass) accounts(ctx context.Context, kind sources.Kind, src sources.Source, readSel, sel sources.Selection) (iter.Seq2[sources.Account, error], error) {
	inc, ok := src.(incrementalSource)
	if !ok || ps.im.Copies == nil || ps.opt.DryRun {
		return src.Accounts(ctx, sel), nil
	}
	if !ps.read[kind] {
		rep, err := inc.Read(ctx, ps.im.Copies, ps.c.ID, readSel, sources.ReadOptions{Full: ps.opt.FullRead, FullEvery: ps.im.fullReadEvery(), Now: ps.im.Now})
		if err != nil {
			return nil, err
		}
		rep.Source = kind
		ps.rep.Reads = append(ps.rep.Reads, rep)
		ps.read[kind] = true
	}
	return inc.CopyAccounts(ctx, ps.im.Copies, ps.c.ID, sel), nil
}

func (im *Importer) fullReadEvery() time.Duration {
	if im.FullReadEvery > 0 {
		return im.FullReadEvery
	}
	return DefaultFullReadEvery
}

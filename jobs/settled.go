package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/msp-tools/autoimport/sources"
)

// A settled pass costs what changed, not what the customer holds.
//
// A pass that finds nothing to do — no new account, no account changed
// state, nothing for a person that was not there already, no welcome
// email pending, every directory read only for what changed — leaves
// the store exactly as it found it; so does the next pass over the same
// inputs, and it would report the same. The inputs of a pass are: the
// customer's directories (their local copies), what the store holds of
// the customer (its ledger, accounts that need a person, technicians'
// decisions: its version, see StoreReader.CustomerVersion),
// its configuration and options, and, for an ambiguous account, the
// vault's and PSA's entries, which are checked again once the recheck
// interval is over (attentionrecheck.go).
//
// Such a pass keeps a record of itself (settledState): its report and
// the versions of its inputs, written only if the customer's version is
// still the one the pass read before anything else. The next pass reads
// that record and the customer's version first; if its directories'
// reads then change neither copy, nothing it would read has changed and
// it takes the record's report instead of reading the ledger and both
// copies again. Anything else — any write to the customer, any change in
// a directory, other options, another build of autoimport, a full read,
// a recheck falling due, a dry run, a run that lists every account — and
// the pass runs in full, as always.

// settledState names the per-customer state that holds the last settled
// pass.
const settledState = "import.settled"

// settledPass is what a pass that found nothing to do keeps of itself.
type settledPass struct {
	At time.Time `json:"at"`
	// Inputs digests the build, the recheck and full-read intervals, the
	// customer's configuration and its resolved options; Version is the
	// customer's version, Copies each directory copy's version, as the
	// pass read them.
	Inputs  string           `json:"inputs"`
	Version int64            `json:"version"`
	Copies  map[string]int64 `json:"copies"`
	// RecheckAt is when an unchanged ambiguous account is due a check
	// against the vault and the PSA again; zero when there is none.
	RecheckAt time.Time `json:"recheck_at,omitzero"`

	Counts           Counts         `json:"counts"`
	Notices          []string       `json:"notices,omitempty"`
	Attention        []AccountPlan  `json:"attention,omitempty"`
	AttentionOmitted int            `json:"attention_omitted,omitempty"`
	NeedPerson       map[string]int `json:"need_person,omitempty"`
}

// loadSettled reads the customer's version and the last settled pass,
// before anything else of the customer: the version a pass reads first
// is the one its record may claim. The record is kept as a candidate
// when it can still hold (the same build, configuration and options and
// the same version, no recheck due); the copies are compared once read.
func (ps *pass) loadSettled(ctx context.Context) error {
	v, err := ps.im.Store.CustomerVersion(ctx, ps.c.ID)
	if err != nil {
		return err
	}
	ps.version = v
	raw, err := ps.im.Store.State(ctx, ps.c.ID, settledState)
	if err != nil || raw == "" {
		return err
	}
	ps.hadRecord = true
	if ps.opt.DryRun || ps.opt.FullRead || ps.opt.EveryAccount {
		return nil
	}
	var last settledPass
	if err := json.Unmarshal([]byte(raw), &last); err != nil {
		return nil // unreadable: the pass runs in full and writes a new one
	}
	if last.Inputs != ps.inputs() || last.Version != v || (!last.RecheckAt.IsZero() && !ps.im.now().Before(last.RecheckAt)) {
		return nil
	}
	ps.last = &last
	return nil
}

// inputs digests what a pass's outcome depends on besides the store and
// the directories: the build, the recheck and full-read intervals, the
// customer and its resolved options.
func (ps *pass) inputs() string {
	h := sha256.New()
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "%s %s\x00", bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(h, "%s=%s\x00", s.Key, s.Value)
			}
		}
	}
	fmt.Fprintf(h, "recheck %s full %s\x00", ps.im.attentionRecheckEvery(), ps.im.fullReadEvery())
	for _, v := range []any{ps.c, ps.c.Options, ps.c.Numbers, ps.opts} {
		b, _ := json.Marshal(v) // plain data: cannot fail
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// copyVersions returns the version of each directory copy the pass read;
// false when a configured directory is not read through a copy (it is
// read whole every pass).
func (ps *pass) copyVersions(ctx context.Context, conn *Connections) (map[string]int64, bool, error) {
	out := map[string]int64{}
	for kind, src := range map[sources.Kind]sources.Source{sources.KindAD: conn.AD, sources.KindM365: conn.M365} {
		if src == nil {
			continue
		}
		if !ps.read[kind] {
			return nil, false, nil
		}
		st, err := ps.im.Copies.CopyState(ctx, ps.c.ID, string(kind))
		if err != nil {
			return nil, false, err
		}
		out[string(kind)] = st.Version
	}
	return out, true, nil
}

// settle reads the directories of a pass that has a candidate record
// and, when neither copy changed since, ends the pass with the record's
// report: it returns true. Otherwise the pass runs in full (collectNew
// reads the ledger and the accounts that need a person).
func (ps *pass) settle(ctx context.Context, conn *Connections) (bool, error) {
	if ps.last == nil {
		return false, nil
	}
	if err := ps.readCopies(ctx, conn, ps.selections()); err != nil {
		return false, fmt.Errorf("customer %s: %w", ps.c.ID, err)
	}
	copies, ok, err := ps.copyVersions(ctx, conn)
	if err != nil {
		return false, fmt.Errorf("customer %s: %w", ps.c.ID, err)
	}
	if ok && maps.Equal(copies, ps.last.Copies) {
		return true, ps.reportSettled(ctx)
	}
	ps.last = nil
	return false, nil
}

// reportSettled ends a settled pass: its report is the record's, and the
// end of the pass is noted as a pass that runs in full notes it (every
// account it reports was seen in its directory then).
func (ps *pass) reportSettled(ctx context.Context) error {
	last, rep := ps.last, ps.rep
	rep.Counts = last.Counts
	rep.Notices = append(rep.Notices, last.Notices...)
	rep.Attention, rep.AttentionOmitted, rep.NeedPerson = last.Attention, last.AttentionOmitted, last.NeedPerson
	rep.UnchangedSince = last.At
	return ps.update(ctx, func(tx Tx) error { return ps.noteLastPass(ctx, tx) })
}

// settledNote is what the last transaction of a pass writes of its
// record (see above): the record of a pass that found nothing to do, or,
// for a pass that did anything else, the removal of an earlier one (the
// versions refuse a record once the store or a copy changed; clearing it
// does not leave that to them alone). Nil when there is nothing to write.
func (ps *pass) settledNote(ctx context.Context, conn *Connections, fresh int) func(ctx context.Context, tx Tx) error {
	rec, err := ps.settledRecord(ctx, conn, fresh)
	if err != nil {
		ps.im.Log.WithField("customer", ps.c.ID).WithError(err).Warn("could not tell whether the pass found nothing to do; the next run reads everything again")
		rec = nil
	}
	if rec == nil && !ps.hadRecord {
		return nil
	}
	return func(ctx context.Context, tx Tx) error {
		if rec != nil {
			v, err := tx.CustomerVersion(ctx, ps.c.ID)
			if err != nil {
				return err
			}
			// Changed since the pass began, the record would be refused:
			// it is not written.
			if v == rec.Version {
				b, err := json.Marshal(rec)
				if err != nil {
					return err
				}
				return tx.PutState(ctx, ps.c.ID, settledState, string(b))
			}
		}
		return tx.PutState(ctx, ps.c.ID, settledState, "")
	}
}

// settledRecord is the record of this pass if it found nothing to do;
// nil otherwise.
func (ps *pass) settledRecord(ctx context.Context, conn *Connections, fresh int) (*settledPass, error) {
	rep, n := ps.rep, ps.rep.Counts
	nothing := rep.Status == StatusOK && rep.Error == "" && fresh == 0 && !ps.rechecked && len(ps.changes) == 0 && !ps.attentionWritten &&
		!ps.hadPending && !ps.passingFailure && n.Imported == 0 && n.Failed == 0 && n.Held == 0 && n.EmailsSent == 0 && ps.stoppedEarly() == nil
	if !nothing {
		return nil, nil
	}
	copies, ok, err := ps.copyVersions(ctx, conn)
	if err != nil || !ok {
		return nil, err
	}
	rec := &settledPass{At: ps.im.now(), Inputs: ps.inputs(), Version: ps.version, Copies: copies,
		Counts: n, Notices: rep.Notices[ps.noticesFrom:], Attention: rep.Attention, AttentionOmitted: rep.AttentionOmitted, NeedPerson: rep.NeedPerson}
	if n.Ambiguous > 0 {
		at, ok, err := ps.recheckAt(ctx)
		if err != nil || !ok {
			return nil, err
		}
		rec.RecheckAt = at
	}
	return rec, nil
}

// stoppedEarly says why a pass stopped before its end (a stop, a lost
// lease), nil when it ran to the end.
func (ps *pass) stoppedEarly() error {
	if err := ps.opt.leaseLost(); err != nil {
		return err
	}
	if ps.opt.Stop != nil && ps.opt.Stop.Err() != nil {
		return ps.opt.Stop.Err()
	}
	return nil
}

// recheckAt is when the ambiguous accounts held aside are due a check
// against the vault and the PSA again; false when no recheck is on record
// (the next pass makes one).
func (ps *pass) recheckAt(ctx context.Context) (time.Time, bool, error) {
	v, err := ps.im.Store.State(ctx, ps.c.ID, attentionRecheckState)
	if err != nil {
		return time.Time{}, false, err
	}
	var last attentionRecheck
	if v == "" || json.Unmarshal([]byte(v), &last) != nil {
		return time.Time{}, false, nil
	}
	return last.At.Add(ps.im.attentionRecheckEvery()), true, nil
}

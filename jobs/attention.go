package jobs

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// attentionLog keeps, through one pass, which of the customer's accounts
// need a person, so that the store holds them between runs: the rows the
// last pass left, and what this pass decided. It holds a small mark per
// row the last pass left, and whole rows only for the accounts whose state
// is new or changed, so that a customer with tens of thousands of
// ambiguous accounts costs little when nothing changes.
type attentionLog struct {
	// before marks the rows the last pass left, by account.
	before map[ledgerKey]*attentionMark
	// changed are this pass's new and changed rows, to write.
	changed []AccountAttention
	// need counts, by state, the accounts this pass found needing a person.
	need map[string]int
	on   bool // the log records: a pass that is not a dry run
	// choices are the technicians' decisions, by "source:id": an ignored
	// account's row is kept as it was, the state unignore returns it to.
	choices map[string]AccountDecision
}

// attentionMark is what a pass keeps of a row the last pass left.
type attentionMark struct {
	state string
	sum   uint64 // of the type and reason, to see a change
	since time.Time
	// reason is the row's reason and who a digest of the account's names
	// and type, kept for an ambiguous account only: while neither it nor
	// anything else that decides it changes, it is not planned again
	// (attentionrecheck.go).
	reason string
	who    uint64
	// What this pass did with it: reported the account, found it needs a
	// person still (unchanged or changed), or settled it.
	seen, still, settled bool
}

// ignored returns the technician's decision to ignore the account under
// k, if there is one.
func (l *attentionLog) ignored(k ledgerKey) (AccountDecision, bool) {
	d, ok := l.choices[k.source+":"+k.id]
	return d, ok && d.Kind == DecisionIgnore
}

// attentionSum digests what, beside the state, makes a row change.
func attentionSum(typ AccountType, reason string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(reason))
	return h.Sum64()
}

// readAttention loads the technicians' decisions the plan honours and,
// when the pass records (not a dry run), what the last pass left.
func (ps *pass) readAttention(ctx context.Context, record bool) error {
	if record {
		rows, err := ps.im.Store.Attention(ctx, ps.c.ID)
		if err != nil {
			return err
		}
		ps.attention = attentionLog{before: make(map[ledgerKey]*attentionMark, len(rows)), need: map[string]int{}, on: true}
		for _, a := range rows {
			m := &attentionMark{state: ps.shared.share(a.State), sum: attentionSum(a.Type, a.Reason), since: a.Since}
			if a.State == StateAmbiguous {
				m.reason, m.who = a.Reason, accountDigest(a.Type, a.Username, a.DisplayName, a.Email)
			}
			ps.attention.before[ledgerKey{a.Source, a.SourceID}] = m
		}
	}
	ds, err := ps.im.Store.Decisions(ctx, ps.c.ID)
	if err != nil {
		return err
	}
	ps.choices = map[string]AccountDecision{}
	for _, d := range ds {
		ps.choices[d.Source+":"+d.SourceID] = d
	}
	ps.attention.choices = ps.choices
	return nil
}

// ignored returns the technician's decision to ignore an account, if any.
func (ps *pass) ignored(source, id string) (AccountDecision, bool) {
	d, ok := ps.choices[source+":"+id]
	return d, ok && d.Kind == DecisionIgnore
}

// ignoredReason says who ignored an account, when and why.
func ignoredReason(d AccountDecision) string {
	return fmt.Sprintf("ignored by %s on %s: %s (autoimport accounts unignore to import it)", d.Actor, d.At.Format(time.DateOnly), d.Reason)
}

// attentionState is the state an account's final plan leaves it in, ""
// when it needs no person.
func attentionState(p *AccountPlan) string {
	switch {
	case p.Action == ActionAmbiguous:
		return StateAmbiguous
	case p.Action == ActionError:
		return StateFailed
	case p.Action == ActionHeld:
		return StateHeld
	case p.Action == ActionImport && p.Vault.Warning != "":
		return StatePossibleDuplicate
	}
	return ""
}

// note takes one account's final plan into the log.
func (l *attentionLog) note(customer string, p *AccountPlan) {
	if !l.on {
		return // a dry run, or the log was never read
	}
	k := ledgerKey{p.Source, p.ID}
	m := l.before[k]
	if m != nil {
		m.seen = true
	}
	if d, ok := l.ignored(k); ok && p.Action == ActionSkip {
		// An ignored account stays known: its row keeps the state it had,
		// which unignore returns it to; one seen for the first time is
		// recorded as ignored, so that it is listed under its names.
		if m == nil {
			l.changed = append(l.changed, AccountAttention{Customer: customer, Source: p.Source, SourceID: p.ID, Type: p.Type, Username: p.Username,
				DisplayName: p.DisplayName, Email: p.Email, State: StateIgnored, Reason: ignoredReason(d)})
		}
		return
	}
	if st := attentionState(p); st != "" {
		reason := p.Reason
		if st == StatePossibleDuplicate {
			reason = p.Vault.Warning
		}
		l.need[st]++
		sum := attentionSum(p.Type, reason)
		if m != nil {
			m.still = true
			if m.state == st && m.sum == sum {
				return // unchanged: nothing to write
			}
		}
		since := time.Time{}
		if m != nil && m.state == st {
			since = m.since
		}
		l.changed = append(l.changed, AccountAttention{Customer: customer, Source: p.Source, SourceID: p.ID, Type: p.Type, Username: p.Username,
			DisplayName: p.DisplayName, Email: p.Email, State: st, Reason: reason, Since: since})
		return
	}
	if m == nil || p.deferred {
		return // a stopped run decided nothing about it
	}
	switch p.Action {
	case ActionImport, ActionSkip:
		m.settled = true
	case ActionAlreadyImported:
		// An imported account's row (a possible duplicate, a vault entry
		// rotation found gone) stays until a technician settles it.
	}
}

// attentionWriteBatch bounds the rows written in one transaction.
const attentionWriteBatch = 500

// recordAttention writes what changed since the last pass: new and
// changed states, and the rows of accounts that no longer need a person
// or left a source that was read whole. It counts, in the report, the
// accounts that need a person now, by state.
func (ps *pass) recordAttention(ctx context.Context) error {
	l := &ps.attention
	if !l.on {
		return nil
	}
	if err := ps.opt.leaseLost(); err != nil {
		return fmt.Errorf("%w: the accounts that need a person are recorded by the next run", err)
	}
	now := ps.im.now()
	type change struct {
		put *AccountAttention
		del ledgerKey
	}
	changes := make([]change, 0, len(l.changed))
	for i := range l.changed {
		if l.changed[i].Since.IsZero() {
			l.changed[i].Since = now
		}
		changes = append(changes, change{put: &l.changed[i]})
	}
	left := l.need
	for k, m := range l.before {
		if m.still {
			continue
		}
		gone := !m.seen && ps.complete[k.source] && m.state != StatePossibleDuplicate
		if m.settled || gone {
			changes = append(changes, change{del: k})
			continue
		}
		if _, ignored := l.ignored(k); ignored || m.state == StateIgnored {
			continue // needs no person
		}
		left[m.state]++
	}
	for st, n := range left {
		if n == 0 {
			delete(left, st)
		}
	}
	ps.rep.NeedPerson = left
	// The last transaction also notes a recheck of the ambiguous accounts
	// (attentionrecheck.go), in one of its own when nothing else changed.
	noted := ps.recheckNoted()
	ps.attentionWritten = len(changes) > 0 || noted != nil
	for from := 0; from < len(changes) || (from == 0 && noted != nil); from += attentionWriteBatch {
		batch := changes[from:min(from+attentionWriteBatch, len(changes))]
		last := from+attentionWriteBatch >= len(changes)
		// The rows to put go in one statement; the rows to delete, by source.
		var puts []AccountAttention
		dels := map[string][]string{}
		for _, c := range batch {
			if c.put != nil {
				puts = append(puts, *c.put)
			} else {
				dels[c.del.source] = append(dels[c.del.source], c.del.id)
			}
		}
		err := ps.update(ctx, func(tx Tx) error {
			if err := tx.PutAttention(ctx, puts...); err != nil {
				return err
			}
			for source, ids := range dels {
				if err := tx.DeleteAttention(ctx, ps.c.ID, source, ids...); err != nil {
					return err
				}
			}
			if last && noted != nil {
				return noted(ctx, tx)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("customer %s: record the accounts that need a person: %w", ps.c.ID, err)
		}
	}
	return nil
}

// keepAttention records the accounts that need a person; a failure is
// logged, as the import itself is done and the next pass writes them.
func (ps *pass) keepAttention(ctx context.Context) {
	if err := ps.recordAttention(ctx); err != nil {
		ps.im.Log.WithField("customer", ps.c.ID).WithError(err).Warn("could not record the accounts that need a person; the next run does")
	}
}

// nextStep is the line that sends a person to the accounts that need
// one: those the store holds after the pass, or, in a dry run, those the
// plan would leave.
func nextStep(rep *CustomerReport) string {
	need := rep.NeedPerson
	if need == nil {
		need = map[string]int{StateAmbiguous: rep.Counts.Ambiguous, StatePossibleDuplicate: rep.Counts.PossibleDuplicates,
			StateFailed: rep.Counts.Failed, StateHeld: rep.Counts.Held}
	}
	total, top := 0, ""
	var parts []string
	for _, st := range AccountStates {
		n := need[st]
		if n == 0 {
			continue
		}
		total += n
		parts = append(parts, fmt.Sprintf("%d %s", n, st))
		if top == "" || n > need[top] {
			top = st
		}
	}
	if total == 0 {
		return ""
	}
	noun := "accounts need"
	if total == 1 {
		noun = "account needs"
	}
	detail := ""
	if len(parts) > 1 {
		detail = " (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("%d %s a person%s: autoimport accounts list --customer %s --state %s", total, noun, detail, rep.Customer, top)
}

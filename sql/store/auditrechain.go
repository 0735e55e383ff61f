package store

import (
	"context"
	dbsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/msp-tools/autoimport/jobs"
)

// Re-chaining rewrites chains under the store's key, in one transaction
// recorded by an audit.rechain event on the tenant chain:
//
//   - the single SHA-256 chain written before the per-customer chains
//     (migration 0005 kept it, marked seq = -id, with its head in
//     audit_head): split into one chain per customer;
//   - unkeyed chains, once the store has a key.
//
// A chain is verified before it is re-chained, so that re-chaining never
// makes a broken chain verify. Opening the store does it when nothing is
// broken (for unkeyed chains: only while no chain is keyed yet, the
// store's first keying); otherwise a person runs `autoimport audit
// rechain`, and a broken chain is re-chained only with --accept-broken,
// its break then recorded in the event.

// ErrAuditBroken is wrapped by the error that stops re-chaining a broken
// chain.
var ErrAuditBroken = errors.New("audit chain broken")

// RechainReport is what a re-chaining found and did.
type RechainReport struct {
	// Legacy describes the single chain from before migration 0005, when
	// there was one: its events, its head (ID:HASH) and its break.
	Legacy *RechainedChain `json:"legacy,omitempty"`
	// Unkeyed are the unkeyed chains re-chained under the key, by name.
	Unkeyed map[string]RechainedChain `json:"unkeyed,omitempty"`
	// Left are unkeyed chains left as they are, by name, and why.
	Left map[string]string `json:"left,omitempty"`
	// Key is the key id the chains are now under ("" unkeyed).
	Key string `json:"key_id"`
	// Heads are the new heads of the chains re-chained, CHAIN -> SEQ:HASH.
	Heads map[string]string `json:"heads"`
}

// RechainedChain is one chain as re-chaining found it.
type RechainedChain struct {
	Events int    `json:"events"`
	Head   string `json:"head"`
	Break  string `json:"break,omitempty"`
}

// Empty reports a re-chaining that changed nothing.
func (r *RechainReport) Empty() bool { return r == nil || r.Legacy == nil && len(r.Unkeyed) == 0 }

// Rechain re-chains what opening the store leaves: the chain from before
// migration 0005 and the unkeyed chains (under the key when the store has
// one), verified first. With acceptBroken, a broken chain is re-chained
// too and its break recorded; without, it is an error wrapping
// ErrAuditBroken and nothing changes.
func (s *Store) Rechain(ctx context.Context, actor string, acceptBroken bool) (*RechainReport, error) {
	r, err := s.rechain(ctx, actor, false, acceptBroken)
	if err == nil {
		s.auditBlocked.Store(nil)
	}
	return r, err
}

// rechainOnOpen re-chains, when opening the store, what can be
// re-chained without a person. A broken chain from before migration 0005
// blocks every write until a person settles it.
func (s *Store) rechainOnOpen(ctx context.Context) error {
	legacy, err := s.hasLegacy(ctx, s.db)
	if err != nil {
		return err
	}
	if !legacy && s.auditKey == nil {
		return nil
	}
	if !legacy {
		var n int
		if err := s.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM audit_heads WHERE key_id = ''"); err != nil {
			return fmt.Errorf("read audit heads: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
	_, err = s.rechain(ctx, "autoimport", true, false)
	if errors.Is(err, ErrAuditBroken) {
		blocked := fmt.Errorf("%w; every write is refused until a person settles it: restore the database from a backup, or run `autoimport audit rechain --accept-broken` to re-chain the log with the break recorded", err)
		s.auditBlocked.Store(&blocked)
		return nil
	}
	return err
}

// writesBlocked is why writes are refused, or nil.
func (s *Store) writesBlocked() error {
	if p := s.auditBlocked.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Store) hasLegacy(ctx context.Context, q queryer) (bool, error) {
	var n int
	if err := q.GetContext(ctx, &n, "SELECT COUNT(*) FROM audit_head"); err != nil {
		return false, fmt.Errorf("read the audit head from before per-customer chains: %w", err)
	}
	return n > 0, nil
}

// legacyPending is an error while the chain from before migration 0005
// waits to be re-chained.
func (s *Store) legacyPending(ctx context.Context) error {
	legacy, err := s.hasLegacy(ctx, s.db)
	if err != nil || !legacy {
		return err
	}
	if err := s.writesBlocked(); err != nil {
		return err
	}
	return errors.New("the audit log from before per-customer chains (migration 0005) is not re-chained yet: open the database with this version of autoimport (any command) to re-chain it")
}

func (s *Store) rechain(ctx context.Context, actor string, auto, acceptBroken bool) (*RechainReport, error) {
	defer s.serialize()()
	sx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("re-chain the audit log: %w", err)
	}
	defer sx.Rollback()
	t := &tx{reader: reader{s, sx}, sx: sx}
	rep := &RechainReport{Key: s.auditKey.ID(), Heads: map[string]string{}}

	// Lock what is re-chained: the old head, then every head in name
	// order (as writers lock them); new chains wait until the commit.
	var legacyID int64
	var legacyHash string
	err = sx.QueryRowxContext(ctx, "SELECT last_id, last_hash FROM audit_head WHERE id = 1"+s.forUpdate()).Scan(&legacyID, &legacyHash)
	legacy := err == nil
	if err != nil && !errors.Is(err, dbsql.ErrNoRows) {
		return nil, fmt.Errorf("re-chain the audit log: read the old head: %w", err)
	}
	heads, err := s.readHeads(ctx, sx, s.forUpdate())
	if err != nil {
		return nil, err
	}
	keyed := false
	for _, h := range heads {
		keyed = keyed || h.Keyed()
	}

	var broken []string
	if legacy {
		for _, h := range heads {
			if h.Seq > 0 {
				return nil, fmt.Errorf("re-chain the audit log: the chain %s already holds events beside the log from before per-customer chains: restore the database from a backup taken before this version first opened it", h.Chain())
			}
		}
		n, verr := jobs.VerifyLegacyChain(t.legacyEvents(ctx), legacyID, legacyHash)
		rep.Legacy = &RechainedChain{Events: n, Head: fmt.Sprintf("%d:%s", legacyID, legacyHash)}
		if verr != nil {
			if !isBreak(verr) {
				return nil, verr
			}
			rep.Legacy.Break = verr.Error()
			broken = append(broken, verr.Error())
		}
	}
	var unkeyed []jobs.AuditHead
	if s.auditKey != nil {
		for _, h := range heads {
			switch {
			case h.Keyed():
			case h.Seq == 0:
				// Nothing to re-chain: the chain starts under the key.
				if _, err := sx.ExecContext(ctx, "UPDATE audit_heads SET key_id = ? WHERE customer_id = ?", s.auditKey.ID(), h.Customer); err != nil {
					return nil, fmt.Errorf("re-chain the audit log: %w", err)
				}
			case auto && keyed:
				if rep.Left == nil {
					rep.Left = map[string]string{}
				}
				rep.Left[h.Chain()] = "unkeyed in a keyed log: left for a person (`autoimport audit rechain`)"
			default:
				n, verr := jobs.VerifyChain(t.chainEvents(ctx, h.Customer), h, nil)
				rc := RechainedChain{Events: n, Head: h.String()}
				if verr != nil {
					if !isBreak(verr) {
						return nil, verr
					}
					rc.Break = verr.Error()
					if auto {
						// The intact chains are re-chained; this one stays
						// as it is, for a person.
						if rep.Left == nil {
							rep.Left = map[string]string{}
						}
						rep.Left[h.Chain()] = verr.Error()
						continue
					}
					broken = append(broken, verr.Error())
				}
				if rep.Unkeyed == nil {
					rep.Unkeyed = map[string]RechainedChain{}
				}
				rep.Unkeyed[h.Chain()] = rc
				unkeyed = append(unkeyed, h)
			}
		}
	}
	if len(broken) > 0 && !acceptBroken {
		return rep, fmt.Errorf("%w: %s; it was not re-chained, so that the break stays visible", ErrAuditBroken, strings.Join(broken, "; "))
	}

	var chains []string
	if legacy {
		if err := sx.SelectContext(ctx, &chains, "SELECT DISTINCT customer_id FROM audit_events WHERE seq < 0 ORDER BY customer_id"); err != nil {
			return nil, fmt.Errorf("re-chain the audit log: %w", err)
		}
	}
	for _, h := range unkeyed {
		// Their events are renumbered from 1 in their order: mark them
		// first, out of the way of the new numbers.
		if _, err := sx.ExecContext(ctx, "UPDATE audit_events SET seq = -seq WHERE customer_id = ? AND seq > 0", h.Customer); err != nil {
			return nil, fmt.Errorf("re-chain the audit log: %w", err)
		}
		chains = append(chains, h.Customer)
	}
	sort.Strings(chains)
	for _, c := range chains {
		head, err := t.rewriteChain(ctx, c)
		if err != nil {
			return nil, err
		}
		rep.Heads[head.Chain()] = head.String()
	}
	if legacy {
		if _, err := sx.ExecContext(ctx, "DELETE FROM audit_head"); err != nil {
			return nil, fmt.Errorf("re-chain the audit log: clear the old head: %w", err)
		}
	}
	if rep.Empty() {
		return rep, sx.Commit()
	}
	after, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	subject := "the audit log re-chained unkeyed (AUTOIMPORT_SECRET_KEY is not set)"
	if s.auditKey != nil {
		subject = "the audit log re-chained under the key " + s.auditKey.ID()
	}
	if _, err := t.AppendAudit(ctx, jobs.AuditEvent{Actor: actor, Action: "audit.rechain", Subject: subject, After: string(after)}); err != nil {
		return nil, err
	}
	if err := t.flushAudit(ctx); err != nil {
		return nil, err
	}
	if err := sx.Commit(); err != nil {
		return nil, fmt.Errorf("re-chain the audit log: commit: %w", err)
	}
	return rep, nil
}

func isBreak(err error) bool {
	var ce *jobs.ChainError
	return errors.As(err, &ce)
}

// rechainPage is how many events re-chaining reads and rewrites at once.
const rechainPage = 200

// rewriteChain chains a customer's marked events (seq < 0, in the order
// of -seq: the old id, or the old seq) as seq 1, 2, 3, ... under the
// store's key, and sets the chain's head.
func (t *tx) rewriteChain(ctx context.Context, customer string) (jobs.AuditHead, error) {
	head := jobs.AuditHead{Customer: customer, Hash: jobs.GenesisHash, KeyID: t.s.auditKey.ID()}
	for {
		var page []jobs.AuditEvent
		for e, err := range scanEvents(ctx, t.sx, "re-chain the audit log", "SELECT "+auditSelectCols+" FROM audit_events WHERE customer_id = ? AND seq < 0 ORDER BY seq DESC LIMIT ?", customer, rechainPage) {
			if err != nil {
				return head, err
			}
			page = append(page, e)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			e := &page[i]
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
			e.Hash = t.s.auditKey.Hash(*e)
			head.Seq, head.Hash = e.Seq, e.Hash
		}
		if err := t.updateChained(ctx, page); err != nil {
			return head, err
		}
	}
	if _, err := t.sx.ExecContext(ctx, "DELETE FROM audit_heads WHERE customer_id = ?", customer); err != nil {
		return head, fmt.Errorf("re-chain the audit log: %w", err)
	}
	if _, err := t.sx.ExecContext(ctx, "INSERT INTO audit_heads (customer_id, seq, hash, key_id) VALUES (?, ?, ?, ?)", customer, head.Seq, head.Hash, head.KeyID); err != nil {
		return head, fmt.Errorf("re-chain the audit log: set the head of %s: %w", head.Chain(), err)
	}
	return head, nil
}

// updateChained writes the seq and hashes of a page of events in one
// statement.
func (t *tx) updateChained(ctx context.Context, page []jobs.AuditEvent) error {
	var q strings.Builder
	args := make([]any, 0, 7*len(page))
	cases := func(col string, val func(e jobs.AuditEvent) any) {
		q.WriteString(col + " = CASE id")
		for _, e := range page {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, e.ID, val(e))
		}
		q.WriteString(" END")
	}
	q.WriteString("UPDATE audit_events SET ")
	cases("seq", func(e jobs.AuditEvent) any { return e.Seq })
	q.WriteString(", ")
	cases("prev_hash", func(e jobs.AuditEvent) any { return e.PrevHash })
	q.WriteString(", ")
	cases("hash", func(e jobs.AuditEvent) any { return e.Hash })
	q.WriteString(" WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(page)), ", ") + ")")
	for _, e := range page {
		args = append(args, e.ID)
	}
	if _, err := t.sx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("re-chain the audit log: %w", err)
	}
	return nil
}

// legacyEvents streams, page by page inside the transaction, the events
// of the chain from before migration 0005 in id order.
func (t *tx) legacyEvents(ctx context.Context) iter.Seq2[jobs.AuditEvent, error] {
	return t.pagedEvents(ctx, "SELECT "+auditSelectCols+" FROM audit_events WHERE seq < 0 AND id > ? ORDER BY id LIMIT ?", func(e jobs.AuditEvent) int64 { return e.ID })
}

// chainEvents streams one chain's events in seq order, page by page.
func (t *tx) chainEvents(ctx context.Context, customer string) iter.Seq2[jobs.AuditEvent, error] {
	return t.pagedEvents(ctx, "SELECT "+auditSelectCols+" FROM audit_events WHERE customer_id = ? AND seq > ? ORDER BY seq LIMIT ?", func(e jobs.AuditEvent) int64 { return e.Seq }, customer)
}

// pagedEvents reads a query page by page (a transaction's connection
// serves one query at a time): the query's last two arguments are the
// position after the previous page and the page size.
func (t *tx) pagedEvents(ctx context.Context, query string, pos func(jobs.AuditEvent) int64, args ...any) iter.Seq2[jobs.AuditEvent, error] {
	return func(yield func(jobs.AuditEvent, error) bool) {
		var after int64
		for {
			var page []jobs.AuditEvent
			for e, err := range scanEvents(ctx, t.sx, "re-chain the audit log", query, append(append(args[:len(args):len(args)], after), rechainPage)...) {
				if err != nil {
					yield(e, err)
					return
				}
				page = append(page, e)
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < rechainPage {
				return
			}
			after = pos(page[len(page)-1])
		}
	}
}

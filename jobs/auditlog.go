package jobs

import (
	"context"
	"fmt"
	"iter"
	"sort"
)

// AuditLog is what checking the whole audit log reads.
type AuditLog interface {
	// AuditHeads lists every chain's head. It fails while the log is not
	// yet in per-chain form (a log from before the per-customer chains
	// that could not be re-chained; the error says why).
	AuditHeads(ctx context.Context) ([]AuditHead, error)
	// AuditChain streams one chain's events (customer "" for the tenant
	// chain) in Seq order.
	AuditChain(ctx context.Context, customer string) iter.Seq2[AuditEvent, error]
	// AuditChains lists the chains (by customer, "" for the tenant chain)
	// that hold events, with or without a head.
	AuditChains(ctx context.Context) ([]string, error)
	// AuditKey is the key this process checks and extends chains with;
	// nil when AUTOIMPORT_SECRET_KEY is not set.
	AuditKey() *AuditKey
}

// ChainCheck is the outcome of checking one chain.
type ChainCheck struct {
	Head   AuditHead
	Events int
	// Err is the chain's first break, or why it could not be checked.
	Err error
}

// AuditCheck is the outcome of checking every chain of the log.
type AuditCheck struct {
	// Chains are in name order, the tenant chain first.
	Chains []ChainCheck
	Events int
	// KeyID is the key of the process that checked (empty: none).
	KeyID string
}

// Err is the first chain's error, or nil when every chain is intact.
func (c *AuditCheck) Err() error {
	for _, ch := range c.Chains {
		if ch.Err != nil {
			return ch.Err
		}
	}
	return nil
}

// Unkeyed counts the chains that hold events and are not keyed.
func (c *AuditCheck) Unkeyed() int {
	n := 0
	for _, ch := range c.Chains {
		if !ch.Head.Keyed() && ch.Head.Seq > 0 {
			n++
		}
	}
	return n
}

// CheckAudit verifies every chain of the log and each head kept
// elsewhere (kept, at most one per chain) against its chain. A process
// holding the key also counts an unkeyed chain with events as a break:
// once the key is set every chain is re-chained under it, so such a
// chain was written without the key or rebuilt by a database writer.
// The error is for a log that cannot be read; breaks are in the result.
func CheckAudit(ctx context.Context, log AuditLog, kept []AuditHead) (*AuditCheck, error) {
	heads, err := log.AuditHeads(ctx)
	if err != nil {
		return nil, err
	}
	withEvents, err := log.AuditChains(ctx)
	if err != nil {
		return nil, err
	}
	key := log.AuditKey()
	res := &AuditCheck{KeyID: key.ID()}
	keptBy := map[string]AuditHead{}
	for _, h := range kept {
		if _, dup := keptBy[h.Customer]; dup {
			return nil, &UsageError{Msg: fmt.Sprintf("two kept heads for the audit chain %s: give one per chain", h.Chain())}
		}
		keptBy[h.Customer] = h
	}
	headed := map[string]bool{}
	for _, h := range heads {
		headed[h.Customer] = true
		cc := ChainCheck{Head: h}
		var keep []AuditHead
		if k, ok := keptBy[h.Customer]; ok {
			keep = append(keep, k)
		}
		cc.Events, cc.Err = VerifyChain(log.AuditChain(ctx, h.Customer), h, key, keep...)
		if cc.Err == nil && key != nil && !h.Keyed() && h.Seq > 0 {
			cc.Err = &ChainError{Chain: h.Chain(), Seq: 1, Reason: "the chain is unkeyed although this log is keyed: it was written by a process without AUTOIMPORT_SECRET_KEY, or rebuilt by someone who can write the database (`autoimport audit rechain` re-chains it under the key once a person has checked it)"}
		}
		res.Events += cc.Events
		res.Chains = append(res.Chains, cc)
	}
	for _, c := range withEvents {
		if !headed[c] {
			res.Chains = append(res.Chains, ChainCheck{Head: AuditHead{Customer: c},
				Err: &ChainError{Chain: ChainName(c), Seq: 1, Reason: "the chain has events but no head (its head was deleted)"}})
			headed[c] = true
		}
	}
	for c, k := range keptBy {
		if !headed[c] {
			res.Chains = append(res.Chains, ChainCheck{Head: AuditHead{Customer: c},
				Err: &ChainError{Chain: k.Chain(), Seq: k.Seq, Reason: fmt.Sprintf("the chain no longer exists, though a head of it was kept elsewhere (%s): it was deleted", k)}})
		}
	}
	sort.Slice(res.Chains, func(i, j int) bool { return res.Chains[i].Head.Customer < res.Chains[j].Head.Customer })
	return res, nil
}

// VerifyAudit checks every chain of the log; it returns the number of
// events checked and the first break.
func VerifyAudit(ctx context.Context, log AuditLog) (int, error) {
	res, err := CheckAudit(ctx, log, nil)
	if err != nil {
		return 0, err
	}
	return res.Events, res.Err()
}

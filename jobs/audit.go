package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
)

// AuditEvent is one entry of the append-only audit log. The log is one
// hash chain per customer, and one for tenant-wide changes (Customer ""):
// Seq is the event's place in its chain (1, 2, 3, ...) and PrevHash the
// hash of the event before it there.
type AuditEvent struct {
	// ID orders events across chains in the order they were written; it
	// is not part of any hash (a chain's order is its Seq).
	ID       int64     `json:"id" db:"id"`
	Seq      int64     `json:"seq" db:"seq"`
	At       time.Time `json:"at" db:"-"`
	Actor    string    `json:"actor" db:"actor"`
	Action   string    `json:"action" db:"action"`
	Customer string    `json:"customer,omitempty" db:"customer_id"`
	Subject  string    `json:"subject,omitempty" db:"subject"`
	// Before and After are JSON documents (or empty) of what changed.
	Before   string `json:"before,omitempty" db:"before_doc"`
	After    string `json:"after,omitempty" db:"after_doc"`
	PrevHash string `json:"prev_hash" db:"prev_hash"`
	Hash     string `json:"hash" db:"hash"`
}

// GenesisHash is the PrevHash of the first event of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// TenantChain names the chain of tenant-wide events (integrations,
// policies). Customer ids never start with '@', so it is never a
// customer's.
const TenantChain = "@tenant"

// ChainName is the name of the chain a customer's events (customer ""
// for tenant-wide ones) belong to.
func ChainName(customer string) string {
	if customer == "" {
		return TenantChain
	}
	return customer
}

// AuditHead is where a chain ends: the sequence number and hash of its
// last event (0 and GenesisHash before the first). KeyID names the key
// the chain is hashed under; "" is an unkeyed chain (plain SHA-256).
type AuditHead struct {
	Customer string `json:"customer"`
	Seq      int64  `json:"seq"`
	Hash     string `json:"hash"`
	KeyID    string `json:"key_id,omitempty"`
}

// Chain is the head's chain name (see ChainName).
func (h AuditHead) Chain() string { return ChainName(h.Customer) }

// String is the head as SEQ:HASH.
func (h AuditHead) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// Keyed reports whether the chain is hashed under a key.
func (h AuditHead) Keyed() bool { return h.KeyID != "" }

// ParseKeptHead reads a head kept elsewhere, written CHAIN=SEQ:HASH as
// `run` and `audit verify` print it (CHAIN a customer id or @tenant).
func ParseKeptHead(s string) (AuditHead, error) {
	chain, head, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return AuditHead{}, &UsageError{Msg: fmt.Sprintf("audit head %q: write CHAIN=SEQ:HASH as `autoimport run` and `autoimport audit verify` print it (CHAIN is a customer id or %s)", s, TenantChain)}
	}
	h := AuditHead{}
	switch {
	case chain == TenantChain:
	case customerID.MatchString(chain):
		h.Customer = chain
	default:
		return AuditHead{}, &UsageError{Msg: fmt.Sprintf("audit head %q: %q is neither a customer id nor %s", s, chain, TenantChain)}
	}
	seq, sum, ok := strings.Cut(head, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || len(sum) != sha256.Size*2 || strings.Trim(strings.ToLower(sum), "0123456789abcdef") != "" {
		return AuditHead{}, &UsageError{Msg: fmt.Sprintf("audit head %q: want SEQ:HASH after %s= (a sequence number from 1 and 64 hex digits)", s, chain)}
	}
	h.Seq, h.Hash = n, strings.ToLower(sum)
	return h, nil
}

// AuditKey keys the audit chains: each event's hash is an HMAC-SHA256
// under a key derived from AUTOIMPORT_SECRET_KEY (HKDF-SHA256, label
// "audit"), so whoever can write the database but lacks the key cannot
// make an edited, shortened or rebuilt chain verify. A nil *AuditKey is no
// key: chains are plain SHA-256, which only shows accidental damage.
type AuditKey struct {
	mac []byte
	id  string
}

// auditKeyLabel is the HKDF label of the audit chain's key.
const auditKeyLabel = "audit"

// NewAuditKey derives the audit key from the master key; nil for nil.
func NewAuditKey(master *secret.Key) *AuditKey {
	if master == nil {
		return nil
	}
	k := &AuditKey{mac: master.Derive(auditKeyLabel)}
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte("autoimport audit key id"))
	k.id = hex.EncodeToString(m.Sum(nil)[:8])
	return k
}

// ID names the key without revealing it (an HMAC of a fixed text), so a
// chain records which key it is under; "" for no key.
func (k *AuditKey) ID() string {
	if k == nil {
		return ""
	}
	return k.id
}

// chainHashVersion starts every hashed encoding, so that no event of one
// format can pass for one of another.
const chainHashVersion = "autoimport audit chain v2"

// Hash returns the event's hash in its chain: over its chain (the
// customer), its Seq, its content and PrevHash; an HMAC under k, or plain
// SHA-256 when k is nil. Fields are length-prefixed so that no two
// different events share an encoding; time counts to the microsecond,
// the precision both databases keep.
func (k *AuditKey) Hash(e AuditEvent) string {
	var h hash.Hash
	if k == nil {
		h = sha256.New()
	} else {
		h = hmac.New(sha256.New, k.mac)
	}
	writeFields(h, chainHashVersion, e.Customer, strconv.FormatInt(e.Seq, 10), strconv.FormatInt(e.At.UnixMicro(), 10),
		e.Actor, e.Action, e.Subject, e.Before, e.After, e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

func writeFields(h hash.Hash, fields ...string) {
	var n [8]byte
	for _, s := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
}

// ChainError names the first event where an audit chain breaks.
type ChainError struct {
	// Chain is the chain's name; empty for the single chain written
	// before the per-customer chains (migration 0005), whose events are
	// named by ID.
	Chain   string
	Seq     int64
	EventID int64
	Reason  string
}

func (e *ChainError) Error() string {
	if e.Chain == "" {
		return fmt.Sprintf("audit chain (as written before per-customer chains) broken at event %d: %s", e.EventID, e.Reason)
	}
	where := fmt.Sprintf("seq %d", e.Seq)
	if e.EventID != 0 {
		where += fmt.Sprintf(" (event %d)", e.EventID)
	}
	return fmt.Sprintf("audit chain %s broken at %s: %s", e.Chain, where, e.Reason)
}

// ErrAuditKey is wrapped by errors about the key a chain needs: none set,
// or another key than the one the chain is under.
var ErrAuditKey = errors.New("audit key")

// keyFor returns the key to hash the head's chain with: none for an
// unkeyed chain, else key, which must be the chain's.
func keyFor(head AuditHead, key *AuditKey) (*AuditKey, error) {
	switch {
	case !head.Keyed():
		return nil, nil
	case key == nil:
		return nil, fmt.Errorf("%w: the audit chain %s is keyed (key id %s): set AUTOIMPORT_SECRET_KEY to check or extend it", ErrAuditKey, head.Chain(), head.KeyID)
	case key.ID() != head.KeyID:
		return nil, fmt.Errorf("%w: the audit chain %s is keyed with another AUTOIMPORT_SECRET_KEY (key id %s; this one's is %s)", ErrAuditKey, head.Chain(), head.KeyID, key.ID())
	}
	return key, nil
}

// VerifyChain recomputes one chain from its events in Seq order and
// checks that it runs 1, 2, 3, ... with each event naming the hash of the
// one before, hashed under key (the chain's own; none for an unkeyed
// chain), and ends at head: an edited, deleted, inserted, reordered or
// truncated event is found, and without the key no rebuilt chain passes.
// Each kept head (a head of this chain printed earlier and kept
// elsewhere) must lie on the chain: a chain rewound to an earlier point
// of itself, head included, is found only that way. It returns the number
// of events checked.
func VerifyChain(events iter.Seq2[AuditEvent, error], head AuditHead, key *AuditKey, kept ...AuditHead) (int, error) {
	k, err := keyFor(head, key)
	if err != nil {
		return 0, err
	}
	chain := head.Chain()
	want := map[int64]string{}
	for _, h := range kept {
		want[h.Seq] = h.Hash
	}
	prev := GenesisHash
	var last int64
	n := 0
	for e, err := range events {
		if err != nil {
			return n, err
		}
		n++
		fail := func(reason string) (int, error) {
			return n, &ChainError{Chain: chain, Seq: e.Seq, EventID: e.ID, Reason: reason}
		}
		switch {
		case e.Customer != head.Customer:
			return fail(fmt.Sprintf("the event belongs to the chain %s", ChainName(e.Customer)))
		case e.Seq <= last:
			return fail(fmt.Sprintf("out of order after seq %d", last))
		case e.Seq != last+1:
			return fail(fmt.Sprintf("the events at seq %d to %d are missing (deleted)", last+1, e.Seq-1))
		case e.PrevHash != prev:
			return fail("its previous-hash does not match the event before it")
		case k.Hash(e) != e.Hash:
			if k != nil {
				return fail("its hash is not the chain's HMAC: its content was altered, or it was written without the key")
			}
			return fail("its content was altered (hash mismatch)")
		}
		if h, ok := want[e.Seq]; ok && h != e.Hash {
			return fail(fmt.Sprintf("the head kept elsewhere says %d:%s: the chain was rewritten since", e.Seq, h))
		}
		prev, last = e.Hash, e.Seq
	}
	if last != head.Seq || prev != head.Hash {
		if last < head.Seq {
			return n, &ChainError{Chain: chain, Seq: last + 1, Reason: fmt.Sprintf("the chain ends at seq %d but its head is at %d (events deleted from the end)", last, head.Seq)}
		}
		return n, &ChainError{Chain: chain, Seq: last, Reason: fmt.Sprintf("the chain does not end at its recorded head %s (events appended outside autoimport, or the head altered)", head)}
	}
	for _, h := range kept {
		if h.Seq > last {
			return n, &ChainError{Chain: chain, Seq: h.Seq, Reason: fmt.Sprintf("the chain ends at seq %d, before the head kept elsewhere (%d:%s): it was rewound", last, h.Seq, h.Hash)}
		}
	}
	return n, nil
}

// LegacyHash is an event's hash in the single chain written before the
// per-customer chains (migration 0005): SHA-256 over its ID, its content
// and the previous event's hash.
func (e AuditEvent) LegacyHash() string {
	h := sha256.New()
	writeFields(h, e.PrevHash, strconv.FormatInt(e.ID, 10), strconv.FormatInt(e.At.UnixMicro(), 10), e.Actor, e.Action, e.Customer, e.Subject, e.Before, e.After)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyLegacyChain recomputes the single chain written before the
// per-customer chains, over its events in ID order, and checks that it
// ends at its recorded head (last id and hash). It is checked before it
// is re-chained, so that a broken chain is never made to verify.
func VerifyLegacyChain(events iter.Seq2[AuditEvent, error], headID int64, headHash string) (int, error) {
	prev := GenesisHash
	var lastID int64
	n := 0
	for e, err := range events {
		if err != nil {
			return n, err
		}
		n++
		if e.ID <= lastID {
			return n, &ChainError{EventID: e.ID, Reason: fmt.Sprintf("out of order after event %d", lastID)}
		}
		if e.PrevHash != prev {
			reason := "its previous-hash does not match the event before it"
			if e.ID != lastID+1 {
				reason = fmt.Sprintf("events %d to %d are missing (deleted)", lastID+1, e.ID-1)
			}
			return n, &ChainError{EventID: e.ID, Reason: reason}
		}
		if e.LegacyHash() != e.Hash {
			return n, &ChainError{EventID: e.ID, Reason: "its content was altered (hash mismatch)"}
		}
		prev, lastID = e.Hash, e.ID
	}
	if lastID != headID || prev != headHash {
		if lastID < headID {
			return n, &ChainError{EventID: lastID + 1, Reason: fmt.Sprintf("the log ends at event %d but %d were written (events deleted from the end)", lastID, headID)}
		}
		return n, &ChainError{EventID: lastID, Reason: "the log does not end at the recorded head (events appended outside autoimport)"}
	}
	return n, nil
}

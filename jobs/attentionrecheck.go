package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/msp-tools/autoimport/sources"
)

// An ambiguous account (two vault entries or contacts fit it) is decided
// by its names, the customer's options, a technician's choice and the
// vault's and PSA's entries. A pass re-checks it against the vault and
// the PSA only when one of them may have changed: the account's names or
// type in its directory, a choice a technician made, the options, a full
// read of a directory, or, for the entries a technician may have fixed in
// the vault or the PSA, the recheck interval since the last recheck (and
// whenever the pass reads those indexes anyway, for a new account). So a
// customer with thousands of ambiguous accounts costs no vault or PSA
// request in a run where nothing changed.

// DefaultAttentionRecheckEvery is how long an unchanged ambiguous account
// goes without being checked against the vault and the PSA again.
const DefaultAttentionRecheckEvery = 24 * time.Hour

// attentionRecheckState names the per-customer state that says when the
// ambiguous accounts were last checked, and under which options.
const attentionRecheckState = "attention.rechecked"

type attentionRecheck struct {
	At     time.Time `json:"at"`
	Inputs string    `json:"inputs"`
}

// accountDigest digests what, of an account, matching reads.
func accountDigest(typ AccountType, username, displayName, email string) uint64 {
	h := fnv.New64a()
	for _, s := range []string{string(typ), username, displayName, email} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// settledAmbiguous reports a new candidate that was ambiguous after the
// last pass and of which nothing that decides it has changed since: it
// is held aside (unchanged) instead of planned.
func (ps *pass) settledAmbiguous(a sources.Account, link *Link) bool {
	if !ps.attention.on {
		return false
	}
	m := ps.attention.before[ledgerKey{string(a.Source), a.ID}]
	if m == nil || m.state != StateAmbiguous || m.who != accountDigest(a.Type, a.Username, a.DisplayName, a.Email) {
		return false
	}
	if _, chosen := ps.choices[string(a.Source)+":"+a.ID]; chosen {
		return false
	}
	ps.unchanged = append(ps.unchanged, heldAside{a: ps.trim(a), link: link})
	return true
}

// inputsDigest digests, besides the accounts themselves and the vault's
// and PSA's entries, what decides an ambiguity: the options in force, the
// technicians' decisions, and the ledger's links (its size: a link is
// added only by an import).
//
// imported is what the pass added to the ledger so far: a recheck planned
// those accounts together with the ambiguous ones, so the links they made
// were seen.
func (ps *pass) inputsDigest(imported int) string {
	h := fnv.New64a()
	b, _ := json.Marshal(ps.opts)
	h.Write(b)
	keys := slices.Sorted(maps.Keys(ps.choices))
	for _, k := range keys {
		d := ps.choices[k]
		fmt.Fprintf(h, "\x00%s %s %s %t %s %t", k, d.Kind, d.VaultRef, d.VaultCreate, d.PSARef, d.PSACreate)
	}
	fmt.Fprintf(h, "\x00ledger %d", ps.ledger.len()+imported)
	return fmt.Sprintf("%016x", h.Sum64())
}

// recheckDue reports whether the ambiguous accounts held aside must be
// checked again: the pass reads the indexes anyway (fresh holds a new
// account), a directory was read in full, the options, decisions or
// links changed, or the interval since the last recheck is over.
func (ps *pass) recheckDue(ctx context.Context, fresh *newAccounts) bool {
	if len(ps.unchanged) == 0 {
		return false
	}
	if fresh.len() > 0 || ps.opt.FullRead {
		return true
	}
	for _, r := range ps.rep.Reads {
		if r.Mode == sources.ReadFull {
			return true
		}
	}
	v, err := ps.im.Store.State(ctx, ps.c.ID, attentionRecheckState)
	var last attentionRecheck
	if err != nil || v == "" || json.Unmarshal([]byte(v), &last) != nil {
		return true
	}
	return last.Inputs != ps.inputsDigest(0) || ps.im.now().Sub(last.At) >= ps.im.attentionRecheckEvery()
}

func (im *Importer) attentionRecheckEvery() time.Duration {
	if im.AttentionRecheckEvery > 0 {
		return im.AttentionRecheckEvery
	}
	return DefaultAttentionRecheckEvery
}

// settleAmbiguous either plans the accounts held aside with the new ones
// (a recheck), or reports each as still ambiguous for the reason the last
// pass gave, writing nothing.
func (ps *pass) settleAmbiguous(ctx context.Context, fresh *newAccounts) {
	if ps.recheckDue(ctx, fresh) {
		for _, h := range ps.unchanged {
			fresh.add(h.a, h.link)
		}
		fresh.sort()
	} else {
		for _, h := range ps.unchanged {
			a := h.a
			m := ps.attention.before[ledgerKey{string(a.Source), a.ID}]
			ps.emit(&AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Email: a.Email, Type: a.Type,
				Action: ActionAmbiguous, Reason: m.reason, Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}})
		}
	}
	ps.unchanged = nil
	// Every ambiguous account is checked this pass when the indexes are
	// read at all.
	ps.rechecked = fresh.len() > 0
}

// heldAside is an unchanged ambiguous account, with its Microsoft 365
// twin.
type heldAside struct {
	a    sources.Account
	link *Link
}

// recheckNoted is the state that records a recheck this pass made, for
// the transaction that writes the accounts that need a person; nil when
// the pass made none.
func (ps *pass) recheckNoted() func(ctx context.Context, tx Tx) error {
	if !ps.rechecked {
		return nil
	}
	b, _ := json.Marshal(attentionRecheck{At: ps.im.now(), Inputs: ps.inputsDigest(ps.rep.Counts.Imported)})
	return func(ctx context.Context, tx Tx) error {
		return tx.PutState(ctx, ps.c.ID, attentionRecheckState, string(b))
	}
}

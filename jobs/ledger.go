package jobs

import (
	"strings"
	"time"
)

// ledger is what a pass needs of the customer's imported accounts, held
// small enough for a customer of 100,000: a map from source id to a
// position, and per account one allocation for its own strings plus
// numbers for the strings it shares with others.
type ledger struct {
	shared  *stringTable
	at      map[ledgerKey]int32
	entries []ledgerEntry
}

type ledgerKey struct{ source, id string }

type ledgerEntry struct {
	data                     string // username, vault ref and PSA ref, end to end
	usernameEnd, vaultRefEnd uint32
	// In the shared table.
	typ, state, welcome, imported, vaultIntegration, psaIntegration uint32
	flags                                                           Flags
	seen                                                            bool
}

// imported is one ledger entry as a pass reads it.
type imported struct {
	typ                        AccountType
	username, state, welcome   string
	imported                   string // "imported 2026-11-25 under policy Standard"
	vaultIntegration, vaultRef string
	psaIntegration, psaRef     string
	flags                      Flags
}

func newLedger(shared *stringTable) *ledger {
	return &ledger{shared: shared, at: map[ledgerKey]int32{}}
}

func (l *ledger) add(a ImportedAccount) {
	t := l.shared
	var b strings.Builder
	b.Grow(len(a.Username) + len(a.VaultRef) + len(a.PSARef))
	b.WriteString(a.Username)
	e := ledgerEntry{usernameEnd: uint32(b.Len())}
	b.WriteString(a.VaultRef)
	e.vaultRefEnd = uint32(b.Len())
	b.WriteString(a.PSARef)
	e.data = b.String()
	e.typ, e.state, e.welcome = t.ref(string(a.Type)), t.ref(a.State), t.ref(a.Welcome)
	e.imported = t.ref("imported " + a.ImportedAt.Format(time.DateOnly) + " under " + a.OptionsOrigin)
	e.vaultIntegration, e.psaIntegration = t.ref(a.VaultIntegration), t.ref(a.PSAIntegration)
	e.flags = Flags{SelfServe: a.SelfServe, Rotation: a.Rotation, M365Sync: a.M365Sync}
	l.at[ledgerKey{t.share(a.Source), a.SourceID}] = int32(len(l.entries))
	l.entries = append(l.entries, e)
}

func (l *ledger) len() int { return len(l.entries) }

func (l *ledger) view(e *ledgerEntry) imported {
	s := l.shared.strs
	return imported{typ: AccountType(s[e.typ]), username: e.data[:e.usernameEnd], state: s[e.state], welcome: s[e.welcome], imported: s[e.imported],
		vaultIntegration: s[e.vaultIntegration], vaultRef: e.data[e.usernameEnd:e.vaultRefEnd], psaIntegration: s[e.psaIntegration], psaRef: e.data[e.vaultRefEnd:], flags: e.flags}
}

// get returns the imported account under k.
func (l *ledger) get(k ledgerKey) (imported, bool) {
	i, ok := l.at[k]
	if !ok {
		return imported{}, false
	}
	return l.view(&l.entries[i]), true
}

// see marks the account under k as still in its source and returns it.
func (l *ledger) see(k ledgerKey) (imported, bool) {
	i, ok := l.at[k]
	if !ok {
		return imported{}, false
	}
	l.entries[i].seen = true
	return l.view(&l.entries[i]), true
}

// unseen calls fn for each account no source has shown in this pass.
func (l *ledger) unseen(fn func(k ledgerKey, a imported)) {
	for k, i := range l.at {
		if e := &l.entries[i]; !e.seen {
			fn(k, l.view(e))
		}
	}
}

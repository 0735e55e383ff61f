package jobs

import (
	"cmp"
	"slices"
	"strings"

	"github.com/msp-tools/autoimport/sources"
)

// stringTable holds one copy of each string that many accounts repeat (a
// group's type reason, a domain, a state) and numbers them.
type stringTable struct {
	strs []string
	at   map[string]uint32
}

func (t *stringTable) ref(s string) uint32 {
	if i, ok := t.at[s]; ok {
		return i
	}
	if t.at == nil {
		t.at = map[string]uint32{}
	}
	i := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.at[s] = i
	return i
}

// share returns the table's copy of s.
func (t *stringTable) share(s string) string { return t.strs[t.ref(s)] }

// newAccounts holds a pass's new accounts from the moment they are read
// until they are planned: a whole directory on a first run. Each one is a
// single allocation holding its own strings end to end, plus numbers for
// the strings it shares with others, about half the size of a Candidate
// and its separately allocated strings.
type newAccounts struct {
	shared *stringTable
	items  []packedAccount
}

// The packed strings of an account, in order.
const (
	packedID = iota
	packedUsername
	packedUPN
	packedDisplayName
	packedGivenName
	packedSurname
	packedEmail
	packedImmutableID
	packedFields
)

type packedAccount struct {
	data string
	ends [packedFields]uint32
	// source, account type, domain and type reason in the shared table.
	source, typ, domain, reason uint32
	link                        *Link
}

func (n *newAccounts) add(a sources.Account, link *Link) {
	fields := [packedFields]string{a.ID, a.Username, a.UPN, a.DisplayName, a.GivenName, a.Surname, a.Email, a.ImmutableID}
	size := 0
	for _, f := range fields {
		size += len(f)
	}
	var b strings.Builder
	b.Grow(size)
	p := packedAccount{link: link, source: n.shared.ref(string(a.Source)), typ: n.shared.ref(string(a.Type)), domain: n.shared.ref(a.Domain), reason: n.shared.ref(a.TypeReason)}
	for i, f := range fields {
		b.WriteString(f)
		p.ends[i] = uint32(b.Len())
	}
	p.data = b.String()
	n.items = append(n.items, p)
}

func (n *newAccounts) len() int { return len(n.items) }

// types says which account types the new accounts are of.
func (n *newAccounts) types() map[AccountType]bool {
	out := map[AccountType]bool{}
	for i := range n.len() {
		out[n.typeOf(i)] = true
	}
	return out
}

func (p *packedAccount) field(i int) string {
	start := uint32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.data[start:p.ends[i]]
}

func (n *newAccounts) typeOf(i int) AccountType { return AccountType(n.shared.strs[n.items[i].typ]) }

// get returns the i-th account as a Candidate; its strings are the packed
// ones, not copies.
func (n *newAccounts) get(i int) Candidate {
	p := &n.items[i]
	s := n.shared.strs
	return Candidate{Source: sources.Kind(s[p.source]), ID: p.field(packedID), Username: p.field(packedUsername), UPN: p.field(packedUPN),
		DisplayName: p.field(packedDisplayName), GivenName: p.field(packedGivenName), Surname: p.field(packedSurname), Email: p.field(packedEmail),
		Domain: s[p.domain], ImmutableID: p.field(packedImmutableID), Type: AccountType(s[p.typ]), TypeReason: s[p.reason], Link: p.link}
}

// sort orders the accounts by source, then username ignoring case, so that
// runs over the same directory plan in the same order.
func (n *newAccounts) sort() {
	slices.SortStableFunc(n.items, func(x, y packedAccount) int {
		return cmp.Or(cmp.Compare(n.shared.strs[x.source], n.shared.strs[y.source]), compareFold(x.field(packedUsername), y.field(packedUsername)))
	})
	n.items = slices.Clip(n.items)
}

// compareFold orders two strings ignoring ASCII case, without allocating.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

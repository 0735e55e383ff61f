package sinks

import (
	"fmt"
	"slices"
	"strings"
)

// Identity is what the matching rules know of an account.
type Identity struct {
	// Source is "ad", "m365" or "local" (the sources.Kind values).
	Source         string
	SAMAccountName string // AD only
	UPN            string
	NetBIOSDomain  string // AD only: the customer's domain for DOMAIN\name
	DisplayName    string
}

// categoryNames lists, per account source, the vault category / type names
// under which an existing entry may match.
var categoryNames = map[string][]string{
	"ad":    {"Active Directory"},
	"m365":  {"Office 365", "Microsoft 365", "Azure AD", "Azure Active Directory"},
	"local": {"Local Account"},
}

// CategoryNames returns the accepted category names for an account source;
// the first one is the name new entries are created with.
func CategoryNames(source string) []string { return categoryNames[source] }

// CategoryFor returns the category new entries of this source get.
func CategoryFor(source string) string {
	if n := categoryNames[source]; len(n) > 0 {
		return n[0]
	}
	return ""
}

func categoryAllowed(source, category string) bool {
	for _, n := range categoryNames[source] {
		if strings.EqualFold(strings.TrimSpace(category), n) {
			return true
		}
	}
	return false
}

// usernames returns the lower-cased names an entry's username may equal.
func (id Identity) usernames() []string {
	var out []string
	add := func(s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			return
		}
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	switch id.Source {
	case "m365":
		add(id.UPN)
		if at := strings.LastIndexByte(id.UPN, '@'); at > 0 {
			add(id.UPN[:at])
		}
	default:
		add(id.SAMAccountName)
		add(id.UPN)
		if id.NetBIOSDomain != "" && id.SAMAccountName != "" {
			add(id.NetBIOSDomain + `\` + id.SAMAccountName)
		}
	}
	return out
}

// MatchOutcome is the result of matching one account against an index.
type MatchOutcome string

// The outcomes of a match.
const (
	Matched           MatchOutcome = "match"
	NoMatch           MatchOutcome = "none"
	Ambiguous         MatchOutcome = "ambiguous"
	PossibleDuplicate MatchOutcome = "possible-duplicate" // same username, no category: a new entry will be created
)

// VaultMatch is the outcome of matching one account to the vault.
type VaultMatch struct {
	Outcome MatchOutcome
	// Entry is the matched entry (Matched only).
	Entry VaultEntry
	// Others are the candidates of an ambiguity, or the entries without a
	// category of a possible duplicate.
	Others []VaultEntry
	Reason string
}

// VaultIndex holds one customer's vault entries by lower-cased username so a
// match costs no request. It keeps the entries in one slice and finds them
// through a map of positions, so that an index of 100,000 entries costs
// little beyond the entries themselves. The zero value is an empty index.
type VaultIndex struct {
	entries    []VaultEntry
	byUsername chains
	categories map[string]string // one copy of each category name
}

// NewVaultIndex indexes entries. The index keeps the slice: the caller must
// not change it afterwards.
func NewVaultIndex(entries []VaultEntry) *VaultIndex {
	ix := &VaultIndex{entries: entries}
	ix.byUsername.grow(len(entries))
	for i := range ix.entries {
		ix.index(i)
	}
	return ix
}

// Add puts one entry into the index, e.g. one just created.
func (ix *VaultIndex) Add(e VaultEntry) {
	ix.entries = append(ix.entries, e)
	ix.index(len(ix.entries) - 1)
}

func (ix *VaultIndex) index(i int) {
	e := &ix.entries[i]
	if ix.categories == nil {
		ix.categories = map[string]string{}
	}
	if c, ok := ix.categories[e.Category]; ok {
		e.Category = c
	} else {
		ix.categories[e.Category] = e.Category
	}
	ix.byUsername.add(strings.ToLower(strings.TrimSpace(e.Username)), i)
}

// Len is the number of entries indexed.
func (ix *VaultIndex) Len() int { return len(ix.entries) }

// ByRef finds the entry with the given id: the one a technician chose.
// It scans the entries, as it is asked only for the few accounts a
// technician matched by hand.
func (ix *VaultIndex) ByRef(ref string) (VaultEntry, bool) {
	for _, e := range ix.entries {
		if e.Ref == ref {
			return e, true
		}
	}
	return VaultEntry{}, false
}

// Match applies the vault matching rule: an entry matches when its username
// equals one of the account's names (case-insensitive) and its category is
// one of the names allowed for the account's source.
func (ix *VaultIndex) Match(id Identity) VaultMatch {
	var hits, uncategorised []VaultEntry
	seen := map[string]bool{}
	for _, name := range id.usernames() {
		for _, i := range ix.byUsername.get(name) {
			e := ix.entries[i]
			if seen[e.Ref] {
				continue
			}
			seen[e.Ref] = true
			switch {
			case categoryAllowed(id.Source, e.Category):
				hits = append(hits, e)
			case strings.TrimSpace(e.Category) == "":
				uncategorised = append(uncategorised, e)
			}
		}
	}
	switch {
	case len(hits) == 1:
		return VaultMatch{Outcome: Matched, Entry: hits[0], Reason: fmt.Sprintf("username %q in category %q", hits[0].Username, hits[0].Category)}
	case len(hits) > 1:
		return VaultMatch{Outcome: Ambiguous, Others: hits, Reason: fmt.Sprintf("%d entries match (%s): a technician must choose", len(hits), refs(hits))}
	case len(uncategorised) > 0:
		return VaultMatch{Outcome: PossibleDuplicate, Others: uncategorised, Reason: fmt.Sprintf("entry %s has username %q but no category; set its category to %q to match it", refs(uncategorised), uncategorised[0].Username, CategoryFor(id.Source))}
	}
	return VaultMatch{Outcome: NoMatch, Reason: "no entry with this username in an allowed category"}
}

func refs(es []VaultEntry) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Ref
		if e.Name != "" {
			s[i] = fmt.Sprintf("%s %q", e.Ref, e.Name)
		}
	}
	return strings.Join(s, ", ")
}

// ContactMatch is the outcome of matching one account to the PSA.
type ContactMatch struct {
	Outcome MatchOutcome
	Contact Contact
	Others  []Contact
	Reason  string
}

// ContactIndex holds one customer company's PSA contacts, by email address
// and by name, as VaultIndex holds vault entries. The zero value is an
// empty index.
type ContactIndex struct {
	contacts []Contact
	byEmail  chains
	byName   chains
}

// NewContactIndex indexes contacts. The index keeps the slice: the caller
// must not change it afterwards.
func NewContactIndex(contacts []Contact) *ContactIndex {
	ix := &ContactIndex{contacts: contacts}
	ix.byEmail.grow(len(contacts))
	ix.byName.grow(len(contacts))
	for i := range ix.contacts {
		ix.index(i)
	}
	return ix
}

func nameKey(first, last string) string {
	f, l := strings.ToLower(strings.TrimSpace(first)), strings.ToLower(strings.TrimSpace(last))
	if f == "" || l == "" {
		return ""
	}
	return f + "\x00" + l
}

// Add puts one contact into the index.
func (ix *ContactIndex) Add(c Contact) {
	ix.contacts = append(ix.contacts, c)
	ix.index(len(ix.contacts) - 1)
}

func (ix *ContactIndex) index(i int) {
	c := &ix.contacts[i]
	if e := strings.ToLower(strings.TrimSpace(c.Email)); e != "" {
		ix.byEmail.add(e, i)
	}
	if k := nameKey(c.FirstName, c.LastName); k != "" {
		ix.byName.add(k, i)
	}
}

// Len is the number of contacts indexed.
func (ix *ContactIndex) Len() int { return len(ix.contacts) }

// ByRef finds the contact with the given id (see VaultIndex.ByRef).
func (ix *ContactIndex) ByRef(ref string) (Contact, bool) {
	for _, c := range ix.contacts {
		if c.Ref == ref {
			return c, true
		}
	}
	return Contact{}, false
}

// Match applies the PSA rule: by email address first; when no email
// matches, by first and last name; a single exact match counts and two or
// more are an ambiguity.
func (ix *ContactIndex) Match(first, last, email string) ContactMatch {
	one := func(at []int32, by string) (ContactMatch, bool) {
		cs := make([]Contact, len(at))
		for i, p := range at {
			cs[i] = ix.contacts[p]
		}
		switch len(cs) {
		case 0:
			return ContactMatch{}, false
		case 1:
			return ContactMatch{Outcome: Matched, Contact: cs[0], Reason: "same " + by}, true
		}
		ids := make([]string, len(cs))
		for i, c := range cs {
			ids[i] = c.Ref
		}
		return ContactMatch{Outcome: Ambiguous, Others: cs, Reason: fmt.Sprintf("%d contacts with the same %s (%s): a technician must choose", len(cs), by, strings.Join(ids, ", "))}, true
	}
	if e := strings.ToLower(strings.TrimSpace(email)); e != "" {
		if m, ok := one(ix.byEmail.get(e), "email address"); ok {
			return m
		}
	}
	if k := nameKey(first, last); k != "" {
		if m, ok := one(ix.byName.get(k), "first and last name"); ok {
			return m
		}
	}
	return ContactMatch{Outcome: NoMatch, Reason: "no contact with this email address or name"}
}

// chains maps keys to item positions, several per key, in insertion order:
// one map entry per key and four bytes per item, instead of a slice per key.
type chains struct {
	last map[string]int32 // the last position added under a key
	prev []int32          // per position, the one before under the same key; -1 for none
}

// grow makes room for n more positions.
func (c *chains) grow(n int) {
	if c.last == nil {
		c.last = make(map[string]int32, n)
	}
	c.prev = slices.Grow(c.prev, n)
}

// add files position i (the largest so far) under key.
func (c *chains) add(key string, i int) {
	if c.last == nil {
		c.last = map[string]int32{}
	}
	for len(c.prev) <= i {
		c.prev = append(c.prev, -1)
	}
	if p, ok := c.last[key]; ok {
		c.prev[i] = p
	}
	c.last[key] = int32(i)
}

// get returns the positions filed under key, oldest first.
func (c *chains) get(key string) []int32 {
	p, ok := c.last[key]
	if !ok {
		return nil
	}
	var at []int32
	for ; p >= 0; p = c.prev[p] {
		at = append(at, p)
	}
	slices.Reverse(at)
	return at
}

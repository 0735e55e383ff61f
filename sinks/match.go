package sinks

import (
	"fmt"
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
// match costs no request.
type VaultIndex struct {
	byUsername map[string][]VaultEntry
	n          int
}

// NewVaultIndex indexes entries.
func NewVaultIndex(entries []VaultEntry) *VaultIndex {
	ix := &VaultIndex{byUsername: make(map[string][]VaultEntry, len(entries))}
	for _, e := range entries {
		ix.Add(e)
	}
	return ix
}

// Add puts one entry into the index, e.g. one just created.
func (ix *VaultIndex) Add(e VaultEntry) {
	k := strings.ToLower(strings.TrimSpace(e.Username))
	ix.byUsername[k] = append(ix.byUsername[k], e)
	ix.n++
}

// Len is the number of entries indexed.
func (ix *VaultIndex) Len() int { return ix.n }

// Match applies the vault matching rule: an entry matches when its username
// equals one of the account's names (case-insensitive) and its category is
// one of the names allowed for the account's source.
func (ix *VaultIndex) Match(id Identity) VaultMatch {
	var hits, uncategorised []VaultEntry
	seen := map[string]bool{}
	for _, name := range id.usernames() {
		for _, e := range ix.byUsername[name] {
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

// ContactIndex holds one customer company's PSA contacts.
type ContactIndex struct {
	byEmail map[string][]Contact
	byName  map[string][]Contact
	n       int
}

// NewContactIndex indexes contacts.
func NewContactIndex(contacts []Contact) *ContactIndex {
	ix := &ContactIndex{byEmail: map[string][]Contact{}, byName: map[string][]Contact{}}
	for _, c := range contacts {
		ix.Add(c)
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
	if e := strings.ToLower(strings.TrimSpace(c.Email)); e != "" {
		ix.byEmail[e] = append(ix.byEmail[e], c)
	}
	if k := nameKey(c.FirstName, c.LastName); k != "" {
		ix.byName[k] = append(ix.byName[k], c)
	}
	ix.n++
}

// Len is the number of contacts indexed.
func (ix *ContactIndex) Len() int { return ix.n }

// Match applies the PSA rule: by email address first; when no email
// matches, by first and last name; a single exact match counts and two or
// more are an ambiguity.
func (ix *ContactIndex) Match(first, last, email string) ContactMatch {
	one := func(cs []Contact, by string) (ContactMatch, bool) {
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
		if m, ok := one(ix.byEmail[e], "email address"); ok {
			return m
		}
	}
	if k := nameKey(first, last); k != "" {
		if m, ok := one(ix.byName[k], "first and last name"); ok {
			return m
		}
	}
	return ContactMatch{Outcome: NoMatch, Reason: "no contact with this email address or name"}
}

// Package sources defines the directory account that autoimport reads from a
// customer's on-prem Active Directory or Microsoft 365 tenant, and the Source
// interface its readers implement. Readers live in sources/ad and sources/m365.
package sources

import (
	"context"
	"fmt"
	"iter"
)

// Kind names where an account comes from. Its values are also the vault
// categories' source names used by the sinks' matching rule.
type Kind string

// The kinds of import source.
const (
	KindAD    Kind = "ad"    // on-prem Active Directory over LDAP
	KindM365  Kind = "m365"  // Microsoft 365 / Entra ID over Microsoft Graph
	KindLocal Kind = "local" // machine-local accounts (not read today; their vault category exists)
)

// AccountType is the kind of account an import creates.
type AccountType string

// The two account types, spelled as in the tenant file and the CLI.
const (
	EndUser AccountType = "end-user"
	Admin   AccountType = "admin"
)

// Account is one user read from a directory, already classified.
//
// A reader yields every user it looked at: candidates have an empty
// SkipReason; users that are not candidates (disabled, guests, ...) carry the
// reason they were skipped so the run report can say why.
type Account struct {
	Source Kind
	// ID is the stable identity: the AD objectGUID in canonical form
	// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or the Graph object id.
	ID string
	// Username is the sAMAccountName (AD) or the userPrincipalName (M365).
	Username    string
	UPN         string
	DisplayName string
	GivenName   string
	Surname     string
	Email       string
	Enabled     bool
	// Domain is the customer's NetBIOS domain name (AD only), used for
	// DOMAIN\sAMAccountName matching.
	Domain string
	// DN is the distinguished name (AD only), for error messages.
	DN string

	// Type is end-user or admin; TypeReason says why, e.g.
	// "member of Domain Admins via Tier2 Ops" or "holds Global Administrator".
	Type       AccountType
	TypeReason string
	// SelectedBy lists the groups, OUs, built-in groups or roles that made
	// this account a candidate.
	SelectedBy []string

	// ImmutableID is the hybrid link key: for AD the base64 of the objectGUID
	// bytes, for M365 the user's onPremisesImmutableId (empty if cloud-only).
	ImmutableID string
	// OnPremisesSync is true for an M365 user synchronised from AD.
	OnPremisesSync bool
	// Licensed is true for an M365 user with at least one assigned licence.
	Licensed bool
	// Changed is the source's change marker (AD whenChanged/uSNChanged, Graph
	// delta round); it only ever serves to report, never to identify.
	Changed string

	// SkipReason is non-empty when the account is not a candidate:
	// "disabled", "guest", "computer account", ...
	SkipReason string
}

// Candidate reports whether the account may be imported.
func (a Account) Candidate() bool { return a.SkipReason == "" }

// Selection says which accounts of one customer's directory are candidates.
type Selection struct {
	// Groups: AD group DNs, or M365 group ids or display names. Members are
	// counted transitively through nested groups.
	Groups []string
	// OUs: AD organizational unit DNs, searched as subtrees.
	OUs []string
	// Builtin: AD built-in groups by name, e.g. "Domain Users". Membership of
	// Domain Users comes from primaryGroupID 513.
	Builtin []string
	// Roles: M365 directory role display names (administrator selection),
	// e.g. "Global Administrator".
	Roles []string
	// Admins asks for the transitive members of the privileged built-in AD
	// groups (identified by SID) as administrator candidates even when no
	// group, OU or built-in of the selection holds them.
	Admins bool
	// IncludeDisabled yields disabled accounts as candidates instead of
	// skipping them.
	IncludeDisabled bool
}

// Empty reports whether nothing is selected.
func (s Selection) Empty() bool {
	return len(s.Groups) == 0 && len(s.OUs) == 0 && len(s.Builtin) == 0 && len(s.Roles) == 0 && !s.Admins
}

// Source streams a customer's accounts for a selection. Memory stays
// proportional to one page of results, never to the directory.
//
// An error of type *EntryError concerns one directory entry: the stream goes
// on after it. Any other error ends the stream.
type Source interface {
	Accounts(ctx context.Context, sel Selection) iter.Seq2[Account, error]
}

// EntryError reports one malformed directory entry (missing sAMAccountName,
// invalid UTF-8, an undecodable objectGUID, ...). The entry is skipped; the
// read goes on.
type EntryError struct {
	Source Kind
	// Entry is the DN (AD) or object id (M365) of the broken entry.
	Entry  string
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%s entry %q skipped: %s", e.Source, e.Entry, e.Reason)
}

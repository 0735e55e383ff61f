package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
)

// The actions an account can get in a run.
const (
	ActionImport          = "import"
	ActionSkip            = "skip"
	ActionAlreadyImported = "already-imported"
	ActionAmbiguous       = "ambiguous"
	ActionError           = "error"
	ActionHeld            = "held"
)

// The operations on a sink.
const (
	OpMatch  = "match"
	OpCreate = "create"
	OpNone   = "none"
	OpSend   = "send"
)

// Candidate is a new account to plan for. It keeps only what planning and
// the ledger read of the source's account, so that the new accounts of a
// large directory are held compactly until they are planned.
type Candidate struct {
	Source                            sources.Kind
	ID, Username, UPN, DisplayName    string
	GivenName, Surname, Email, Domain string
	// ImmutableID is the hybrid link key (see sources.Account).
	ImmutableID string
	Type        AccountType
	TypeReason  string
	// Link is the account's Entra twin when it has one.
	Link *Link
}

// NewCandidate keeps what planning needs of a source account.
func NewCandidate(a sources.Account, link *Link) Candidate {
	return Candidate{Source: a.Source, ID: a.ID, Username: a.Username, UPN: a.UPN, DisplayName: a.DisplayName, GivenName: a.GivenName, Surname: a.Surname,
		Email: a.Email, Domain: a.Domain, ImmutableID: a.ImmutableID, Type: a.Type, TypeReason: a.TypeReason, Link: link}
}

// Link ties an AD account to the M365 user that is the same person.
type Link struct {
	M365ID   string `json:"m365_id"`
	UPN      string `json:"upn"`
	Kind     string `json:"kind"` // hard (immutable id) or soft (UPN, or username and display name)
	Licensed bool   `json:"licensed"`
}

// SinkStep is what happens in a vault or PSA for one account.
type SinkStep struct {
	Op          string `json:"op"` // match, create, none
	Integration string `json:"integration,omitempty"`
	Ref         string `json:"ref,omitempty"`
	// Name is the vault entry's name, when known.
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Warning flags a possible duplicate: an entry with the same username
	// but no category exists, and a new entry is created beside it.
	Warning string `json:"warning,omitempty"`
}

// EmailStep is the welcome email for one account.
type EmailStep struct {
	Op     string `json:"op"` // send, none
	Reason string `json:"reason,omitempty"`
	State  string `json:"state,omitempty"` // after apply: sent, pending (not accepted yet; sent next run), attempted (unconfirmed), failed
}

// Flags are the settings an imported account gets.
type Flags struct {
	SelfServe bool `json:"self_serve"`
	Rotation  bool `json:"rotation"`
	M365Sync  bool `json:"m365_sync"`
}

// AccountPlan is the decision for one account and, after apply, its result.
type AccountPlan struct {
	Source      string      `json:"source"`
	ID          string      `json:"id"`
	Username    string      `json:"username"`
	DisplayName string      `json:"display_name,omitempty"`
	Email       string      `json:"email,omitempty"`
	Type        AccountType `json:"account_type,omitempty"`
	Action      string      `json:"action"`
	Reason      string      `json:"reason,omitempty"`
	Vault       SinkStep    `json:"vault"`
	PSA         SinkStep    `json:"psa"`
	WelcomeMail EmailStep   `json:"welcome_email"`
	Flags       Flags       `json:"flags"`
	Link        *Link       `json:"link,omitempty"`

	// work is what applying the plan needs; only plans to import have it,
	// so the many report-only entries of a large directory stay small.
	work *planWork
	// deferred marks a plan a stopped pass left for the next run: nothing
	// was decided about the account.
	deferred bool
}

// planWork is what applying one plan needs beyond the report.
type planWork struct {
	account    *Candidate
	newEntry   sinks.NewVaultEntry
	newContact sinks.NewContact
}

// PlanInput is everything a plan depends on; Plan reads nothing else.
type PlanInput struct {
	Customer   Customer
	Options    map[AccountType]Resolved
	Candidates []*Candidate
	// VaultName and Vaults are, per account type, the vault used and its
	// index for the customer (nil when no index is needed or available).
	VaultName map[AccountType]string
	Vaults    map[AccountType]*sinks.VaultIndex
	PSAName   string
	Contacts  *sinks.ContactIndex
	// Mail is true when a mailer is configured.
	Mail bool
	// Choices are the technicians' matches, by "source:id": the vault
	// entry and PSA contact to use, or to create one where several fit.
	Choices map[string]AccountDecision
	// Entries are the entries a new account must not get: linked to an
	// imported account, or contested by several new ones (planentries.go).
	Entries *EntryUses
}

// Plan decides, as a pure function of its input, what to do for each new
// account: vault match or create or nothing, PSA match or create or
// nothing, welcome email or not, and the flags.
func Plan(in PlanInput) []AccountPlan {
	out := make([]AccountPlan, 0, len(in.Candidates))
	for _, c := range in.Candidates {
		out = append(out, planOne(in, c))
	}
	return out
}

func planOne(in PlanInput, c *Candidate) AccountPlan {
	a := c
	typ := a.Type
	p := AccountPlan{Source: string(a.Source), ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Email: a.Email, Type: typ, Link: c.Link,
		Vault: SinkStep{Op: OpNone}, PSA: SinkStep{Op: OpNone}, WelcomeMail: EmailStep{Op: OpNone}}
	opts := in.Options[typ]
	if opts.On(Paused) {
		p.Action, p.Reason = ActionSkip, fmt.Sprintf("%s imports are paused for this customer (%s)", typ, originOf(opts))
		return p
	}
	p.Action = ActionImport
	p.Reason = a.TypeReason
	p.work = &planWork{account: c}

	// Vault.
	if opts.On(VaultMatch) {
		ix := in.Vaults[typ]
		name := in.VaultName[typ]
		p.Vault.Integration = name
		if ix == nil {
			p.Action, p.Reason = ActionError, name+" index was not read; nothing is done for this account"
			return p
		}
		ch := in.Choices[p.Source+":"+p.ID]
		m := ix.Match(identityOf(a))
		if ch.VaultRef != "" {
			m = chosenEntry(ix, ch)
		} else if m.Outcome == sinks.Ambiguous && ch.VaultCreate {
			m = sinks.VaultMatch{Outcome: sinks.NoMatch, Reason: m.Reason + "; " + ch.Actor + " chose to create a new entry"}
		}
		if m.Outcome == sinks.Matched {
			if why := in.Entries.conflict(name, m.Entry.Ref, p.Source+":"+p.ID); why != "" {
				m = sinks.VaultMatch{Outcome: sinks.Ambiguous, Reason: why}
			}
		}
		switch m.Outcome {
		case sinks.Matched:
			p.Vault.Op, p.Vault.Ref, p.Vault.Name, p.Vault.Reason = OpMatch, m.Entry.Ref, m.Entry.Name, m.Reason
		case sinks.Ambiguous:
			p.Action, p.Reason = ActionAmbiguous, name+": "+m.Reason
			p.Vault.Reason = m.Reason
			return p
		default:
			if opts.On(VaultCreate) || ch.VaultCreate {
				cat := sinks.CategoryFor(string(a.Source))
				p.Vault.Op, p.Vault.Name, p.Vault.Reason = OpCreate, entryName(a, cat), fmt.Sprintf("no matching entry; create %q in category %q", entryName(a, cat), cat)
				p.work.newEntry = sinks.NewVaultEntry{Name: entryName(a, cat), Username: vaultUsername(a), Category: cat,
					Notes: fmt.Sprintf("Imported by autoimport for customer %s (%s).", in.Customer.ID, a.TypeReason)}
			} else {
				p.Vault.Reason = "no matching entry, and vault_create is off"
			}
			if m.Outcome == sinks.PossibleDuplicate && !ch.VaultCreate {
				p.Vault.Warning = "possible duplicate: " + m.Reason
			}
		}
	} else {
		p.Vault.Reason = "vault_match is off or unavailable: " + settingWhy(opts, VaultMatch)
	}

	// PSA (end users only).
	if typ == EndUser {
		first, last := contactName(a)
		if opts.On(PSAMatch) {
			p.PSA.Integration = in.PSAName
			if in.Contacts == nil {
				p.Action, p.Reason = ActionError, in.PSAName+" contacts were not read; nothing is done for this account"
				return p
			}
			ch := in.Choices[p.Source+":"+p.ID]
			m := in.Contacts.Match(first, last, a.Email)
			if ch.PSARef != "" {
				m = chosenContact(in.Contacts, ch)
			} else if m.Outcome == sinks.Ambiguous && ch.PSACreate {
				m = sinks.ContactMatch{Outcome: sinks.NoMatch}
			}
			switch m.Outcome {
			case sinks.Matched:
				p.PSA.Op, p.PSA.Ref, p.PSA.Reason = OpMatch, m.Contact.Ref, m.Reason
			case sinks.Ambiguous:
				p.Action, p.Reason = ActionAmbiguous, in.PSAName+": "+m.Reason
				p.PSA.Reason = m.Reason
				p.Vault = SinkStep{Op: OpNone, Integration: p.Vault.Integration, Reason: "not done: the account is ambiguous in the PSA"}
				return p
			default:
				switch {
				case !opts.On(PSACreate) && !ch.PSACreate:
					p.PSA.Reason = "no matching contact, and psa_create is off"
				case first == "" || last == "":
					p.PSA.Reason = "no matching contact, and the account has no first and last name to create one"
				default:
					p.PSA.Op, p.PSA.Reason = OpCreate, "no contact with this email address or name; create one"
					p.work.newContact = sinks.NewContact{FirstName: first, LastName: last, Email: a.Email}
				}
			}
		} else {
			p.PSA.Reason = "psa_match is off or unavailable: " + settingWhy(opts, PSAMatch)
		}

		switch {
		case !opts.On(WelcomeEmail):
			p.WelcomeMail.Reason = "welcome_email is off or unavailable: " + settingWhy(opts, WelcomeEmail)
		case !in.Mail:
			p.WelcomeMail.Reason = "no mailer is configured"
		case strings.TrimSpace(a.Email) == "":
			p.WelcomeMail.Reason = "the account has no email address"
		default:
			p.WelcomeMail.Op = OpSend
		}
		p.Flags.SelfServe = opts.On(SelfServe)
		if opts.On(M365Sync) && c.Link != nil {
			if c.Link.Licensed {
				p.Flags.M365Sync = true
			} else {
				p.Reason = strings.TrimSpace(p.Reason + "; Entra twin " + c.Link.UPN + " is unlicensed: not linked")
			}
		}
	} else {
		p.PSA.Reason = "administrator accounts are not added to the PSA"
		p.WelcomeMail.Reason = "administrator accounts get no welcome email"
		p.Flags.Rotation = opts.On(Rotation)
	}
	return p
}

// chosenEntry is the vault entry a technician chose, as a match; when it
// is no longer in the vault, the account is ambiguous again.
func chosenEntry(ix *sinks.VaultIndex, ch AccountDecision) sinks.VaultMatch {
	if e, ok := ix.ByRef(ch.VaultRef); ok {
		return sinks.VaultMatch{Outcome: sinks.Matched, Entry: e, Reason: fmt.Sprintf("entry %s chosen by %s on %s", e.Ref, ch.Actor, ch.At.Format(time.DateOnly))}
	}
	return sinks.VaultMatch{Outcome: sinks.Ambiguous, Reason: fmt.Sprintf("entry %s, chosen by %s on %s, no longer exists: choose again (autoimport accounts match)", ch.VaultRef, ch.Actor, ch.At.Format(time.DateOnly))}
}

// chosenContact is chosenEntry for the PSA.
func chosenContact(ix *sinks.ContactIndex, ch AccountDecision) sinks.ContactMatch {
	if c, ok := ix.ByRef(ch.PSARef); ok {
		return sinks.ContactMatch{Outcome: sinks.Matched, Contact: c, Reason: fmt.Sprintf("contact %s chosen by %s on %s", c.Ref, ch.Actor, ch.At.Format(time.DateOnly))}
	}
	return sinks.ContactMatch{Outcome: sinks.Ambiguous, Reason: fmt.Sprintf("contact %s, chosen by %s on %s, no longer exists: choose again (autoimport accounts match)", ch.PSARef, ch.Actor, ch.At.Format(time.DateOnly))}
}

func originOf(r Resolved) string {
	if r.Policy != "" {
		return string(r.Origin) + " " + r.Policy
	}
	return string(r.Origin)
}

func settingWhy(r Resolved, k Option) string {
	s := r.Setting(k)
	if !s.Available {
		return s.Reason
	}
	return "set to false by " + originOf(r)
}

// identityOf is what the vault matching rule knows of an account.
func identityOf(a *Candidate) sinks.Identity {
	id := sinks.Identity{Source: string(a.Source), UPN: a.UPN, NetBIOSDomain: a.Domain, DisplayName: a.DisplayName}
	if a.Source == sources.KindAD {
		id.SAMAccountName = a.Username
	} else if id.UPN == "" {
		id.UPN = a.Username
	}
	return id
}

// vaultUsername is the username a new entry gets: the sAMAccountName for
// AD, the UPN for M365.
func vaultUsername(a *Candidate) string {
	if a.Source == sources.KindM365 && a.UPN != "" {
		return a.UPN
	}
	return a.Username
}

func entryName(a *Candidate, category string) string {
	n := strings.TrimSpace(a.DisplayName)
	if n == "" {
		n = a.Username
	}
	return fmt.Sprintf("%s (%s)", n, category)
}

// contactName is the account's first and last name, from the directory's
// given name and surname, else from a two-part display name.
func contactName(a *Candidate) (string, string) {
	first, last := strings.TrimSpace(a.GivenName), strings.TrimSpace(a.Surname)
	if first != "" && last != "" {
		return first, last
	}
	if f := strings.Fields(a.DisplayName); len(f) == 2 {
		return f[0], f[1]
	}
	return first, last
}

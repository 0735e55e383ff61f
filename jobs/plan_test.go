package jobs

import (
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
)

func resolvedWith(typ AccountType, v Values) Resolved {
	c := mappedCustomer
	c.Policies = map[AccountType]string{typ: NoPolicy}
	c.Options = map[AccountType]Values{typ: v}
	return Resolve(tenantWith(allIntegrations, c), c, typ)
}

func adUser(name string, typ AccountType) sources.Account {
	return sources.Account{Source: sources.KindAD, ID: "id-" + name, Username: name, UPN: name + "@acme.example", DisplayName: "Jane " + name,
		GivenName: "Jane", Surname: name, Email: name + "@acme.example", Domain: "ACME", Type: typ, TypeReason: "member of Staff"}
}

func TestPlan(t *testing.T) {
	allOn := Values{VaultMatch: true, VaultCreate: true, PSAMatch: true, PSACreate: true, WelcomeEmail: true, SelfServe: true, M365Sync: true}
	vault := func(es ...sinks.VaultEntry) *sinks.VaultIndex { return sinks.NewVaultIndex(es) }
	contacts := func(cs ...sinks.Contact) *sinks.ContactIndex { return sinks.NewContactIndex(cs) }
	noEmail := adUser("nomail", EndUser)
	noEmail.Email = ""
	noName := adUser("noname", EndUser)
	noName.GivenName, noName.Surname, noName.DisplayName = "", "", "noname"
	cases := []struct {
		name     string
		typ      AccountType
		opts     Values
		acct     sources.Account
		link     *Link
		entries  *sinks.VaultIndex
		contacts *sinks.ContactIndex
		action   string
		vault    string
		psa      string
		email    string
		flags    Flags
		warning  string
	}{
		{"all new: create everywhere", EndUser, allOn, adUser("jane", EndUser), nil, vault(), contacts(), ActionImport, OpCreate, OpCreate, OpSend, Flags{SelfServe: true}, ""},
		{"match by sAMAccountName", EndUser, allOn, adUser("jane", EndUser), nil, vault(sinks.VaultEntry{Ref: "1", Username: "JANE", Category: "Active Directory"}), contacts(), ActionImport, OpMatch, OpCreate, OpSend, Flags{SelfServe: true}, ""},
		{"match by DOMAIN\\name", EndUser, allOn, adUser("jane", EndUser), nil, vault(sinks.VaultEntry{Ref: "1", Username: `acme\jane`, Category: "Active Directory"}), contacts(), ActionImport, OpMatch, OpCreate, OpSend, Flags{SelfServe: true}, ""},
		{"wrong category is no match", EndUser, allOn, adUser("jane", EndUser), nil, vault(sinks.VaultEntry{Ref: "1", Username: "jane", Category: "Office 365"}), contacts(), ActionImport, OpCreate, OpCreate, OpSend, Flags{SelfServe: true}, ""},
		{"no category: create and warn", EndUser, allOn, adUser("jane", EndUser), nil, vault(sinks.VaultEntry{Ref: "9", Username: "jane"}), contacts(), ActionImport, OpCreate, OpCreate, OpSend, Flags{SelfServe: true}, "possible duplicate"},
		{"two vault candidates: ambiguous", EndUser, allOn, adUser("jane", EndUser), nil, vault(sinks.VaultEntry{Ref: "1", Username: "jane", Category: "Active Directory"}, sinks.VaultEntry{Ref: "2", Username: "jane@acme.example", Category: "Active Directory"}), contacts(), ActionAmbiguous, OpNone, OpNone, OpNone, Flags{}, ""},
		{"vault create off", EndUser, Values{VaultMatch: true, SelfServe: true}, adUser("jane", EndUser), nil, vault(), nil, ActionImport, OpNone, OpNone, OpNone, Flags{SelfServe: true}, ""},
		{"PSA match by email", EndUser, allOn, adUser("jane", EndUser), nil, vault(), contacts(sinks.Contact{Ref: "c1", FirstName: "X", LastName: "Y", Email: "JANE@acme.example"}), ActionImport, OpCreate, OpMatch, OpSend, Flags{SelfServe: true}, ""},
		{"PSA match by name", EndUser, allOn, adUser("jane", EndUser), nil, vault(), contacts(sinks.Contact{Ref: "c1", FirstName: "jane", LastName: "JANE"}), ActionImport, OpCreate, OpMatch, OpSend, Flags{SelfServe: true}, ""},
		{"PSA two by name: ambiguous, nothing created", EndUser, allOn, adUser("jane", EndUser), nil, vault(), contacts(sinks.Contact{Ref: "c1", FirstName: "Jane", LastName: "jane"}, sinks.Contact{Ref: "c2", FirstName: "Jane", LastName: "jane"}), ActionAmbiguous, OpNone, OpNone, OpNone, Flags{}, ""},
		{"PSA create off", EndUser, Values{PSAMatch: true, SelfServe: true}, adUser("jane", EndUser), nil, nil, contacts(), ActionImport, OpNone, OpNone, OpNone, Flags{SelfServe: true}, ""},
		{"no name: no PSA create", EndUser, allOn, noName, nil, vault(), contacts(), ActionImport, OpCreate, OpNone, OpSend, Flags{SelfServe: true}, ""},
		{"no email: no welcome", EndUser, allOn, noEmail, nil, vault(), contacts(), ActionImport, OpCreate, OpCreate, OpNone, Flags{SelfServe: true}, ""},
		{"paused", EndUser, Values{Paused: true, VaultMatch: true}, adUser("jane", EndUser), nil, vault(), contacts(), ActionSkip, OpNone, OpNone, OpNone, Flags{}, ""},
		{"m365_sync with licensed twin", EndUser, allOn, adUser("jane", EndUser), &Link{M365ID: "m1", Licensed: true}, vault(), contacts(), ActionImport, OpCreate, OpCreate, OpSend, Flags{SelfServe: true, M365Sync: true}, ""},
		{"m365_sync with unlicensed twin", EndUser, allOn, adUser("jane", EndUser), &Link{M365ID: "m1", UPN: "jane@acme.example"}, vault(), contacts(), ActionImport, OpCreate, OpCreate, OpSend, Flags{SelfServe: true}, ""},
		{"self_serve off", EndUser, Values{SelfServe: false}, adUser("jane", EndUser), nil, nil, nil, ActionImport, OpNone, OpNone, OpNone, Flags{}, ""},
		{"admin: vault, rotation, no PSA or email", Admin, Values{VaultMatch: true, VaultCreate: true, Rotation: true}, adUser("adm", Admin), nil, vault(), contacts(), ActionImport, OpCreate, OpNone, OpNone, Flags{Rotation: true}, ""},
		{"admin paused", Admin, Values{Paused: true}, adUser("adm", Admin), nil, vault(), nil, ActionSkip, OpNone, OpNone, OpNone, Flags{}, ""},
		{"index missing is an error, nothing done", EndUser, allOn, adUser("jane", EndUser), nil, nil, contacts(), ActionError, OpNone, OpNone, OpNone, Flags{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := PlanInput{Customer: mappedCustomer, Options: map[AccountType]Resolved{tc.typ: resolvedWith(tc.typ, tc.opts)},
				Candidates: []*Candidate{new(NewCandidate(tc.acct, tc.link))}, VaultName: map[AccountType]string{tc.typ: "IT Glue"},
				Vaults: map[AccountType]*sinks.VaultIndex{tc.typ: tc.entries}, PSAName: "ConnectWise PSA", Contacts: tc.contacts, Mail: true}
			ps := Plan(in)
			if len(ps) != 1 {
				t.Fatalf("%d plans", len(ps))
			}
			p := ps[0]
			if p.Action != tc.action || p.Vault.Op != tc.vault || p.PSA.Op != tc.psa || p.WelcomeMail.Op != tc.email || p.Flags != tc.flags {
				t.Fatalf("got action=%s vault=%s psa=%s email=%s flags=%+v (reason %q / %q / %q)\nwant %s %s %s %s %+v",
					p.Action, p.Vault.Op, p.PSA.Op, p.WelcomeMail.Op, p.Flags, p.Reason, p.Vault.Reason, p.PSA.Reason, tc.action, tc.vault, tc.psa, tc.email, tc.flags)
			}
			if !strings.Contains(p.Vault.Warning, tc.warning) || (tc.warning == "" && p.Vault.Warning != "") {
				t.Fatalf("warning %q, want %q", p.Vault.Warning, tc.warning)
			}
			if p.Action != ActionImport && p.Reason == "" {
				t.Fatal("a decision other than import must say why")
			}
			if p.Vault.Op == OpCreate && (p.work.newEntry.Category != "Active Directory" || p.work.newEntry.Username != tc.acct.Username || !strings.HasSuffix(p.work.newEntry.Name, "(Active Directory)")) {
				t.Fatalf("new entry %+v", p.work.newEntry)
			}
			// Plan is pure: the same input gives the same plan.
			if again := Plan(in)[0]; again.Action != p.Action || again.Vault != p.Vault || again.PSA != p.PSA {
				t.Fatal("Plan is not deterministic")
			}
		})
	}
}

func TestPlanM365AccountUsesItsUPN(t *testing.T) {
	a := sources.Account{Source: sources.KindM365, ID: "m1", Username: "jane@acme.example", UPN: "jane@acme.example", DisplayName: "Jane Doe", Type: EndUser}
	for _, tc := range []struct {
		entry sinks.VaultEntry
		op    string
	}{
		{sinks.VaultEntry{Ref: "1", Username: "jane", Category: "Microsoft 365"}, OpMatch},
		{sinks.VaultEntry{Ref: "1", Username: "JANE@acme.example", Category: "Azure AD"}, OpMatch},
		{sinks.VaultEntry{Ref: "1", Username: "jane", Category: "Active Directory"}, OpCreate},
	} {
		in := PlanInput{Options: map[AccountType]Resolved{EndUser: resolvedWith(EndUser, Values{VaultMatch: true, VaultCreate: true})},
			Candidates: []*Candidate{new(NewCandidate(a, nil))}, VaultName: map[AccountType]string{EndUser: "Hudu"}, Vaults: map[AccountType]*sinks.VaultIndex{EndUser: sinks.NewVaultIndex([]sinks.VaultEntry{tc.entry})}}
		p := Plan(in)[0]
		if p.Vault.Op != tc.op {
			t.Errorf("entry %+v: %s, want %s", tc.entry, p.Vault.Op, tc.op)
		}
		if p.Vault.Op == OpCreate && (p.work.newEntry.Category != "Office 365" || p.work.newEntry.Username != "jane@acme.example") {
			t.Errorf("new M365 entry %+v", p.work.newEntry)
		}
	}
}

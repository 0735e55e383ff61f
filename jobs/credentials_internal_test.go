package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
)

// stateOnly is a StoreReader holding per-customer state only.
type stateOnly struct {
	StoreReader
	state map[string]string
	err   error
}

func (s stateOnly) State(_ context.Context, customer, name string) (string, error) {
	return s.state[customer+"/"+name], s.err
}

// The accounts of customer acme: the administrator, another one whose
// display name is the CN of the DN form, a namesake in M365, and others.
var (
	adAdministrator = credentialAccount{source: "ad", id: "6f1d0c2a-0000-4000-8000-000000000001", username: "Administrator", upn: "", displayName: "Administrator"}
	adSvc           = credentialAccount{source: "ad", id: "6f1d0c2a-0000-4000-8000-000000000002", username: "svc-import", upn: "svc-import@corp.example.test", displayName: "Import Service"}
	adJane          = credentialAccount{source: "ad", id: "6f1d0c2a-0000-4000-8000-000000000003", username: "jane", upn: "jane@corp.example.test", displayName: "Jane Doe", email: "jane@corp.example.test"}
	m365Svc         = credentialAccount{source: "m365", id: "0b9e", username: "svc-import@corp.example.test", upn: "svc-import@corp.example.test"}
	m365Admin       = credentialAccount{source: "m365", id: "0b9f", username: "Administrator@corp.example.test", upn: "Administrator@corp.example.test"}
)

func tenantBindingAs(bindDN string) (*Tenant, Customer) {
	c := Customer{ID: "acme", Sources: CustomerSources{AD: &ADSource{URL: "ldaps://dc", BindDN: bindDN, BaseDN: "DC=corp,DC=example,DC=test", Domain: "CORP"}}}
	return &Tenant{Customers: []Customer{c}}, c
}

// Before a run has resolved bind_dn, the account is known by the names
// bind_dn holds, whatever its form.
func TestBindAccountByTheFormsOfBindDN(t *testing.T) {
	cases := []struct {
		bindDN string
		is     []credentialAccount
	}{
		{"CN=Administrator,CN=Users,DC=corp,DC=example,DC=test", []credentialAccount{adAdministrator}},
		{"cn=import service,ou=Service Accounts,dc=corp,dc=example,dc=test", []credentialAccount{adSvc}}, // the CN is the display name
		{`CN=Smith\, John,OU=x,DC=corp`, nil},
		{"Administrator@corp.example.test", []credentialAccount{adAdministrator, m365Admin}}, // implicit UPN, and its synced twin
		{"ADMINISTRATOR@CORP.EXAMPLE.TEST", []credentialAccount{adAdministrator, m365Admin}},
		{"Administrator@elsewhere.example", nil}, // another domain's UPN suffix: not an implicit UPN of this one
		{"svc-import@corp.example.test", []credentialAccount{adSvc, m365Svc}},
		{`CORP\svc-import`, []credentialAccount{adSvc}},
		{`corp\Administrator`, []credentialAccount{adAdministrator}},
		{`OTHER\Administrator`, nil}, // an account of another domain
		{"svc-import", []credentialAccount{adSvc}},
		{"jane.doe", nil},
	}
	all := []credentialAccount{adAdministrator, adSvc, adJane, m365Svc, m365Admin}
	for _, tc := range cases {
		tn, c := tenantBindingAs(tc.bindDN)
		u := loadCredentialUses(context.Background(), stateOnly{}, tn, c, nil)
		for _, a := range all {
			want := ""
			for _, w := range tc.is {
				if w == a {
					want = ReasonBindAccount
				}
			}
			if got := u.use(a); got != want {
				t.Errorf("bind_dn %q, account %s %s: %q, want %q", tc.bindDN, a.source, a.username, got, want)
			}
		}
	}
}

// Once a run has resolved bind_dn to an objectGUID, that is the bind
// account, and no other account that shares a name; a record made under
// another bind_dn is not used.
func TestBindAccountByTheObjectGUIDARunRecorded(t *testing.T) {
	const dn = "CN=Administrator,CN=Users,DC=corp,DC=example,DC=test"
	rec := `{"bind_dn":"` + dn + `","object_guid":"` + adSvc.id + `","upn":"svc-import@corp.example.test"}`
	store := stateOnly{state: map[string]string{"acme/" + stateBindAccount: rec}}
	tn, c := tenantBindingAs(dn)
	u := loadCredentialUses(context.Background(), store, tn, c, nil)
	for a, want := range map[credentialAccount]string{adSvc: ReasonBindAccount, m365Svc: ReasonBindAccount, adAdministrator: "", m365Admin: "", adJane: ""} {
		if got := u.use(a); got != want {
			t.Errorf("recorded GUID, account %s %s: %q, want %q", a.source, a.username, got, want)
		}
	}
	// bind_dn changed since: the names of the new one count, not the record.
	tn, c = tenantBindingAs(`CORP\jane`)
	u = loadCredentialUses(context.Background(), store, tn, c, nil)
	if u.use(adSvc) != "" || u.use(adJane) != ReasonBindAccount {
		t.Errorf("a record of another bind_dn was used: svc %q, jane %q", u.use(adSvc), u.use(adJane))
	}
	// The state cannot be read: no account is taken for one autoimport
	// may rotate.
	u = loadCredentialUses(context.Background(), stateOnly{err: errors.New("database is locked")}, tn, c, nil)
	if got := u.use(adAdministrator); !strings.Contains(got, "cannot tell") || !strings.Contains(got, "database is locked") {
		t.Errorf("unreadable state: %q", got)
	}
}

// The SMTP relay's and Autotask's user names, resolved as a run resolves
// them, name accounts autoimport signs in as too.
func TestCredentialsOfTheTenantFile(t *testing.T) {
	key, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	t.Setenv("TEST_SMTP_USER", "Jane@corp.example.test")
	tn, c := tenantBindingAs("CN=svc-import,CN=Users,DC=corp,DC=example,DC=test")
	tn.Integrations.SMTP = &SMTP{Host: "smtp", Port: 587, Username: "env:TEST_SMTP_USER"}
	tn.Integrations.Autotask = &Autotask{Username: key.SealRef("svc-import@corp.example.test")}
	u := loadCredentialUses(context.Background(), stateOnly{}, tn, c, &secret.Resolver{Key: key})
	if got := u.use(adJane); !strings.Contains(got, "SMTP relay") {
		t.Errorf("SMTP user: %q", got)
	}
	if got := u.use(m365Svc); !strings.Contains(got, "Autotask") {
		t.Errorf("Autotask user: %q", got)
	}
	if got := u.use(adAdministrator); got != "" {
		t.Errorf("administrator: %q", got)
	}
	// A reference this process cannot resolve names no account.
	u = loadCredentialUses(context.Background(), stateOnly{}, tn, c, nil)
	if got := u.use(m365Svc); got != "" {
		t.Errorf("a sealed user name opened without the key: %q", got)
	}
}

// bind_dn comes from a tenant file: any string is told apart without a
// panic, and a bare name always names the account of that sAMAccountName.
func FuzzBindAccountNames(f *testing.F) {
	for _, s := range []string{"CN=Administrator,CN=Users,DC=corp", `CN=a\,b,DC=x`, "svc@corp.example", `CORP\svc`, "svc", "=", `\`, "@", "CN=,", "cn=\x00"} {
		f.Add(s, "svc")
	}
	f.Fuzz(func(t *testing.T, bindDN, username string) {
		tn, c := tenantBindingAs(bindDN)
		u := loadCredentialUses(context.Background(), stateOnly{}, tn, c, nil)
		a := credentialAccount{source: "ad", id: "1", username: username, upn: username, displayName: username}
		got := u.use(a)
		name := strings.TrimSpace(bindDN)
		if name != "" && !strings.ContainsAny(name, `=\@`) && strings.EqualFold(name, username) && got != ReasonBindAccount {
			t.Fatalf("bind_dn %q does not name the account %q: %q", bindDN, username, got)
		}
	})
}

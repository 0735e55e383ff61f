package connect_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/sambatest"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/sirupsen/logrus"
)

// The wiring end to end against a real Active Directory: Samba's AD DC,
// which internal/sambatest sets up (shared with the sources/ad suite) or
// finds through AUTOIMPORT_TEST_SAMBA_*. Under CI these tests fail when
// Samba cannot be had; elsewhere they skip, saying why.

func TestMain(m *testing.M) { os.Exit(sambatest.Run(m)) }

// binds reports whether dn binds to the DC with pw, failing the test when
// the DC cannot tell.
func binds(t *testing.T, f sambatest.Facts, dn, pw string) bool {
	t.Helper()
	ok, err := sambatest.Binds(f, dn, pw)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The whole rotation against a real Active Directory: an administrator is
// imported from Samba with an IT Glue entry (the fake), rotated by the
// rotation job, and the password read back from the vault binds while the
// old one no longer does.
func TestSambaRotationWritesTheBindingPasswordToTheVault(t *testing.T) {
	f := sambatest.Need(t)
	admin := sambatest.AdminConn(t, f)
	u := sambatest.NewRotationUser(t, f, admin)

	itg := itgluetest.NewServer(itgluetest.Options{})
	t.Cleanup(itg.Close)
	itg.AddOrganization(100, "Corp")
	t.Setenv("SAMBA_TEST_BIND_PASSWORD", f.Password)
	t.Setenv("SAMBA_TEST_ITGLUE_KEY", itg.APIKey)
	y := fmt.Sprintf(`
integrations:
  itglue: {url: %q, api_key: env:SAMBA_TEST_ITGLUE_KEY}
policies:
  - name: Rotated admins
    type: admin
    default: true
    options: {vault_match: true, vault_create: true, rotation: true}
customers:
  - id: corp
    name: Corp
    vault: {itglue_organization_id: "100"}
    sources:
      ad:
        url: %q
        ca_file: %q
        bind_dn: %q
        bind_password: env:SAMBA_TEST_BIND_PASSWORD
        base_dn: %q
        select: {ous: [%q]}
`, itg.URL, f.URL, f.CA, f.BindDN, f.BaseDN, sambatest.RotationOU+","+f.BaseDN)
	tn, err := jobs.ParseTenantFile("samba.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.SQLite(t)
	ctx := context.Background()
	if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, tn); err != nil {
		t.Fatal(err)
	}
	key, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	r := &jobs.Runner{Store: s, Connector: &connect.Connector{Key: key, TechVault: s, Log: log}, Log: log, Key: key, Concurrency: 1,
		Surge: jobs.SurgeThreshold{Max: 1000, Percent: 100}}
	rep, err := r.Run(ctx, jobs.RunOptions{AllowSurge: true})
	if err != nil || rep.Status != jobs.StatusOK {
		t.Fatalf("import: %v %+v", err, rep)
	}
	var ref string
	for a, err := range s.ImportedAccounts(ctx, "corp") {
		if err != nil {
			t.Fatal(err)
		}
		if a.Username == u.Sam {
			ref = a.VaultRef
		}
	}
	if ref == "" {
		t.Fatalf("%s was not imported with a vault entry", u.Sam)
	}
	// Only this test's administrator: the shared domain's others keep theirs.
	run, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"corp"}, Account: u.Sam, Now: true})
	if err != nil || run.Outcomes[jobs.OutcomeRotated] != 1 {
		t.Fatalf("rotation: %v %+v", err, run)
	}
	id, _ := strconv.Atoi(ref)
	entry, ok := itg.Password(id)
	if !ok || entry.Value == "" || entry.Value == u.Password {
		t.Fatalf("IT Glue entry %s: %+v", ref, entry)
	}
	if !binds(t, f, u.DN, entry.Value) {
		t.Fatal("the password read back from the vault does not bind")
	}
	if binds(t, f, u.DN, u.Password) {
		t.Fatal("the old password still binds")
	}
}

// autoimport binds to Samba as Administrator@corp.example.test, the
// domain's Administrator, who has no userPrincipalName (it binds by its
// implicit UPN) and is imported as an administrator with rotation on. A
// rotate --now of the customer leaves Administrator alone, saying why,
// rotates the other administrator of the same pass, and a later import
// still binds.
func TestSambaRotationNeverRotatesTheBindAccount(t *testing.T) {
	f := sambatest.Need(t)
	if !strings.EqualFold(f.BindDN, "Administrator@corp.example.test") {
		t.Skipf("the Samba DC is reached as %q, not as Administrator@corp.example.test", f.BindDN)
	}
	admin := sambatest.AdminConn(t, f)
	u := sambatest.NewRotationUser(t, f, admin)
	key, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	guardAdministrator(t, f, admin)

	t.Setenv("SAMBA_TEST_BIND_PASSWORD", f.Password)
	y := fmt.Sprintf(`
integrations:
  techvault: {enabled: true}
policies:
  - name: Rotated admins
    type: admin
    default: true
    options: {vault_match: true, vault_create: true, rotation: true}
customers:
  - id: corp
    name: Corp
    sources:
      ad:
        url: %q
        ca_file: %q
        bind_dn: Administrator@corp.example.test
        bind_password: env:SAMBA_TEST_BIND_PASSWORD
        base_dn: %q
        select: {ous: [%q]}
`, f.URL, f.CA, f.BaseDN, sambatest.RotationOU+","+f.BaseDN)
	tn, err := jobs.ParseTenantFile("samba.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.SQLite(t)
	ctx := context.Background()
	if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, tn); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	conn := &connect.Connector{Key: key, TechVault: s, Log: log}
	r := &jobs.Runner{Store: s, Connector: conn, Log: log, Key: key, Concurrency: 1, Surge: jobs.SurgeThreshold{Max: 1000, Percent: 100}}
	if rep, err := r.Run(ctx, jobs.RunOptions{AllowSurge: true}); err != nil || rep.Status != jobs.StatusOK {
		t.Fatalf("import: %v %+v", err, rep)
	}
	acc := &jobs.Accounts{Store: s, Connector: conn, TechVault: conn.TechVaultReader(), Actor: "test"}
	rows, err := acc.List(ctx, "corp", jobs.AccountFilter{Type: jobs.Admin})
	if err != nil {
		t.Fatal(err)
	}
	// Only Administrator and this test's administrator rotate: the shared
	// domain's other administrators (other tests' among them) keep their
	// passwords.
	var others []string
	var administrator *jobs.AccountRow
	for i, row := range rows {
		switch {
		case strings.EqualFold(row.Username, "Administrator"):
			administrator = &rows[i]
		case row.Username != u.Sam:
			others = append(others, row.Subject())
		}
	}
	if administrator == nil || administrator.State != jobs.StateImported {
		t.Fatalf("Administrator was not imported as an administrator: %+v", rows)
	}
	if administrator.RotationBlocked != jobs.ReasonBindAccount || administrator.Flags.Rotation {
		t.Fatalf("Administrator is not shown with rotation off and why: %+v", administrator)
	}
	off := false
	if len(others) > 0 {
		if _, err := acc.SetFlags(ctx, "corp", jobs.Selection{Accounts: others}, jobs.FlagSettings{Rotation: &off}, false); err != nil {
			t.Fatal(err)
		}
	}

	run, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"corp"}, Now: true})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]jobs.AccountRotation{}
	for _, a := range run.Customers[0].Accounts {
		byName[a.Username] = a
	}
	if a := byName["Administrator"]; a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) {
		t.Fatalf("Administrator: %+v", a)
	}
	if a := byName[u.Sam]; a.Outcome != jobs.OutcomeRotated {
		t.Fatalf("%s, rotated in the same pass: %+v", u.Sam, a)
	}
	if !binds(t, f, f.BindDN, f.Password) {
		t.Fatal("autoimport can no longer bind")
	}
	p, err := acc.RevealVaultPassword(ctx, "corp", u.Sam)
	if err != nil {
		t.Fatal(err)
	}
	if !binds(t, f, u.DN, p.Password) {
		t.Fatalf("%s's rotated password does not bind", u.Sam)
	}
	if rep, err := r.Run(ctx, jobs.RunOptions{Customers: []string{"corp"}}); err != nil || rep.Status != jobs.StatusOK {
		t.Fatalf("the import after the rotation: %v %+v", err, rep)
	}
}

// guardAdministrator puts Administrator's password back at the end of the
// test when it no longer binds (a rotation changed it), over admin, a
// connection bound before, so that one failing test does not lock every
// other test out of the shared domain.
func guardAdministrator(t *testing.T, f sambatest.Facts, admin *ldap.Conn) {
	t.Helper()
	t.Cleanup(func() {
		if ok, err := sambatest.Binds(f, f.BindDN, f.Password); ok || err != nil {
			if err != nil {
				t.Errorf("cannot tell whether Administrator's password was changed: %v", err)
			}
			return
		}
		// admin is bound already and stays so: reset the password over it.
		mod := ldap.NewModifyRequest("CN=Administrator,CN=Users,"+f.BaseDN, nil)
		mod.Replace("unicodePwd", []string{sambatest.UnicodePwd(t, f.Password)})
		if err := admin.Modify(mod); err != nil {
			t.Errorf("Administrator's password was changed and could not be put back: %v", err)
			return
		}
		t.Error("Administrator's password was changed; it was put back")
	})
}

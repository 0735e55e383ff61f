package ad_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/msp-tools/autoimport/internal/connect"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/sirupsen/logrus"
)

// The whole rotation against a real Active Directory: an administrator is
// imported from Samba with an IT Glue entry (the fake), rotated by the
// rotation job, and the password read back from the vault binds while the
// old one no longer does.
func TestSambaRotationWritesTheBindingPasswordToTheVault(t *testing.T) {
	f := needSamba(t)
	admin := sambaAdmin(t, f)
	u := newRotationUser(t, f, admin)

	itg := itgluetest.NewServer(itgluetest.Options{})
	t.Cleanup(itg.Close)
	itg.AddOrganization(100, "Corp")
	t.Setenv("SAMBA_TEST_BIND_PASSWORD", f.password)
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
`, itg.URL, f.url, f.ca, f.bindDN, f.baseDN, rotationOU+","+f.baseDN)
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
		if a.Username == u.sam {
			ref = a.VaultRef
		}
	}
	if ref == "" {
		t.Fatalf("%s was not imported with a vault entry", u.sam)
	}
	// Only this test's administrator: the shared domain's others keep theirs.
	run, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"corp"}, Account: u.sam, Now: true})
	if err != nil || run.Outcomes[jobs.OutcomeRotated] != 1 {
		t.Fatalf("rotation: %v %+v", err, run)
	}
	id, _ := strconv.Atoi(ref)
	entry, ok := itg.Password(id)
	if !ok || entry.Value == "" || entry.Value == u.password {
		t.Fatalf("IT Glue entry %s: %+v", ref, entry)
	}
	src := sambaSource(t, f)
	if ok, err := src.CheckPassword(ctx, u.target, entry.Value); err != nil || !ok {
		t.Fatalf("the password read back from the vault does not bind: %v, %v", ok, err)
	}
	if ok, err := src.CheckPassword(ctx, u.target, u.password); err != nil || ok {
		t.Fatalf("the old password still binds: %v, %v", ok, err)
	}
}

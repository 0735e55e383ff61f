package connect_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// Rotation over the wire: administrators imported from the fake DC into IT
// Glue are rotated over LDAPS; the password IT Glue then holds binds. A DC
// that takes a password and drops the connection before answering leaves
// the rotation pending; the next pass binds with it and finishes.
func TestRotationOverTheFakes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := startFakes(t)
		ctx := context.Background()
		tn := f.tenant(t)
		// Passwords go over StartTLS only: trust the DC's certificate.
		ca := filepath.Join(t.TempDir(), "dc.pem")
		if err := os.WriteFile(ca, f.dc.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		tn.Customers[0].Sources.AD.AllowPlaintext, tn.Customers[0].Sources.AD.StartTLS, tn.Customers[0].Sources.AD.CAFile = false, true, ca
		tn.Policies = append(tn.Policies, jobs.Policy{Name: "Rotated admins", Type: jobs.Admin, Default: true,
			Options: jobs.Values{jobs.VaultMatch: true, jobs.VaultCreate: true, jobs.Rotation: true}})
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "e2e"}).Apply(ctx, tn); err != nil {
			t.Fatal(err)
		}
		key, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
		r := runner(s, f)
		r.Key = key
		if first := run(t, r, jobs.RunOptions{}); first.Status != jobs.StatusOK {
			t.Fatalf("import: %s %s", first.Status, first.Error)
		}
		var admins []jobs.ImportedAccount
		for a, err := range s.ImportedAccounts(ctx, "acme") {
			if err != nil {
				t.Fatal(err)
			}
			if a.Type == jobs.Admin {
				admins = append(admins, a)
			}
		}
		if len(admins) == 0 {
			t.Fatal("no administrator imported")
		}
		src, err := ad.New(f.dc.Config("acme"))
		if err != nil {
			t.Fatal(err)
		}
		binds := func(a jobs.ImportedAccount) bool {
			id, _ := strconv.Atoi(a.VaultRef)
			e, ok := f.itg.Password(id)
			if !ok || e.Value == "" {
				return false
			}
			ok, err := src.CheckPassword(ctx, ad.PasswordTarget{ObjectGUID: a.SourceID, Username: a.Username}, e.Value)
			return ok && err == nil
		}
		if binds(admins[0]) {
			t.Fatal("the placeholder an import stores binds")
		}
		// The fake DC drops every connection when it drops one: the first
		// administrator alone meets it.
		f.dc.FailPasswordChanges(adtest.DropAfterApply)
		rot, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme"}, Account: admins[0].Username, Now: true})
		if err != nil || rot.Outcomes[jobs.OutcomeUnknown] != 1 {
			t.Fatalf("rotation with a dropped answer: %v %+v", err, rot.Outcomes)
		}
		// The next pass finishes it (no second change) and rotates the others.
		rot, err = r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme"}, Now: true})
		if err != nil || rot.Status != jobs.StatusOK || rot.Outcomes[jobs.OutcomeRotated] != len(admins) {
			t.Fatalf("next pass: %v %+v", err, rot)
		}
		for _, a := range admins {
			if !binds(a) {
				t.Errorf("%s: the password in IT Glue does not bind", a.Username)
			}
		}
		if got := f.dc.Stats().PasswordChanges; got != int64(len(admins)) {
			t.Errorf("%d password changes for %d administrators", got, len(admins))
		}
	})
}

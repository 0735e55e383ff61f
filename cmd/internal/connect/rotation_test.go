package connect_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// rotationOverTheFakes imports the fake DC's administrators into IT Glue
// with rotation on, and returns the runner (with a secret key), the
// administrators, and whether the password IT Glue holds for one binds.
func rotationOverTheFakes(t *testing.T, s *store.Store) (*fakes, *jobs.Runner, []jobs.ImportedAccount, func(jobs.ImportedAccount) bool) {
	t.Helper()
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
		defer src.CloseIdleConnections()
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
	return f, r, admins, binds
}

// Rotation over the wire: administrators imported from the fake DC into IT
// Glue are rotated over StartTLS; the password IT Glue then holds binds. A
// DC that takes a password and drops the connection before answering
// leaves the rotation pending; the next pass sets the same password again
// and finishes: each administrator got one new password.
func TestRotationOverTheFakes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r, admins, binds := rotationOverTheFakes(t, s)
		ctx := context.Background()
		// The fake DC drops every connection when it drops one: the first
		// administrator alone meets it.
		f.dc.FailPasswordChanges(adtest.DropAfterApply)
		rot, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme"}, Account: admins[0].Username, Now: true})
		if err != nil || rot.Outcomes[jobs.OutcomeUnknown] != 1 {
			t.Fatalf("rotation with a dropped answer: %v %+v", err, rot.Outcomes)
		}
		bindsBefore := f.dc.Stats().Binds
		rot, err = r.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme"}, Now: true})
		if err != nil || rot.Status != jobs.StatusOK || rot.Outcomes[jobs.OutcomeRotated] != len(admins) {
			t.Fatalf("next pass: %v %+v", err, rot)
		}
		// The pass's exchanges shared a connection per worker (bound
		// once each; the open rotation's check binds as its account, on
		// a connection of its own), and it closed them when it was done.
		if n := f.dc.Stats().Binds - bindsBefore; n > jobs.RotationWorkers+1 {
			t.Errorf("%d binds for %d administrators, %d at a time: exchanges dialled", n, len(admins), jobs.RotationWorkers)
		}
		deadline := time.Now().Add(5 * time.Second)
		for f.dc.OpenConnections() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := f.dc.OpenConnections(); n != 0 {
			t.Errorf("%d connections to the DC left open after the rotation", n)
		}
		for _, a := range admins {
			if !binds(a) {
				t.Errorf("%s: the password in IT Glue does not bind", a.Username)
			}
		}
		// One change per administrator, and the dropped one set again.
		if got := f.dc.Stats().PasswordChanges; got != int64(len(admins))+1 {
			t.Errorf("%d password changes for %d administrators, one set twice", got, len(admins))
		}
	})
}

// When the DC refuses to set a pending password again (its policy was
// tightened), the bind decides: a DC that never received the first set
// does not bind with it, so the rotation stays open for a person and IT
// Glue keeps the password that works; a DC that took it binds, and the
// rotation goes on to IT Glue.
func TestRefusedRetryOverTheFakes(t *testing.T) {
	for _, fault := range []adtest.PasswordFault{adtest.DropBeforeApply, adtest.DropAfterApply} {
		name := map[adtest.PasswordFault]string{adtest.DropBeforeApply: "the DC never received it", adtest.DropAfterApply: "the DC took it"}[fault]
		t.Run(name, func(t *testing.T) {
			s := storetest.SQLite(t)
			f, r, admins, binds := rotationOverTheFakes(t, s)
			ctx := context.Background()
			a := admins[0]
			id, _ := strconv.Atoi(a.VaultRef)
			before, _ := f.itg.Password(id)
			f.dc.FailPasswordChanges(fault)
			one := jobs.RotationRunOptions{Customers: []string{"acme"}, Account: a.Username, Now: true}
			if rot, err := r.Rotate(ctx, one); err != nil || rot.Outcomes[jobs.OutcomeUnknown] != 1 {
				t.Fatalf("first pass: %v %+v", err, rot.Outcomes)
			}
			f.dc.Directory().SetPasswordPolicy(adtest.PasswordPolicy{MinLength: 100, Complexity: true})
			rot, err := r.Rotate(ctx, one)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := f.itg.Password(id)
			if fault == adtest.DropAfterApply {
				if rot.Outcomes[jobs.OutcomeRotated] != 1 || !binds(a) {
					t.Fatalf("the DC holds it: %+v; IT Glue's password binds: %v", rot.Customers[0].Accounts, binds(a))
				}
				return
			}
			if rot.Outcomes[jobs.OutcomeFailed] != 1 || !strings.Contains(rot.Customers[0].Accounts[0].Reason, "rotation could not be finished") {
				t.Fatalf("the DC never had it: %+v", rot.Customers[0].Accounts)
			}
			if after.Value != before.Value {
				t.Fatal("IT Glue received a password the DC does not hold")
			}
			rs, _ := s.Rotations(ctx, "acme")
			if len(rs) != 1 || !rs[0].Open() {
				t.Fatalf("the rotation did not stay open: %+v", rs)
			}
		})
	}
}

package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// setBindDN changes acme's bind_dn as a technician's apply would.
func setBindDN(t *testing.T, s *store.Store, dn string) {
	t.Helper()
	ctx := context.Background()
	tn, err := s.LoadTenant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tn.Customers {
		if tn.Customers[i].ID == "acme" {
			tn.Customers[i].Sources.AD.BindDN = dn
		}
	}
	if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, tn); err != nil {
		t.Fatal(err)
	}
}

func outcomes(rep *jobs.RotationReport) map[string]jobs.AccountRotation {
	out := map[string]jobs.AccountRotation{}
	for _, a := range rep.Accounts {
		out[a.Username] = a
	}
	return out
}

// The account autoimport binds to a customer's AD as is an administrator
// imported with rotation on, yet never rotated: known by bind_dn's names
// before a run has resolved it, by its objectGUID after. It shows with
// rotation off and why, turning rotation on is refused, and a pass (due
// or --now, dry or not) reports it skipped with the reason.
func TestRotationLeavesTheBindAccountAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 3)
		acme, ctx := f.worlds["acme"], context.Background()
		led := ledgerOf(t, s, "acme")
		if !led["adm-1"].Rotation || !led["adm-2"].Rotation {
			t.Fatalf("the administrators were not imported with rotation on: %+v", led)
		}

		// Before any run resolved it: bind_dn names adm-1 as DOMAIN\name.
		setBindDN(t, s, `ACME\adm-1`)
		got := outcomes(rotate(t, r, s, jobs.RotateOptions{Now: true}))
		if a := got["adm-1"]; a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) {
			t.Fatalf("the bind account: %+v", a)
		}
		if got["adm-0"].Outcome != jobs.OutcomeRotated || got["adm-2"].Outcome != jobs.OutcomeRotated {
			t.Fatalf("the other administrators: %+v", got)
		}
		if pw, _ := acme.dir.state(led["adm-1"].SourceID); pw != "Initial-Passw0rd!" {
			t.Fatal("the bind account's password was changed")
		}

		// bind_dn becomes a DN whose names fit no account; the next run
		// resolves it in the directory to adm-2's objectGUID and records it.
		setBindDN(t, s, "CN=Automation Service,OU=Service Accounts,DC=acme")
		acme.ad.bindAs = &jobs.BindAccount{ObjectGUID: led["adm-2"].SourceID, Username: "adm-2"}
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		var recorded bool
		for e, err := range s.AuditEvents(ctx, jobs.AuditFilter{Customer: "acme"}) {
			if err != nil {
				t.Fatal(err)
			}
			recorded = recorded || e.Action == "import.bind-account" && strings.Contains(e.After, led["adm-2"].SourceID)
		}
		if !recorded {
			t.Fatal("the run did not record the account it binds as")
		}
		acme.ad.bindAs = nil // the offline commands and the rotation use the record

		dry := outcomes(rotate(t, r, s, jobs.RotateOptions{Now: true, DryRun: true}))
		if a := dry["adm-2"]; a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) {
			t.Fatalf("dry run, the bind account: %+v", a)
		}
		if dry["adm-1"].Outcome != jobs.OutcomeWouldRotate {
			t.Fatalf("dry run, adm-1 (no longer the bind account): %+v", dry["adm-1"])
		}

		acc := f.accounts()
		rows, err := acc.List(ctx, "acme", jobs.AccountFilter{Type: jobs.Admin})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			blocked := row.Username == "adm-2"
			if blocked != (row.RotationBlocked == jobs.ReasonBindAccount) || blocked == row.Flags.Rotation || blocked != strings.Contains(row.Reason, jobs.ReasonBindAccount) {
				t.Errorf("list: %s: rotation %v, blocked %q, reason %q", row.Username, row.Flags.Rotation, row.RotationBlocked, row.Reason)
			}
		}
		if d, err := acc.Show(ctx, "acme", "adm-2"); err != nil || d.Flags.Rotation || d.RotationBlocked != jobs.ReasonBindAccount {
			t.Fatalf("show: %+v, %v", d, err)
		}

		on := true
		_, err = acc.SetFlags(ctx, "acme", jobs.Selection{Accounts: []string{"adm-2"}}, jobs.FlagSettings{Rotation: &on}, false)
		var ue *jobs.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), jobs.ReasonBindAccount) {
			t.Fatalf("rotation=true on the bind account: %v", err)
		}
		ch, err := acc.SetFlags(ctx, "acme", jobs.Selection{All: true, Type: jobs.Admin}, jobs.FlagSettings{Rotation: &on}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ch {
			if c.Account == "adm-2" && (c.Changed || !strings.Contains(c.Reason, jobs.ReasonBindAccount)) {
				t.Fatalf("--all rotation=true: %+v", c)
			}
		}

		before, _ := acme.dir.state(led["adm-2"].SourceID)
		got = outcomes(rotate(t, r, s, jobs.RotateOptions{Now: true}))
		if a := got["adm-2"]; a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) || got["adm-1"].Outcome != jobs.OutcomeRotated {
			t.Fatalf("after the run: %+v", got)
		}
		if after, _ := acme.dir.state(led["adm-2"].SourceID); after != before {
			t.Fatal("the bind account's password was changed")
		}
		// rotate --account names it alone: skipped all the same.
		one := outcomes(rotate(t, r, s, jobs.RotateOptions{Now: true, Account: "adm-2"}))
		if a := one["adm-2"]; len(one) != 1 || a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) {
			t.Fatalf("--account: %+v", one)
		}
		if !ledgerOf(t, s, "acme")["adm-2"].Rotation {
			t.Fatal("the ledger's flag was changed: it is the technician's, and applies again once bind_dn changes")
		}
	})
}

// A rotation of the bind account left pending by an earlier version (it
// was started before autoimport knew it signs in as the account) is not
// rolled forward: setting its password again would lock autoimport out if
// the directory never took it. It stays open, its password kept and
// readable, and the pass says so.
func TestAPendingRotationOfTheBindAccountIsNotRolledForward(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 2)
		acme, ctx := f.worlds["acme"], context.Background()
		led := ledgerOf(t, s, "acme")
		jobs.SetRotationStep(r, func(step string) error {
			if step == "pending" {
				return errors.New("killed")
			}
			return nil
		})
		rotate(t, r, s, jobs.RotateOptions{Now: true, Account: "adm-1"})
		jobs.SetRotationStep(r, nil)
		setBindDN(t, s, `ACME\adm-1`)
		got := outcomes(rotate(t, r, s, jobs.RotateOptions{Now: true}))
		if a := got["adm-1"]; a.Outcome != jobs.OutcomeSkipped || !strings.Contains(a.Reason, jobs.ReasonBindAccount) || !strings.Contains(a.Reason, "not rolled forward") {
			t.Fatalf("the bind account's pending rotation: %+v", a)
		}
		if got["adm-0"].Outcome != jobs.OutcomeRotated {
			t.Fatalf("adm-0: %+v", got["adm-0"])
		}
		if pw, _ := acme.dir.state(led["adm-1"].SourceID); pw != "Initial-Passw0rd!" {
			t.Fatal("the bind account's password was changed")
		}
		if p, err := f.accounts().PendingPassword(ctx, "acme", "adm-1", rotationKey); err != nil || p.State != jobs.RotationPending || p.Password == "" {
			t.Fatalf("the pending password is no longer kept: %+v, %v", p, err)
		}
	})
}

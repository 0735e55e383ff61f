package connect_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// The technician's side over the real wire: the entries a match names are
// read from the IT Glue fake, which must hold them in the customer's
// organization; the next run uses the choice; a chosen entry deleted in IT
// Glue turns the account ambiguous again.
func TestManualMatchingOverTheFakes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := startFakes(t)
		ctx := context.Background()
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "e2e"}).Apply(ctx, f.tenant(t)); err != nil {
			t.Fatal(err)
		}
		r := runner(s, f)
		d := f.dc.Directory()
		ids := map[string][]int{}
		for _, sam := range []string{"yuri", "zack"} {
			d.AddUser(adtest.User{Parent: adtest.OUBulk + "," + d.BaseDN, SAM: sam, GivenName: strings.ToUpper(sam[:1]) + sam[1:], Surname: "Test", DisplayName: sam + " Test", UAC: 512})
			for i := range 2 {
				ids[sam] = append(ids[sam], f.itg.AddPassword(itgluetest.Password{OrganizationID: 100, Name: fmt.Sprintf("%s %d", sam, i), Username: sam}, "Active Directory"))
			}
		}
		f.itg.AddOrganization(200, "Bravo")
		elsewhere := f.itg.AddPassword(itgluetest.Password{OrganizationID: 200, Name: "yuri at Bravo", Username: "yuri"}, "Active Directory")
		first := run(t, r, jobs.RunOptions{AllowSurge: true})
		if first.Counts.Ambiguous != 2 || first.NeedPerson[jobs.StateAmbiguous] != 2 || first.NeedPerson[jobs.StatePossibleDuplicate] != 1 ||
			!strings.Contains(first.NextStep, "3 accounts need a person") {
			t.Fatalf("first run: %+v %v %q", first.Counts, first.NeedPerson, first.NextStep)
		}
		acc := &jobs.Accounts{Store: s, Connector: r.Connector, Log: r.Log, Actor: "tech"}
		_, err := acc.Match(ctx, "acme", "yuri", jobs.MatchRequest{VaultRef: fmt.Sprint(elsewhere)})
		if err == nil || !strings.Contains(err.Error(), "organization 200 (Bravo)") {
			t.Fatalf("an entry of another organization: %v", err)
		}
		_, err = acc.Match(ctx, "acme", "yuri", jobs.MatchRequest{VaultRef: "999999"})
		if err == nil || !strings.Contains(err.Error(), "999999") {
			t.Fatalf("an entry that does not exist: %v", err)
		}
		for sam, ref := range map[string]int{"yuri": ids["yuri"][1], "zack": ids["zack"][0]} {
			if _, err := acc.Match(ctx, "acme", sam, jobs.MatchRequest{VaultRef: fmt.Sprint(ref)}); err != nil {
				t.Fatal(err)
			}
		}
		// zack's chosen entry is deleted in IT Glue before the next run.
		f.itg.DeletePassword(ids["zack"][0])
		creates := f.itg.Count(itgluetest.KindCreatePassword)
		next := run(t, r, jobs.RunOptions{})
		led := map[string]jobs.ImportedAccount{}
		for a, err := range s.ImportedAccounts(ctx, "acme") {
			if err != nil {
				t.Fatal(err)
			}
			led[a.Username] = a
		}
		if next.Counts.Imported != 1 || led["yuri"].VaultRef != fmt.Sprint(ids["yuri"][1]) || f.itg.Count(itgluetest.KindCreatePassword) != creates {
			t.Fatalf("next run: %+v; yuri %+v; %d new entries", next.Counts, led["yuri"], f.itg.Count(itgluetest.KindCreatePassword)-creates)
		}
		rows, err := acc.List(ctx, "acme", jobs.AccountFilter{State: jobs.StateAmbiguous})
		if err != nil || len(rows) != 1 || rows[0].Username != "zack" || !strings.Contains(rows[0].Reason, "no longer exists") {
			t.Fatalf("zack: %+v, %v", rows, err)
		}

		// Ignore zack: never created, even when its namesakes go away.
		if _, err := acc.Ignore(ctx, "acme", []string{"zack"}, "left the company", false); err != nil {
			t.Fatal(err)
		}
		f.itg.DeletePassword(ids["zack"][1])
		run(t, r, jobs.RunOptions{})
		for _, p := range f.itg.Passwords(100) {
			if p.Username == "zack" {
				t.Fatalf("an entry was created for ignored zack: %+v", p)
			}
		}
		// An import holding the lease makes every accounts command wait.
		l, err := jobs.AcquireLease(ctx, s, "acme", "scheduler", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		if _, err := acc.Unignore(ctx, "acme", []string{"zack"}, false); !errors.Is(err, jobs.ErrImportRunning) {
			t.Fatalf("during an import: %v", err)
		}
	})
}

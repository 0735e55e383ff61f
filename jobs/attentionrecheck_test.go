package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// Ambiguous accounts are checked against the vault again only when
// something that decides them may have changed: a run where nothing did
// reads no vault index for them, and still reports them; a new account
// (whose index read checks them all at once), a changed name, a
// technician's choice or the recheck interval bring them back.
func TestUnchangedAmbiguousAccountsCostNoVaultRequest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		users := ambiguousUsers(acme, 50)
		acme.ad.set(users...)
		once := jobs.RunOptions{Customers: []string{"acme"}}
		run := func() (*jobs.CustomerReport, int32) {
			before := acme.vault.indexes.Load()
			cr := customerReport(f.run(t, once), "acme")
			return cr, acme.vault.indexes.Load() - before
		}
		if cr, reads := run(); cr.Counts.Ambiguous != 50 || reads != 1 {
			t.Fatalf("first run: %+v, %d index reads", cr.Counts, reads)
		}
		cr, reads := run()
		if cr.Counts.Ambiguous != 50 || cr.Counts.Candidates != 50 || reads != 0 || cr.NeedPerson[jobs.StateAmbiguous] != 50 {
			t.Fatalf("nothing changed: %+v, %d index reads, need %v", cr.Counts, reads, cr.NeedPerson)
		}
		for _, p := range cr.Attention {
			if p.Action != jobs.ActionAmbiguous || !strings.Contains(p.Reason, "2 entries match") {
				t.Fatalf("an unchanged account is reported without its reason: %+v", p)
			}
		}
		// A technician archives user7's old entry in the vault: picked
		// up by the next recheck, not by a run where nothing else changed.
		acme.vault.remove("org-acme", "b7")
		if cr, reads := run(); reads != 0 || cr.Counts.Imported != 0 {
			t.Fatalf("within the interval: %+v, %d index reads", cr.Counts, reads)
		}
		f.runner.AttentionRecheckEvery = time.Nanosecond
		if cr, reads := run(); reads != 1 || cr.Counts.Imported != 1 || cr.Counts.Ambiguous != 49 {
			t.Fatalf("after the interval: %+v, %d index reads", cr.Counts, reads)
		}
		f.runner.AttentionRecheckEvery = 0
		// A new hire: one index read checks every account.
		acme.vault.remove("org-acme", "b8")
		acme.ad.set(append(users, user(500, jobs.EndUser))...)
		if cr, reads := run(); reads != 1 || cr.Counts.Imported != 2 {
			t.Fatalf("a new account: %+v, %d index reads", cr.Counts, reads)
		}
		// A renamed ambiguous account is planned again.
		if _, reads := run(); reads != 0 {
			t.Fatalf("nothing changed again: %d index reads", reads)
		}
		users[9].DisplayName = "User Nine (renamed)"
		acme.ad.set(append(users, user(500, jobs.EndUser))...)
		if cr, reads := run(); reads != 1 || cr.Counts.Ambiguous != 48 {
			t.Fatalf("a renamed account: %+v, %d index reads", cr.Counts, reads)
		}
		// A technician's choice is planned at once.
		if _, err := f.accounts().Match(t.Context(), "acme", "user10", jobs.MatchRequest{VaultRef: "a10"}); err != nil {
			t.Fatal(err)
		}
		if cr, reads := run(); reads != 1 || cr.Counts.Imported != 1 {
			t.Fatalf("after a choice: %+v, %d index reads", cr.Counts, reads)
		}
	})
}

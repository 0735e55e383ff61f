package jobs_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func (f *fixture) accounts() *jobs.Accounts {
	return &jobs.Accounts{Store: f.store, Connector: f.runner.Connector, Log: f.runner.Log, Actor: "tech"}
}

func states(rows []jobs.AccountRow) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		out[r.Username] = r.State
	}
	return out
}

// The technician's workflow: a run leaves an ambiguous account and a
// possible duplicate; the list shows them; a match of the ambiguous one is
// used by the next run (no new entry), a re-link settles the possible
// duplicate, and the old link stays in the audit log.
func TestManualMatchingWorkflow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.vault.entries["org-acme"] = append(acme.vault.entries["org-acme"], sinks.VaultEntry{Ref: "old-1", Name: "User 1 old", Username: "user1"})
		acme.vault.entries["org-bravo"] = append(acme.vault.entries["org-bravo"], sinks.VaultEntry{Ref: "bravo-9", Username: "user0", Category: "Active Directory"})
		amb := ambiguousUsers(acme, 1)[0]
		acme.ad.set(amb, user(1, jobs.EndUser), user(2, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		acc := f.accounts()
		ctx := context.Background()

		rows, err := acc.List(ctx, "acme", jobs.AccountFilter{})
		if err != nil {
			t.Fatal(err)
		}
		st := states(rows)
		if st["user0"] != jobs.StateAmbiguous || st["user1"] != jobs.StatePossibleDuplicate || st["user2"] != jobs.StateImported || len(rows) != 3 {
			t.Fatalf("list: %v", st)
		}
		if rows[0].State != jobs.StateAmbiguous || rows[0].LastSeen.IsZero() {
			t.Fatalf("those that need a person come first, with when they were last seen: %+v", rows[0])
		}
		if amb, _ := acc.List(ctx, "acme", jobs.AccountFilter{State: jobs.StateAmbiguous}); len(amb) != 1 {
			t.Fatalf("--state ambiguous: %+v", amb)
		}
		if _, err := acc.List(ctx, "acme", jobs.AccountFilter{State: "confused"}); err == nil {
			t.Fatal("an unknown state is accepted")
		}

		// Refusals: an entry of another organization, one that does not exist.
		for ref, want := range map[string]string{"bravo-9": "belongs to organization org-bravo", "nope": "does not exist"} {
			if _, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: ref}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("match to %s: %v, want %q", ref, err, want)
			}
		}
		// A dry run writes nothing.
		dry, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: "b0", DryRun: true})
		if err != nil || dry.Action != "stored" || !dry.DryRun {
			t.Fatalf("dry run: %+v, %v", dry, err)
		}
		if ds, _ := s.Decisions(ctx, "acme"); len(ds) != 0 {
			t.Fatal("a dry run stored the choice")
		}
		res, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: "b0"})
		if err != nil || res.Action != "stored" || res.Entry.Ref != "b0" {
			t.Fatalf("match: %+v, %v", res, err)
		}

		creates := acme.vault.creates.Load()
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Counts.Imported != 1 || cr.Counts.VaultMatched != 1 || acme.vault.creates.Load() != creates || ledgerOf(t, s, "acme")["user0"].VaultRef != "b0" {
			t.Fatalf("next run: %+v, creates %d", cr.Counts, acme.vault.creates.Load()-creates)
		}

		// Re-link the possible duplicate to its old entry.
		res, err = acc.Match(ctx, "acme", "user1", jobs.MatchRequest{VaultRef: "old-1"})
		if err != nil || res.Action != "relinked" || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], `category ""`) {
			t.Fatalf("relink: %+v, %v", res, err)
		}
		led := ledgerOf(t, s, "acme")["user1"]
		if led.VaultRef != "old-1" || led.VaultName != "User 1 old" {
			t.Fatalf("ledger after relink: %+v", led)
		}
		d, err := acc.Show(ctx, "acme", "user1")
		if err != nil || d.State != jobs.StateImported {
			t.Fatalf("show: %+v, %v", d, err)
		}
		var relinked bool
		for _, e := range d.History {
			if e.Action == "accounts.relink" && strings.Contains(e.Before, `"vault_ref":"`+res.Before.VaultRef+`"`) && strings.Contains(e.After, "old-1") {
				relinked = true
			}
		}
		if !relinked || d.History[0].Action != "import.account" {
			t.Fatalf("history keeps no old link: %+v", d.History)
		}
		if _, err := acc.Match(ctx, "acme", "user1", jobs.MatchRequest{VaultCreate: true}); err == nil || !strings.Contains(err.Error(), "never creates a second entry") {
			t.Fatalf("create for an imported account: %v", err)
		}
	})
}

// A match survives a restart: the choice is in the database, and a new
// process's run uses it.
func TestMatchSurvivesARestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(ambiguousUsers(acme, 1)...)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if _, err := f.accounts().Match(context.Background(), "acme", "USER0", jobs.MatchRequest{VaultRef: "a0"}); err != nil {
			t.Fatal(err)
		}
		s2 := storetest.Reopen(t, s)
		f.runner.Store = s2
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Counts.VaultMatched != 1 || ledgerOf(t, s2, "acme")["user0"].VaultRef != "a0" {
			t.Fatalf("after restart: %+v", cr.Counts)
		}
	})
}

func TestIgnoreAndUnignore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		u := ambiguousUsers(acme, 1)
		acme.ad.set(append(u, user(5, jobs.EndUser))...)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		acc, ctx := f.accounts(), context.Background()
		if _, err := acc.Ignore(ctx, "acme", []string{"user0"}, "", false); err == nil {
			t.Fatal("an exclusion without a reason is accepted")
		}
		fresh := user(9, jobs.EndUser) // never seen: named by id
		res, err := acc.Ignore(ctx, "acme", []string{"user0", "ad:" + fresh.ID, "user5"}, "shared mailbox", false)
		if err != nil || !res[0].Done || !res[1].Done || res[2].Done || !strings.Contains(res[2].Reason, "imported already") {
			t.Fatalf("ignore: %+v, %v", res, err)
		}
		rows, _ := acc.List(ctx, "acme", jobs.AccountFilter{State: jobs.StateIgnored})
		if len(rows) != 2 || !strings.Contains(rows[0].Reason, "ignored by tech") || !strings.Contains(rows[0].Reason, "shared mailbox") {
			t.Fatalf("ignored: %+v", rows)
		}
		acme.ad.set(append(u, user(5, jobs.EndUser), fresh)...)
		creates := acme.vault.creates.Load()
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if acme.vault.creates.Load() != creates || len(ledgerOf(t, s, "acme")) != 1 {
			t.Fatal("an ignored account was created")
		}
		if res, err := acc.Unignore(ctx, "acme", []string{"ad:" + fresh.ID}, false); err != nil || !res[0].Done {
			t.Fatalf("unignore: %+v, %v", res, err)
		}
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if _, ok := ledgerOf(t, s, "acme")["user9"]; !ok {
			t.Fatal("an unignored account was not imported")
		}
	})
}

func TestRollOutFlagsOnImportedAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser), user(3, jobs.Admin))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		acc, ctx := f.accounts(), context.Background()
		off, on := false, true
		if _, err := acc.SetFlags(ctx, "acme", jobs.Selection{All: true}, jobs.FlagSettings{SelfServe: &off}, false); err != nil {
			t.Fatal(err)
		}
		ch, err := acc.SetFlags(ctx, "acme", jobs.Selection{All: true, Type: jobs.EndUser}, jobs.FlagSettings{SelfServe: &on}, true)
		if err != nil || len(ch) != 2 || !ch[0].Changed {
			t.Fatalf("dry run: %+v, %v", ch, err)
		}
		if ledgerOf(t, s, "acme")["user1"].SelfServe {
			t.Fatal("a dry run changed a flag")
		}
		ch, err = acc.SetFlags(ctx, "acme", jobs.Selection{Accounts: []string{"user1", "user3"}}, jobs.FlagSettings{SelfServe: &on, Rotation: &off}, false)
		if err != nil || !ch[0].Changed || !ch[1].Changed {
			t.Fatalf("set: %+v, %v", ch, err)
		}
		led := ledgerOf(t, s, "acme")
		if !led["user1"].SelfServe || led["user2"].SelfServe || led["user3"].Rotation || led["user1"].Options[jobs.SelfServe] != true {
			t.Fatalf("ledger: %+v", led)
		}
		// The options snapshot is the one of the import, whatever the flags.
		if led["user2"].Options[jobs.SelfServe] != true {
			t.Fatalf("snapshot changed: %+v", led["user2"].Options)
		}
		if _, err := acc.SetFlags(ctx, "acme", jobs.Selection{Accounts: []string{"nobody"}}, jobs.FlagSettings{SelfServe: &on}, false); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
	})
}

// An accounts command never interleaves with an import of the same
// customer: while a run holds the lease it is refused, saying so.
func TestAccountsCommandsWaitForNoImport(t *testing.T) {
	s := storetest.SQLite(t)
	f := setup(t, s)
	f.worlds["acme"].ad.set(user(1, jobs.EndUser))
	f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
	l, err := jobs.AcquireLease(context.Background(), s, "acme", "a running import", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	on := true
	_, err = f.accounts().SetFlags(context.Background(), "acme", jobs.Selection{All: true}, jobs.FlagSettings{SelfServe: &on}, false)
	if !errors.Is(err, jobs.ErrImportRunning) || !strings.Contains(err.Error(), "an import of acme is running") {
		t.Fatalf("during an import: %v", err)
	}
	// A dry run reads only, and goes ahead.
	if _, err := f.accounts().SetFlags(context.Background(), "acme", jobs.Selection{All: true}, jobs.FlagSettings{SelfServe: &on}, true); err != nil {
		t.Fatal(err)
	}
}

// The welcome roll-out sends each imported end user who never got one
// its email once: run twice, it sends nothing the second time; accounts
// that got one, or cannot, are listed as skipped.
func TestWelcomeRollOutSendsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		welcomeOff(t, s) // as the roll-out advice says
		acme := f.worlds["acme"]
		noMail := user(3, jobs.EndUser)
		noMail.Email = ""
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser), noMail, user(4, jobs.Admin))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if len(acme.mail.sent) != 0 {
			t.Fatal("the import sent welcome emails with welcome_email off")
		}
		acc, ctx := f.accounts(), context.Background()
		out, _, err := acc.Welcome(ctx, "acme", jobs.Selection{All: true}, true)
		if err != nil || dueOf(out) != 2 || len(acme.mail.sent) != 0 {
			t.Fatalf("dry run: %+v, %v; %d sent", out, err, len(acme.mail.sent))
		}
		out, res, err := acc.Welcome(ctx, "acme", jobs.Selection{All: true}, false)
		if err != nil || res.Sent != 2 || len(acme.mail.sent) != 2 {
			t.Fatalf("roll-out: %+v %+v, %v; %d sent", out, res, err, len(acme.mail.sent))
		}
		led := ledgerOf(t, s, "acme")
		if led["user1"].Welcome != jobs.WelcomeSent || led["user3"].Welcome != jobs.WelcomeNone {
			t.Fatalf("ledger: %+v", led)
		}
		// One email to each end user with an address, each naming its own
		// account.
		to := map[string]sinks.Welcome{}
		for _, w := range acme.mail.sent {
			to[w.To] = w
		}
		for _, i := range []int{1, 2} {
			u := user(i, jobs.EndUser)
			if w, ok := to[u.Email]; !ok || w.Username != u.Username || w.DisplayName != u.DisplayName || w.Customer != "acme" {
				t.Fatalf("user%d's welcome email: %+v (sent: %+v)", i, w, acme.mail.sent)
			}
		}
		if len(to) != 2 {
			t.Fatalf("welcome emails went to %d addresses, want 2: %+v", len(to), acme.mail.sent)
		}
		out, res, err = acc.Welcome(ctx, "acme", jobs.Selection{All: true}, false)
		if err != nil || res.Sent != 0 || len(acme.mail.sent) != 2 || dueOf(out) != 0 || !strings.Contains(out[0].Skipped, "got one already") {
			t.Fatalf("second roll-out: %+v %+v, %v; %d sent", out, res, err, len(acme.mail.sent))
		}
		if out, _, err := acc.Welcome(ctx, "acme", jobs.Selection{Accounts: []string{"user4"}}, false); err != nil || !strings.Contains(out[0].Skipped, "administrator") {
			t.Fatalf("admin: %+v, %v", out, err)
		}
		// The next import sends nothing either.
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if len(acme.mail.sent) != 2 {
			t.Fatalf("%d welcome emails after the next run", len(acme.mail.sent))
		}
	})
}

// welcomeOff turns welcome_email off in the fixture's policy, so that an
// import leaves its end users' welcome emails to a roll-out.
func welcomeOff(t *testing.T, s *store.Store) {
	t.Helper()
	tn, _ := s.LoadTenant(context.Background())
	for i := range tn.Policies {
		if tn.Policies[i].Name == "Std" {
			tn.Policies[i].Options[jobs.WelcomeEmail] = false
		}
	}
	if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(context.Background(), tn); err != nil {
		t.Fatal(err)
	}
}

func dueOf(out []jobs.WelcomeOutcome) int {
	n := 0
	for _, o := range out {
		if o.Skipped == "" {
			n++
		}
	}
	return n
}

// An account autoimport has seen stays known: ignored, it is listed as
// ignored with who, when and why, through any number of runs; unignored,
// it is back in the state it had, and can be matched at once, before any
// run has seen it again. One ignored before a run ever saw it is listed
// under its names once a run has, and, unignored, waits for the next run.
func TestIgnoredAccountsStayKnown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		amb := ambiguousUsers(acme, 1)[0] // user0: a0 and b0 fit
		fresh := user(9, jobs.EndUser)
		acme.ad.set(amb)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		acc, ctx := f.accounts(), context.Background()
		before, err := acc.Show(ctx, "acme", "user0")
		if err != nil || before.State != jobs.StateAmbiguous {
			t.Fatalf("before: %+v, %v", before, err)
		}
		if _, err := acc.Ignore(ctx, "acme", []string{"user0", "ad:" + fresh.ID}, "shared mailbox", false); err != nil {
			t.Fatal(err)
		}
		acme.ad.set(amb, fresh)
		for range 2 {
			cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
			if len(cr.NeedPerson) != 0 || cr.Counts.Skipped != 2 {
				t.Fatalf("ignored accounts need a person, or were not skipped: %v %+v", cr.NeedPerson, cr.Counts)
			}
			rows, err := acc.List(ctx, "acme", jobs.AccountFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if st := states(rows); len(rows) != 2 || st["user0"] != jobs.StateIgnored || st["user9"] != jobs.StateIgnored {
				t.Fatalf("after a run: %v", st)
			}
			for _, r := range rows {
				if !strings.Contains(r.Reason, "ignored by tech on") || !strings.Contains(r.Reason, "shared mailbox") || r.Decision == nil {
					t.Fatalf("%s: %q", r.Username, r.Reason)
				}
			}
		}
		if _, err := acc.Unignore(ctx, "acme", []string{"user0", "user9"}, false); err != nil {
			t.Fatal(err)
		}
		after, err := acc.Show(ctx, "acme", "user0")
		if err != nil || after.State != jobs.StateAmbiguous || after.Reason != before.Reason {
			t.Fatalf("unignored: %+v, %v; want the state it had: %s %q", after, err, before.State, before.Reason)
		}
		nine, err := acc.Show(ctx, "acme", "user9")
		if err != nil || nine.State != jobs.StateHeld || !strings.Contains(nine.Reason, "no longer ignored") {
			t.Fatalf("unignored, never planned: %+v, %v", nine, err)
		}
		// Matched at once, before a run has seen them again.
		if _, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: "a0"}); err != nil {
			t.Fatalf("match after unignore: %v", err)
		}
		if _, err := acc.Match(ctx, "acme", "user9", jobs.MatchRequest{VaultCreate: true}); err != nil {
			t.Fatalf("match after unignore: %v", err)
		}
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		led := ledgerOf(t, s, "acme")
		if cr.Counts.Imported != 2 || led["user0"].VaultRef != "a0" || led["user9"].VaultRef == "" || len(cr.NeedPerson) != 0 {
			t.Fatalf("next run: %+v %v; ledger %+v", cr.Counts, cr.NeedPerson, led)
		}
		if rows, _ := acc.List(ctx, "acme", jobs.AccountFilter{}); len(rows) != 2 || states(rows)["user9"] != jobs.StateImported {
			t.Fatalf("after the import: %v", states(rows))
		}
	})
}

// takenStore answers every transaction's lease check as if another
// autoimport had taken the customer's lease since it was acquired.
type takenStore struct{ *store.Store }

type takenTx struct{ jobs.Tx }

func (takenTx) HoldLease(ctx context.Context, customer, holder string, token int64) error {
	return jobs.ErrLeaseLost
}

func (s takenStore) Update(ctx context.Context, fn func(tx jobs.Tx) error) error {
	return s.Store.Update(ctx, func(tx jobs.Tx) error { return fn(takenTx{tx}) })
}

// A technician's action writes under the customer's lease as the import
// and the rotation do: when the database says the lease is another's, the
// action fails and writes nothing — no flag, no decision, no exclusion,
// no welcome email made pending, no audit event.
func TestTechnicianActionsWriteOnlyUnderTheirLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		welcomeOff(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		ctx := context.Background()
		before := auditActions(t, s)
		acc := &jobs.Accounts{Store: takenStore{s}, Connector: f.runner.Connector, Log: f.runner.Log, Actor: "tech"}
		off := false
		if !ledgerOf(t, s, "acme")["user1"].SelfServe {
			t.Fatal("the import left self-serve off: the test cannot see a change")
		}
		for name, act := range map[string]func() error{
			"accounts set": func() error {
				_, err := acc.SetFlags(ctx, "acme", jobs.Selection{All: true}, jobs.FlagSettings{SelfServe: &off}, false)
				return err
			},
			"accounts welcome": func() error {
				_, _, err := acc.Welcome(ctx, "acme", jobs.Selection{All: true}, false)
				return err
			},
			"accounts ignore": func() error {
				_, err := acc.Ignore(ctx, "acme", []string{"user1"}, "left the company", false)
				return err
			},
		} {
			if err := act(); !errors.Is(err, jobs.ErrLeaseLost) {
				t.Errorf("%s under a lease taken by another: %v, want the lost lease", name, err)
			}
		}
		led := ledgerOf(t, s, "acme")
		if !led["user1"].SelfServe || led["user1"].Welcome != jobs.WelcomeNone || led["user1"].State != "active" {
			t.Fatalf("a refused action wrote: %+v", led["user1"])
		}
		if len(acme.mail.sent) != 0 {
			t.Fatalf("%d welcome emails sent under a lost lease", len(acme.mail.sent))
		}
		if after := auditActions(t, s); !maps.Equal(after, before) {
			t.Fatalf("audit events written: before %v, after %v", before, after)
		}
	})
}

package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// One vault entry holds one account's password: accounts match refuses
// an entry an imported account is linked to, or that a technician chose
// for another account, and names that account; the account's own entry,
// chosen again, is fine.
func TestMatchRefusesAnEntryAnotherAccountHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		amb := ambiguousUsers(acme, 2) // user0 (a0, b0) and user1 (a1, b1)
		acme.vault.entries["org-acme"] = append(acme.vault.entries["org-acme"], sinks.VaultEntry{Ref: "e2", Name: "User 2", Username: "user2", Category: "Active Directory"})
		acme.ad.set(append(amb, user(2, jobs.EndUser))...)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if ledgerOf(t, s, "acme")["user2"].VaultRef != "e2" {
			t.Fatalf("user2 was not linked to e2: %+v", ledgerOf(t, s, "acme")["user2"])
		}
		acc, ctx := f.accounts(), context.Background()
		user2 := "ad:" + user(2, jobs.EndUser).ID + " (user2)"
		refused := func(name, ref, holder, how string) {
			t.Helper()
			for _, dry := range []bool{true, false} {
				_, err := acc.Match(ctx, "acme", name, jobs.MatchRequest{VaultRef: ref, DryRun: dry})
				var ue *jobs.UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), holder) || !strings.Contains(err.Error(), how) {
					t.Fatalf("match %s to %s (dry run %v): %v; want a refusal naming %s", name, ref, dry, err, holder)
				}
			}
		}
		// An entry an imported account is linked to: for an account not
		// imported yet, and for a re-link.
		refused("user0", "e2", user2, "is linked to")
		if _, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: "a0"}); err != nil {
			t.Fatal(err)
		}
		// An entry chosen for another account.
		refused("user1", "a0", "ad:"+amb[0].ID+" (user0)", "was chosen by tech")
		refused("user2", "a0", "ad:"+amb[0].ID+" (user0)", "was chosen by tech")
		// An account's own entry, chosen again.
		if _, err := acc.Match(ctx, "acme", "user0", jobs.MatchRequest{VaultRef: "a0"}); err != nil {
			t.Fatalf("user0 chose its own entry again: %v", err)
		}
		if _, err := acc.Match(ctx, "acme", "user2", jobs.MatchRequest{VaultRef: "e2"}); err != nil {
			t.Fatalf("user2 re-linked to its own entry: %v", err)
		}
		if ds, _ := s.Decisions(ctx, "acme"); len(ds) != 1 {
			t.Fatalf("decisions: %+v", ds)
		}
		if led := ledgerOf(t, s, "acme"); led["user2"].VaultRef != "e2" {
			t.Fatalf("user2 re-linked: %+v", led["user2"])
		}
	})
}

func m365Admin(id, upn string) sources.Account {
	return sources.Account{Source: sources.KindM365, ID: id, Username: upn, UPN: upn, DisplayName: "J Doe", Enabled: true, Type: jobs.Admin, TypeReason: "Global Administrator"}
}

// An import never links two accounts to one entry: an entry an imported
// account is linked to (here the account deleted and made again in the
// directory, with a new id and the old name) leaves the new account
// ambiguous, naming the other; two new accounts that fit one entry are
// both ambiguous, naming each other, until a technician chooses it for
// one of them, which then gets it alone.
func TestImportNeverLinksTwoAccountsToOneEntry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.vault.entries["org-acme"] = []sinks.VaultEntry{
			{Ref: "e1", Name: "User 1", Username: "user1", Category: "Active Directory"},
			{Ref: "m1", Name: "J Doe", Username: "jdoe", Category: "Office 365"},
		}
		old := user(1, jobs.EndUser)
		acme.ad.set(old)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if ledgerOf(t, s, "acme")["user1"].VaultRef != "e1" {
			t.Fatal("user1 was not linked to e1")
		}

		again := user(1, jobs.EndUser)
		again.ID = "00000000-0000-0000-0000-000000000999"
		jdoe, legacy := m365Admin("m-1", "jdoe@acme.example"), m365Admin("m-2", "jdoe@legacy.example")
		acme.ad.set(again)
		acme.m365.set(jdoe, legacy)
		creates := acme.vault.creates.Load()
		rep, plans := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}})
		cr := customerReport(rep, "acme")
		byID := map[string]jobs.AccountPlan{}
		for _, p := range plans["acme"] {
			byID[p.ID] = p
		}
		want := map[string]string{
			again.ID: "entry e1 is linked to ad:" + old.ID + " (user1)",
			"m-1":    "entry m1 fits m365:m-2 (jdoe@legacy.example)",
			"m-2":    "entry m1 fits m365:m-1 (jdoe@acme.example)",
		}
		for id, reason := range want {
			if p := byID[id]; p.Action != jobs.ActionAmbiguous || !strings.Contains(p.Reason, reason) {
				t.Errorf("%s: %s %q; want ambiguous, %q", id, p.Action, p.Reason, reason)
			}
		}
		if cr.Counts.Ambiguous != 3 || acme.vault.creates.Load() != creates || len(ledgerOf(t, s, "acme")) != 1 {
			t.Fatalf("counts %+v, %d creates, ledger %d", cr.Counts, acme.vault.creates.Load()-creates, len(ledgerOf(t, s, "acme")))
		}

		// A technician gives m1 to jdoe@acme.example: it gets it alone.
		if _, err := f.accounts().Match(context.Background(), "acme", "jdoe@acme.example", jobs.MatchRequest{VaultRef: "m1"}); err != nil {
			t.Fatal(err)
		}
		rep, plans = f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}})
		for _, p := range plans["acme"] {
			byID[p.ID] = p
		}
		if led := ledgerOf(t, s, "acme"); led["jdoe@acme.example"].VaultRef != "m1" {
			t.Fatalf("the chosen account: %+v", byID["m-1"])
		}
		if p := byID["m-2"]; p.Action != jobs.ActionAmbiguous || !strings.Contains(p.Reason, "entry m1 was chosen for m365:m-1 (jdoe@acme.example)") {
			t.Fatalf("the other account: %s %q", p.Action, p.Reason)
		}
		// From then on m1 is linked: the other stays ambiguous, naming it
		// (with the reason of its last check: nothing that decides it
		// changed since; a full read checks it again and says it is linked).
		_, plans = f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}})
		for _, p := range plans["acme"] {
			if p.ID == "m-2" && (p.Action != jobs.ActionAmbiguous || !strings.Contains(p.Reason, "entry m1 was chosen for m365:m-1 (jdoe@acme.example)")) {
				t.Fatalf("the other account, next run: %s %q", p.Action, p.Reason)
			}
		}
		_, plans = f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}, FullRead: true})
		for _, p := range plans["acme"] {
			if p.ID == "m-2" && (p.Action != jobs.ActionAmbiguous || !strings.Contains(p.Reason, "entry m1 is linked to m365:m-1 (jdoe@acme.example)")) {
				t.Fatalf("the other account, a full read: %s %q", p.Action, p.Reason)
			}
		}
		seen := map[string]string{}
		for _, a := range ledgerOf(t, s, "acme") {
			if other, dup := seen[a.VaultRef]; dup && a.VaultRef != "" {
				t.Fatalf("%s and %s share entry %s", other, a.Username, a.VaultRef)
			}
			seen[a.VaultRef] = a.Username
		}
	})
}

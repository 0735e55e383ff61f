package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func decide(t *testing.T, s *store.Store, d jobs.AccountDecision) {
	t.Helper()
	d.Customer, d.Actor, d.At = "acme", "tech", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	if err := s.Update(context.Background(), func(tx jobs.Tx) error { return tx.PutDecision(context.Background(), d) }); err != nil {
		t.Fatal(err)
	}
}

func attentionOf(t *testing.T, s *store.Store) map[string]jobs.AccountAttention {
	t.Helper()
	rows, err := s.Attention(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]jobs.AccountAttention{}
	for _, a := range rows {
		out[a.Username] = a
	}
	return out
}

// A run honours the technicians' decisions: a chosen entry is matched, not
// created; "create" overrides an ambiguity; an ignored account is never
// imported and never counts towards a surge; a chosen entry deleted since
// turns the account ambiguous again, saying why.
func TestRunsHonourTechniciansDecisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		users := ambiguousUsers(acme, 3) // user0..2: two entries each (a0/b0, ...)
		acme.ad.set(users...)
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		att := attentionOf(t, s)
		if cr.Counts.Ambiguous != 3 || len(att) != 3 || att["user0"].State != jobs.StateAmbiguous || !strings.Contains(att["user0"].Reason, "2 entries match") {
			t.Fatalf("first run: %+v; attention %+v", cr.Counts, att)
		}
		decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: users[0].ID, Username: "user0", Kind: jobs.DecisionMatch, VaultRef: "b0"})
		decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: users[1].ID, Username: "user1", Kind: jobs.DecisionMatch, VaultCreate: true})
		decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: users[2].ID, Username: "user2", Kind: jobs.DecisionIgnore, Reason: "service account"})
		creates := acme.vault.creates.Load()
		rep, plans := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}})
		cr = customerReport(rep, "acme")
		led := ledgerOf(t, s, "acme")
		if cr.Counts.Imported != 2 || led["user0"].VaultRef != "b0" || led["user1"].VaultRef == "" || acme.vault.creates.Load() != creates+1 {
			t.Fatalf("second run: %+v; ledger %+v; creates %d", cr.Counts, led, acme.vault.creates.Load()-creates)
		}
		if _, ok := led["user2"]; ok {
			t.Fatal("an ignored account was imported")
		}
		var ignored jobs.AccountPlan
		for _, p := range plans["acme"] {
			if p.Username == "user2" {
				ignored = p
			}
		}
		if ignored.Action != jobs.ActionSkip || !strings.Contains(ignored.Reason, "ignored by tech on 2026-11-20: service account") {
			t.Fatalf("ignored account: %+v", ignored)
		}
		// The settled accounts no longer need a person; the ignored one
		// keeps, unchanged, the state unignore returns it to, and counts as
		// needing no one.
		if att := attentionOf(t, s); len(att) != 1 || att["user2"].State != jobs.StateAmbiguous || len(cr.NeedPerson) != 0 {
			t.Fatalf("after the decisions: %+v %v", att, cr.NeedPerson)
		}

		// An ignored account never counts towards a surge.
		var many []sources.Account
		for i := 10; i < 70; i++ {
			u := user(i, jobs.EndUser)
			many = append(many, u)
			decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: u.ID, Username: u.Username, Kind: jobs.DecisionIgnore, Reason: "test accounts"})
		}
		acme.ad.set(append(users, many...)...)
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Held != 0 || cr.Counts.Skipped != 61 {
			t.Fatalf("ignored accounts counted by the surge guard: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}

		// A chosen entry that was deleted turns the account ambiguous again.
		u3 := ambiguousUsers(acme, 4)[3]
		acme.ad.set(append(users, u3)...)
		decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: u3.ID, Username: "user3", Kind: jobs.DecisionMatch, VaultRef: "gone-1"})
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		att = attentionOf(t, s)
		if cr.Counts.Ambiguous != 1 || att["user3"].State != jobs.StateAmbiguous || !strings.Contains(att["user3"].Reason, "entry gone-1, chosen by tech on 2026-11-20, no longer exists") {
			t.Fatalf("deleted choice: %+v; %+v", cr.Counts, att["user3"])
		}
	})
}

// An account imported beside an uncategorised entry stays a possible
// duplicate in the store until a technician settles it; accounts gone
// from a source read whole no longer need a person.
func TestPossibleDuplicatesStayUntilSettled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.vault.entries["org-acme"] = append(acme.vault.entries["org-acme"], sinks.VaultEntry{Ref: "old-1", Name: "User 1 old", Username: "user1"})
		amb := ambiguousUsers(acme, 1)[0] // user0
		acme.ad.set(amb, user(1, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		att := attentionOf(t, s)
		if att["user1"].State != jobs.StatePossibleDuplicate || !strings.Contains(att["user1"].Reason, "old-1") || att["user0"].State != jobs.StateAmbiguous {
			t.Fatalf("after import: %+v", att)
		}
		// user0 leaves the directory; user1 stays imported and a possible duplicate.
		acme.ad.set(user(1, jobs.EndUser))
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		att = attentionOf(t, s)
		if len(att) != 1 || att["user1"].State != jobs.StatePossibleDuplicate || cr.NeedPerson[jobs.StatePossibleDuplicate] != 1 {
			t.Fatalf("next run: %+v %v", att, cr.NeedPerson)
		}
	})
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// firstUsers are end users 0 to n-1.
func firstUsers(n int) []sources.Account {
	var users []sources.Account
	for i := range n {
		users = append(users, user(i, jobs.EndUser))
	}
	return users
}

// A stop (SIGTERM) in the middle of the pass lets no more accounts in:
// every account created in a sink by then is recorded and mailed, none is
// created after the stop but those already in a worker's hands, and every
// account is reported once; the next run imports the rest, none twice.
func TestStopFinishesTheAccountsInHand(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(firstUsers(200)...)
		stop, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The stop comes during the 10th vault create; atStop counts the
		// creates started by the time it is done.
		var once sync.Once
		atStop := 0
		acme.vault.failCreate = func(sinks.NewVaultEntry) error {
			if acme.vault.creates.Load() >= 10 {
				once.Do(func() {
					cancel()
					atStop = int(acme.vault.creates.Load())
				})
			}
			return nil
		}
		rep, accounts := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true, Stop: stop})
		cr, n := customerReport(rep, "acme"), customerReport(rep, "acme").Counts
		created := int(acme.vault.creates.Load())
		// Only the accounts in the other workers' hands at the stop may be
		// created after it; they are finished.
		if atStop < 10 || created > atStop+jobs.ApplyWorkers-1 {
			t.Fatalf("%d vault creates, %d when the stop came: at most %d more accounts were in hand", created, atStop, jobs.ApplyWorkers-1)
		}
		ledger := ledgerOf(t, s, "acme")
		if n.Imported != created || n.VaultCreated != created || int(acme.psa.creates.Load()) != created || len(ledger) != created || len(acme.mail.sent) != created || n.Failed != 0 {
			t.Fatalf("%d accounts created: %+v, PSA creates %d, ledger %d, mails %d", created, n, acme.psa.creates.Load(), len(ledger), len(acme.mail.sent))
		}
		for _, l := range ledger {
			if l.VaultRef == "" || l.PSARef == "" || l.Welcome != jobs.WelcomeSent {
				t.Fatalf("an account in hand was not finished: %+v", l)
			}
		}
		if want := fmt.Sprintf("stopped after %d of 200 new accounts", created); !slices.Contains(cr.Notices, want) {
			t.Fatalf("notices %q, want %q", cr.Notices, want)
		}
		seen := map[string]bool{}
		for _, p := range accounts["acme"] {
			if seen[p.ID] {
				t.Fatalf("%s reported twice", p.Username)
			}
			seen[p.ID] = true
			if p.Action == jobs.ActionSkip && p.Reason != "the run was stopped before this account; it is imported next run" {
				t.Fatalf("%s skipped: %q", p.Username, p.Reason)
			}
		}
		if len(seen) != 200 || n.Skipped != 200-created {
			t.Fatalf("%d accounts reported, %d skipped, want 200 and %d", len(seen), n.Skipped, 200-created)
		}

		acme.vault.failCreate = nil
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
		if cr.Counts.Imported != 200-created || cr.Counts.AlreadyImported != created || acme.vault.creates.Load() != 200 || len(acme.mail.sent) != 200 {
			t.Fatalf("next run: %+v, vault creates %d, mails %d", cr.Counts, acme.vault.creates.Load(), len(acme.mail.sent))
		}
	})
}

// An account whose vault create is slow holds back no other: they are
// created, recorded and mailed while it waits.
func TestASlowAccountDoesNotHoldBackTheOthers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(firstUsers(100)...)
		mails := func() int {
			acme.mail.mu.Lock()
			defer acme.mail.mu.Unlock()
			return len(acme.mail.sent)
		}
		recorded, mailed := -1, -1
		acme.vault.failCreate = func(e sinks.NewVaultEntry) error {
			if !strings.HasPrefix(e.Name, "User 0 (") {
				return nil
			}
			// Held until the 99 others are recorded and mailed, or long
			// enough to tell that they wait for this one.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				recorded, mailed = len(ledgerOf(t, s, "acme")), mails()
				if recorded == 99 && mailed == 99 {
					break
				}
			}
			return nil
		}
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
		if recorded != 99 || mailed != 99 {
			t.Fatalf("while one account's create was held: %d others recorded and %d mailed, want 99", recorded, mailed)
		}
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != 100 || len(ledgerOf(t, s, "acme")) != 100 || mails() != 100 {
			t.Fatalf("%s %q %+v; ledger %d, mails %d", cr.Status, cr.Error, cr.Counts, len(ledgerOf(t, s, "acme")), mails())
		}
	})
}

// The vault's and the PSA's indexes are read at the same time: a customer
// with a large vault and a large PSA does not wait for one listing, then
// the other, before its first account is applied.
func TestVaultAndPSAIndexesAreReadTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(firstUsers(3)...)
		sawPSA := false
		acme.vault.whileIndexing = func() {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if acme.psa.indexes.Load() > 0 {
					sawPSA = true
					return
				}
			}
		}
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != 3 {
			t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		if !sawPSA {
			t.Error("the PSA's contacts were not listed while the vault's entries were: the indexes are read one after the other")
		}
	})
}

// The accounts that need a person are listed by username, although the
// pipeline finishes them in no set order (here the last ones first).
func TestAttentionIsListedInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(firstUsers(24)...)
		acme.vault.failCreate = func(e sinks.NewVaultEntry) error {
			var i int
			fmt.Sscanf(e.Name, "User %d", &i)
			time.Sleep(time.Duration(24-i) * 3 * time.Millisecond)
			return errors.New("HTTP 503")
		}
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
		if len(cr.Attention) != 24 {
			t.Fatalf("%d accounts need a person, want 24: %+v", len(cr.Attention), cr.Counts)
		}
		if !slices.IsSortedFunc(cr.Attention, func(a, b jobs.AccountPlan) int { return strings.Compare(a.Username, b.Username) }) {
			var names []string
			for _, a := range cr.Attention {
				names = append(names, a.Username)
			}
			t.Errorf("attention not in username order: %v", names)
		}
	})
}

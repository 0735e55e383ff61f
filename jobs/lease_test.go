package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/sirupsen/logrus"
	"io"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// losingStore takes leases normally until lose is set; from then on every
// renewal finds another holder (or fails, with renewErr) and the number of
// vault creates started by then is noted.
type losingStore struct {
	*store.Store
	lose     atomic.Bool
	renewErr error
	creates  *atomic.Int32
	atLoss   atomic.Int32
}

func (s *losingStore) RenewLease(ctx context.Context, customer, holder string, token int64, ttl time.Duration) (bool, error) {
	if s.lose.Load() {
		s.atLoss.CompareAndSwap(0, s.creates.Load())
		if s.renewErr != nil {
			return false, s.renewErr
		}
		return false, nil
	}
	return s.Store.RenewLease(ctx, customer, holder, token, ttl)
}

// lostHook notes that the runner said it lost a lease: it says so only
// after the loss is visible to the pass.
type lostHook struct {
	once sync.Once
	said chan struct{}
	// onLoss, when set, runs as the runner says it lost the lease.
	onLoss func()
}

func (h *lostHook) Levels() []logrus.Level { return []logrus.Level{logrus.ErrorLevel} }

func (h *lostHook) Fire(e *logrus.Entry) error {
	if strings.Contains(e.Message, "stopping before the next write") {
		h.once.Do(func() {
			if h.onLoss != nil {
				h.onLoss()
			}
			close(h.said)
		})
	}
	return nil
}

// A runner that loses its customer's lease mid-pass stops before its next
// sink call, records nothing more, and reports the customer failed with
// the reason; the next run imports the rest, creating nothing twice.
func TestLostLeaseStopsTheImport(t *testing.T) {
	for _, renewErr := range []error{nil, errors.New("connection refused")} {
		name := "taken"
		if renewErr != nil {
			name = "renewal fails"
		}
		t.Run(name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f := setup(t, s)
				acme := f.worlds["acme"]
				ls := &losingStore{Store: s, renewErr: renewErr, creates: &acme.vault.creates}
				f.runner.Store = ls
				f.runner.LeaseTTL = 300 * time.Millisecond // renewed every 100 ms
				var users []sources.Account
				for i := range 300 {
					users = append(users, user(i, jobs.EndUser))
				}
				acme.ad.set(users...)
				// From the 20th create on, the renewal finds the lease lost, and
				// every create waits until the runner has said so, so that the
				// pass cannot end first however slow the machine is.
				// The ledger rows there are when the runner knows the lease
				// is lost: not one may be written after.
				rowsAtLoss := -1
				lost := &lostHook{said: make(chan struct{}), onLoss: func() {
					rowsAtLoss = 0
					for _, err := range s.ImportedAccounts(context.Background(), "acme") {
						if err == nil {
							rowsAtLoss++
						}
					}
				}}
				log := logrus.New()
				log.SetOutput(io.Discard)
				log.AddHook(lost)
				f.runner.Log = log
				acme.vault.failCreate = func(sinks.NewVaultEntry) error {
					if acme.vault.creates.Load() >= 20 {
						ls.lose.Store(true)
						<-lost.said
					}
					return nil
				}
				cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
				if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "lease") || !strings.Contains(cr.Error, "customer acme") {
					t.Fatalf("status %s, error %q", cr.Status, cr.Error)
				}
				if renewErr != nil && !strings.Contains(cr.Error, "connection refused") {
					t.Errorf("the error does not say why the renewal failed: %q", cr.Error)
				}
				created, atLoss := acme.vault.creates.Load(), ls.atLoss.Load()
				if atLoss == 0 || created == 300 {
					t.Fatalf("the lease was never lost mid-pass (creates %d, at loss %d)", created, atLoss)
				}
				// Only calls already under way when the lease was lost may finish.
				if created-atLoss > 8 {
					t.Errorf("%d vault creates started after the lease was lost (%d at loss)", created-atLoss, atLoss)
				}
				ledger := ledgerOf(t, s, "acme")
				if len(ledger) != rowsAtLoss || len(acme.mail.sent) > len(ledger) {
					t.Errorf("after the loss: %d ledger rows written (%d at the loss, %d creates), %d emails", len(ledger)-rowsAtLoss, rowsAtLoss, atLoss, len(acme.mail.sent))
				}

				// The next run, under a lease that holds, finishes the job.
				acme.vault.failCreate = nil
				f.runner.Store, f.runner.LeaseTTL = s, time.Minute
				cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
				if cr.Status != jobs.StatusOK || len(ledgerOf(t, s, "acme")) != 300 {
					t.Fatalf("next run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
				}
				for i := range 300 {
					if n := acme.vault.count("org-acme", fmt.Sprint("user", i)); n != 1 {
						t.Fatalf("user%d has %d vault entries", i, n)
					}
				}
				if n := len(acme.mail.sent); n != 300 {
					t.Fatalf("%d welcome emails for 300 users", n)
				}
			})
		})
	}
}

// Two runners of one process (as two containers sharing a host name and
// pid would be) never take each other for the same lease holder.
func TestLeaseHolderNamesAreUnique(t *testing.T) {
	a, b := &jobs.Runner{}, &jobs.Runner{}
	if a.HolderName() == b.HolderName() {
		t.Fatalf("two runners share the holder name %q", a.HolderName())
	}
	if a.HolderName() != a.HolderName() {
		t.Fatal("a runner's holder name changes")
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(a.HolderName(), fmt.Sprintf("%s/%d/", host, os.Getpid())) {
		t.Errorf("holder %q does not name the host and process", a.HolderName())
	}
	if (&jobs.Runner{Holder: "replica-2"}).HolderName() != "replica-2" {
		t.Error("an explicit Holder is not used")
	}
	// Both take the same customer's lease: only the first gets it.
	s := storetest.SQLite(t)
	ctx := context.Background()
	l, err := jobs.AcquireLease(ctx, s, "acme", a.HolderName(), time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	var held *jobs.ErrLeaseHeld
	if _, err := jobs.AcquireLease(ctx, s, "acme", b.HolderName(), time.Minute, nil); !errors.As(err, &held) {
		t.Fatalf("second holder: %v, want ErrLeaseHeld", err)
	}
}

// An import whose lease the database says another holder has (taken
// while this process was paused, say, its own clock still saying it
// holds) records nothing: every transaction of the pass holds the lease
// row under its token, so no ledger row, audit event or welcome email
// follows; the next run, under a lease that holds, matches the vault
// entries the refused run created instead of creating them again.
func TestImportRecordsOnlyUnderItsLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		before := auditActions(t, s)
		f.runner.Store = takenStore{s}
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "lease") {
			t.Errorf("under a lease another holds: status %s, error %q", cr.Status, cr.Error)
		}
		if n := len(ledgerOf(t, s, "acme")); n != 0 {
			t.Errorf("%d ledger rows written under a lease another holds", n)
		}
		if got := auditActions(t, s); !maps.Equal(got, before) {
			t.Errorf("audit events written under a lease another holds: before %v, after %v", before, got)
		}
		if n := len(acme.mail.sent); n != 0 {
			t.Errorf("%d welcome emails sent under a lease another holds", n)
		}

		f.runner.Store = s
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK || len(ledgerOf(t, s, "acme")) != 2 {
			t.Fatalf("next run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		for _, u := range []string{"user1", "user2"} {
			if n := acme.vault.count("org-acme", u); n != 1 {
				t.Errorf("%s has %d vault entries", u, n)
			}
		}
	})
}

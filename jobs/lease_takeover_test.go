package jobs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// deadPid is the pid of a process that ran and is gone.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot start a process to take the pid of: %v", err)
	}
	return cmd.Process.Pid
}

// A lease whose holder is provably gone (its process on this host is not
// running, or the host rebooted since) is taken over at once instead of
// blocking the customer for the lease's whole time; a holder that may be
// alive keeps it, and the refusal says who holds it and until when.
func TestLeaseOfAGoneHolderIsTakenOverAtOnce(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: a holder cannot be proved gone on this system")
	}
	cases := []struct {
		name   string
		holder func(t *testing.T) string
		gone   bool
	}{
		{"process gone", func(t *testing.T) string { return jobs.HolderFor(deadPid(t), "1", "") }, true},
		{"host rebooted since", func(t *testing.T) string {
			return jobs.HolderFor(os.Getpid(), jobs.ThisProcessStart(), "0000-another-boot")
		}, true},
		{"pid taken by another process", func(t *testing.T) string { return jobs.HolderFor(os.Getpid(), "1", "") }, true},
		{"alive: this very process", func(t *testing.T) string { return jobs.HolderFor(os.Getpid(), jobs.ThisProcessStart(), "") }, false},
		{"another host", func(t *testing.T) string { return "elsewhere.example/1/abc boot=x start=1 pidns=pid:[1]" }, false},
		{"a name of another form", func(t *testing.T) string { return "replica-2" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				old := tc.holder(t)
				first, ok, err := s.AcquireLease(ctx, "acme", old, time.Hour)
				if err != nil || !ok {
					t.Fatalf("first holder: %v %v", ok, err)
				}
				l, err := jobs.AcquireLease(ctx, s, "acme", "newcomer", time.Hour, quietLog())
				if !tc.gone {
					var held *jobs.ErrLeaseHeld
					if !errors.As(err, &held) || !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), " until ") || !strings.Contains(err.Error(), "from now") {
						t.Fatalf("a live holder's lease: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("the lease of a gone holder was not taken over: %v", err)
				}
				defer l.Release(ctx)
				if l.Token() <= first {
					t.Fatalf("token %d after %d: the old holder's writes would pass", l.Token(), first)
				}
				// The old holder's writes are fenced.
				err = s.Update(ctx, func(tx jobs.Tx) error { return tx.HoldLease(ctx, "acme", old, first) })
				if !errors.Is(err, jobs.ErrLeaseLost) {
					t.Fatalf("the gone holder still passes the fence: %v", err)
				}
			})
		})
	}
}

// Naming a busy customer is a failure of the command (exit 1), with who
// holds it; the scheduler's own busy customers are another replica's work.
func TestBusyNamedCustomerFailsTheRun(t *testing.T) {
	s := storetest.SQLite(t)
	f, _ := rotationWorld(t, s, 1)
	ctx := context.Background()
	other := jobs.HolderFor(os.Getpid(), jobs.ThisProcessStart(), "") // alive
	if _, ok, err := s.AcquireLease(ctx, "acme", other, time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	f.runner.Key = rotationKey
	rot, err := f.runner.Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme"}, Now: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rot.Failed() || rot.Customers[0].Status != jobs.StatusBusy || !strings.Contains(rot.Customers[0].Error, other) {
		t.Fatalf("rotate --customer acme while busy: %s %+v", rot.Status, rot.Customers[0])
	}
	rep := f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
	if !rep.Failed() || customerReport(rep, "acme").Status != jobs.StatusBusy {
		t.Fatalf("run --customer acme while busy: %s", rep.Status)
	}
	all := f.run(t, jobs.RunOptions{})
	if customerReport(all, "acme").Status != jobs.StatusBusy || customerReport(all, "bravo").Status != jobs.StatusOK || all.Failed() {
		t.Fatalf("a scheduled run: %s", all.Status)
	}
}

// hangingStore's renewals never answer.
type hangingStore struct{ *store.Store }

func (hangingStore) RenewLease(ctx context.Context, _, _ string, _ int64, _ time.Duration) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// A renewal has a deadline: one that never answers loses the lease in
// time, instead of leaving a holder writing on a lease another may take.
func TestStuckRenewalLosesTheLease(t *testing.T) {
	s := hangingStore{storetest.SQLite(t)}
	l, err := jobs.AcquireLease(context.Background(), s, "acme", "me", 300*time.Millisecond, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	select {
	case <-l.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a renewal that never answers never lost the lease")
	}
	if err := l.Lost(); err == nil || !strings.Contains(err.Error(), "customer acme") {
		t.Fatalf("why: %v", err)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// appendEvents writes events of one customer ("" tenant-wide) in one
// transaction.
func appendEvents(t *testing.T, s *store.Store, customer string, actions ...string) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx jobs.Tx) error {
		for i, a := range actions {
			if _, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: a, Customer: customer, Subject: fmt.Sprintf("ad:%s-%d", a, i), After: `{"n":1}`}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append to %s: %v", jobs.ChainName(customer), err)
	}
}

func chainOf(t *testing.T, s *store.Store, customer string) []jobs.AuditEvent {
	t.Helper()
	var out []jobs.AuditEvent
	for e, err := range s.AuditChain(context.Background(), customer) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func headOf(t *testing.T, s *store.Store, customer string) jobs.AuditHead {
	t.Helper()
	heads, err := s.AuditHeads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if h.Customer == customer {
			return h
		}
	}
	t.Fatalf("no head for the chain %s in %v", jobs.ChainName(customer), heads)
	return jobs.AuditHead{}
}

func exec(t *testing.T, s *store.Store, q string, args ...any) {
	t.Helper()
	if _, err := s.DB().Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rebuildChain is what someone who can write the database does after
// deleting events: renumber the chain, hash it again with what they have
// (key, nil for plain SHA-256) and move the head, recording keyID as the
// head's key.
func rebuildChain(t *testing.T, s *store.Store, customer string, key *jobs.AuditKey, keyID string) {
	t.Helper()
	prev := jobs.GenesisHash
	events := chainOf(t, s, customer)
	for i, e := range events {
		e.Seq, e.PrevHash = int64(i+1), prev
		e.Hash = key.Hash(e)
		exec(t, s, "UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?", e.Seq, e.PrevHash, e.Hash, e.ID)
		prev = e.Hash
	}
	exec(t, s, "UPDATE audit_heads SET seq = ?, hash = ?, key_id = ? WHERE customer_id = ?", len(events), prev, keyID, customer)
}

// seedLog writes a tenant-wide event and, for two customers, events of
// an import and of password reads, in several transactions.
func seedLog(t *testing.T, s *store.Store) {
	t.Helper()
	appendEvents(t, s, "", "policy.create")
	for _, c := range []string{"acme", "globex"} {
		appendEvents(t, s, c, "customer.create")
		appendEvents(t, s, c, "import.account", "import.vault.created")
		appendEvents(t, s, c, "rotation.password-read", "rotation.password-read")
		appendEvents(t, s, c, "import.account", "rotation.password-read", "rotation.password-read")
		appendEvents(t, s, c, "welcome.sent")
	}
}

func TestAuditTamperingIsFound(t *testing.T) {
	otherKey, err := secret.NewKey([]byte("another master key of 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	withoutPasswordReads := func(t *testing.T, s *store.Store) {
		exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'acme' AND action = 'rotation.password-read'")
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *store.Store)
		want   string
	}{
		{"edited", func(t *testing.T, s *store.Store) {
			exec(t, s, "UPDATE audit_events SET actor = 'mallory' WHERE customer_id = 'acme' AND seq = 2")
		}, "audit chain acme broken at seq 2"},
		{"deleted", func(t *testing.T, s *store.Store) {
			exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'acme' AND seq = 2")
		}, "the events at seq 2 to 2 are missing"},
		{"deleted from the end", func(t *testing.T, s *store.Store) {
			exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'acme' AND seq = 9")
		}, "events deleted from the end"},
		{"reordered", func(t *testing.T, s *store.Store) {
			exec(t, s, "UPDATE audit_events SET seq = 0 WHERE customer_id = 'acme' AND seq = 2")
			exec(t, s, "UPDATE audit_events SET seq = 2 WHERE customer_id = 'acme' AND seq = 3")
			exec(t, s, "UPDATE audit_events SET seq = 3 WHERE customer_id = 'acme' AND seq = 0")
		}, "audit chain acme broken at seq 2"},
		{"moved to another customer", func(t *testing.T, s *store.Store) {
			last := chainOf(t, s, "acme")[7]
			exec(t, s, "UPDATE audit_events SET customer_id = 'globex', seq = 100 WHERE customer_id = 'acme' AND seq = 9")
			exec(t, s, "UPDATE audit_heads SET seq = 8, hash = ? WHERE customer_id = 'acme'", last.Hash)
		}, "audit chain globex broken at seq 100"},
		{"password reads deleted, chain rebuilt with SHA-256", func(t *testing.T, s *store.Store) {
			withoutPasswordReads(t, s)
			rebuildChain(t, s, "acme", nil, storetest.AuditKey.ID())
		}, "its hash is not the chain's HMAC"},
		{"password reads deleted, chain rebuilt unkeyed", func(t *testing.T, s *store.Store) {
			withoutPasswordReads(t, s)
			rebuildChain(t, s, "acme", nil, "")
		}, "the chain is unkeyed although this log is keyed"},
		{"password reads deleted, chain rebuilt with another key", func(t *testing.T, s *store.Store) {
			withoutPasswordReads(t, s)
			rebuildChain(t, s, "acme", jobs.NewAuditKey(otherKey), storetest.AuditKey.ID())
		}, "its hash is not the chain's HMAC"},
		{"head deleted", func(t *testing.T, s *store.Store) {
			exec(t, s, "DELETE FROM audit_heads WHERE customer_id = 'acme'")
		}, "the chain has events but no head"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				seedLog(t, s)
				if n, err := jobs.VerifyAudit(ctx, s); err != nil || n != 1+2*9 {
					t.Fatalf("untouched log: %d events, %v", n, err)
				}
				tc.tamper(t, s)
				_, err := jobs.VerifyAudit(ctx, s)
				var ce *jobs.ChainError
				if !errors.As(err, &ce) {
					t.Fatalf("verify after %s: %v, want a chain error", tc.name, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("verify said %q, want it to contain %q", err, tc.want)
				}
			})
		})
	}
}

func TestPerCustomerChains(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const customers, rounds = 8, 6
		var wg sync.WaitGroup
		errs := make(chan error, customers*rounds+rounds)
		for c := range customers {
			wg.Go(func() {
				for r := range rounds {
					err := s.Update(ctx, func(tx jobs.Tx) error {
						for i := range 3 {
							if _, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "import.account", Customer: fmt.Sprintf("c%d", c), Subject: fmt.Sprintf("ad:%d-%d", r, i)}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Go(func() {
			for r := range rounds {
				if err := s.Update(ctx, func(tx jobs.Tx) error {
					_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "policy.update", Subject: fmt.Sprint(r)})
					return err
				}); err != nil {
					errs <- err
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		res, err := jobs.CheckAudit(ctx, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Err() != nil || res.Events != customers*rounds*3+rounds || len(res.Chains) != customers+1 || res.Unkeyed() != 0 {
			t.Fatalf("%d events in %d chains (%d unkeyed): %v", res.Events, len(res.Chains), res.Unkeyed(), res.Err())
		}
		if tenant := res.Chains[0].Head; tenant.Chain() != jobs.TenantChain || tenant.Seq != rounds || tenant.KeyID != storetest.AuditKey.ID() {
			t.Fatalf("tenant chain head %+v", tenant)
		}
		for _, ch := range res.Chains[1:] {
			if ch.Head.Seq != rounds*3 || ch.Events != rounds*3 || !ch.Head.Keyed() {
				t.Fatalf("chain %s: head %s, %d events", ch.Head.Chain(), ch.Head, ch.Events)
			}
			// Each chain's events are in the order of writing, ids too.
			events := chainOf(t, s, ch.Head.Customer)
			for i := 1; i < len(events); i++ {
				if events[i].ID <= events[i-1].ID {
					t.Fatalf("chain %s: seq %d has id %d after id %d", ch.Head.Chain(), events[i].Seq, events[i].ID, events[i-1].ID)
				}
			}
		}
	})
}

func TestKeptHeadFindsARewoundChain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedLog(t, s)
		early := headOf(t, s, "acme")
		appendEvents(t, s, "acme", "rotation.password-read", "rotation.password-read")
		late := headOf(t, s, "acme")
		check := func(kept ...jobs.AuditHead) error {
			t.Helper()
			res, err := jobs.CheckAudit(ctx, s, kept)
			if err != nil {
				t.Fatal(err)
			}
			return res.Err()
		}
		if err := check(early); err != nil {
			t.Fatalf("the chain extends its earlier head: %v", err)
		}
		if err := check(late); err != nil {
			t.Fatalf("the chain ends at its head: %v", err)
		}

		// Rewound to the earlier head: the chain alone still verifies,
		// the kept head does not.
		exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'acme' AND seq > ?", early.Seq)
		exec(t, s, "UPDATE audit_heads SET seq = ?, hash = ? WHERE customer_id = 'acme'", early.Seq, early.Hash)
		if _, err := jobs.VerifyAudit(ctx, s); err != nil {
			t.Fatalf("a rewound chain is intact on its own: %v", err)
		}
		if err := check(late); err == nil || !strings.Contains(err.Error(), "it was rewound") {
			t.Fatalf("rewound chain against the kept head: %v", err)
		}
		// Written on from there, the chain passes the kept seq again, with
		// other hashes.
		appendEvents(t, s, "acme", "import.account", "import.account")
		if err := check(late); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("audit chain acme broken at seq %d", late.Seq)) || !strings.Contains(err.Error(), "rewritten since") {
			t.Fatalf("rewritten chain against the kept head: %v", err)
		}
		// A chain deleted whole, head and all.
		exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'globex'")
		exec(t, s, "DELETE FROM audit_heads WHERE customer_id = 'globex'")
		kept := jobs.AuditHead{Customer: "globex", Seq: 1, Hash: strings.Repeat("ab", 32)}
		if err := check(kept); err == nil || !strings.Contains(err.Error(), "the chain no longer exists") {
			t.Fatalf("deleted chain against the kept head: %v", err)
		}
	})
}

// TestOneCustomersWritesDoNotWaitForAnother holds one customer's head
// locked from another connection: another customer's write goes through,
// that customer's waits (and, with a one-second lock wait, gives up).
func TestOneCustomersWritesDoNotWaitForAnother(t *testing.T) {
	url := storetest.MySQLURL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s, err := store.Open(context.Background(), url+sep+"innodb_lock_wait_timeout=1", store.WithAuditKey(storetest.AuditKey))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	appendEvents(t, s, "acme", "customer.create")
	appendEvents(t, s, "globex", "customer.create")
	appendEvents(t, s, "", "policy.create")

	holder, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	var seq int64
	if err := holder.GetContext(ctx, &seq, "SELECT seq FROM audit_heads WHERE customer_id = 'acme' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, "globex", "import.account")
	appendEvents(t, s, "", "policy.update")
	appendEvents(t, s, "initech", "customer.create") // a new chain
	err = s.Update(ctx, func(tx jobs.Tx) error {
		_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "import.account", Customer: "acme"})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "Lock wait timeout") {
		t.Fatalf("a write to the locked chain: %v, want a lock wait timeout", err)
	}
	holder.Rollback()
	appendEvents(t, s, "acme", "import.account")
	if n, err := jobs.VerifyAudit(ctx, s); err != nil || n != 7 {
		t.Fatalf("%d events: %v", n, err)
	}
}

// TestLockChainSerialisesReadersThatWrite: a transaction that locks a
// chain up front runs alone among the writers of that chain, so what it
// reads stays true until it commits: of two that read a value and write
// it back longer, neither loses the other's update.
func TestLockChainSerialisesReadersThatWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		appendEvents(t, s, "", "policy.create")
		firstLocked, release := make(chan struct{}), make(chan struct{})
		seen := make([]string, 2)
		var wg sync.WaitGroup
		change := func(i int, locked func()) {
			defer wg.Done()
			err := s.Update(ctx, func(tx jobs.Tx) error {
				if err := tx.LockChain(ctx, ""); err != nil {
					return err
				}
				locked()
				v, err := tx.State(ctx, "", "counter")
				if err != nil {
					return err
				}
				seen[i] = v
				if err := tx.PutState(ctx, "", "counter", v+"x"); err != nil {
					return err
				}
				_, err = tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "policy.update", Subject: fmt.Sprint(i)})
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}
		wg.Add(2)
		go change(0, func() { close(firstLocked); <-release })
		<-firstLocked
		go change(1, func() {})
		// The second waits for the first's lock (SQLite: for its single
		// writer), however long it is given to overtake.
		time.Sleep(100 * time.Millisecond)
		close(release)
		wg.Wait()
		if v, _ := s.State(ctx, "", "counter"); v != "xx" || seen[1] != "x" {
			t.Fatalf("counter %q, the second read %q: an update was lost", v, seen[1])
		}
	})
}

// TestOneCustomersTransactionsDoNotDeadlockOnGaps: two transactions of
// one customer, each checking that an account has no open rotation and
// inserting one (a locking read of a missing row, then an insert), the
// first inserting a second row after the other started. At REPEATABLE
// READ both reads lock the same gap and the inserts deadlock; the store's
// write transactions lock rows only.
func TestOneCustomersTransactionsDoNotDeadlockOnGaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		start := func(tx jobs.Tx, id string) error {
			return tx.StartRotation(ctx, jobs.PasswordRotation{Customer: "acme", Source: "ad", SourceID: id, ID: "r-" + id, Username: id, State: jobs.RotationPending, Target: "Active Directory"})
		}
		firstIn, secondTried := make(chan struct{}), make(chan struct{})
		errs := make(chan error, 2)
		go func() {
			errs <- s.Update(ctx, func(tx jobs.Tx) error {
				if err := start(tx, "g1"); err != nil {
					return err
				}
				close(firstIn)
				<-secondTried
				return start(tx, "g3")
			})
		}()
		<-firstIn
		go func() {
			errs <- s.Update(ctx, func(tx jobs.Tx) error {
				return start(tx, "g2")
			})
		}()
		// The second is under way (at REPEATABLE READ, waiting on the
		// first's gap) before the first inserts again, however slow it is.
		time.Sleep(200 * time.Millisecond)
		close(secondTried)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		rs, err := s.Rotations(ctx, "acme")
		if err != nil || len(rs) != 3 {
			t.Fatalf("%d rotations, %v", len(rs), err)
		}
	})
}

// TestWritersStartingOneChainQueue: transactions that start the same new
// chain at once take turns; none fails, and the chain holds every event.
func TestWritersStartingOneChainQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				errs <- s.Update(ctx, func(tx jobs.Tx) error {
					if err := tx.PutState(ctx, "newco", fmt.Sprint("w", i), "x"); err != nil {
						return err
					}
					_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "customer.create", Customer: "newco", Subject: fmt.Sprint(i)})
					return err
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, err := jobs.VerifyAudit(ctx, s); err != nil || n != writers || headOf(t, s, "newco").Seq != writers {
			t.Fatalf("%d events: %v", n, err)
		}
	})
}

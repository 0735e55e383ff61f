package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// TestLegacyHashIsTheOldChain pins the hash of the chain written before
// the per-customer chains: the value the code of that time computed for
// this event (ComputeHash at commit 5b2051c).
func TestLegacyHashIsTheOldChain(t *testing.T) {
	e := jobs.AuditEvent{ID: 7, At: time.UnixMicro(1700000000123456).UTC(), Actor: "alice", Action: "customer.update", Customer: "acme", Subject: "acme",
		Before: `{"a":1}`, After: `{"a":2}`, PrevHash: jobs.GenesisHash}
	if got := e.LegacyHash(); got != "d15afa99f4d4b0c945281c824dd073d3dd55b18f6fff184e36196aa844225ac4" {
		t.Fatalf("LegacyHash = %s", got)
	}
}

// legacyEvents are the events of an older release's log: one chain over
// every customer, in id order.
var legacyEvents = []struct{ customer, action string }{
	{"", "integration.update"}, {"acme", "customer.create"}, {"globex", "customer.create"}, {"acme", "import.account"},
	{"acme", "rotation.password-read"}, {"globex", "import.account"}, {"", "policy.update"}, {"acme", "welcome.sent"},
}

// openLegacy makes a database as the release before per-customer chains
// left it (migrations up to 0004) and writes its single SHA-256 chain and
// head, as that release's Store.Update did.
func openLegacy(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	old, err := store.OpenAt(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	prev := jobs.GenesisHash
	at := time.UnixMicro(1700000000000000).UTC()
	for i, le := range legacyEvents {
		e := jobs.AuditEvent{ID: int64(i + 1), At: at.Add(time.Duration(i) * time.Second), Actor: "alice", Action: le.action, Customer: le.customer, Subject: le.action, After: `{"i":1}`, PrevHash: prev}
		e.Hash = e.LegacyHash()
		if _, err := old.DB().Exec("INSERT INTO audit_events (id, at, actor, action, customer_id, subject, before_doc, after_doc, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?)",
			e.ID, e.At.UnixMicro(), e.Actor, e.Action, e.Customer, e.Subject, e.After, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	if _, err := old.DB().Exec("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1", len(legacyEvents), prev); err != nil {
		t.Fatal(err)
	}
}

// rechainEvents are the audit.rechain events of the log, oldest first.
func rechainEvents(t *testing.T, s *store.Store) []store.RechainReport {
	t.Helper()
	var out []store.RechainReport
	for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: ""}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Action == "audit.rechain" {
			var r store.RechainReport
			if err := json.Unmarshal([]byte(e.After), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

func TestMigrationFromALogOfOneChain(t *testing.T) {
	ctx := context.Background()
	t.Run("keyed", func(t *testing.T) {
		storetest.URLs(t, func(t *testing.T, url string) {
			openLegacy(t, url)
			s, err := store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err := jobs.CheckAudit(ctx, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The old events, split per customer, plus the audit.rechain event.
			if res.Err() != nil || res.Events != len(legacyEvents)+1 || len(res.Chains) != 3 || res.Unkeyed() != 0 {
				t.Fatalf("%d events in %d chains (%d unkeyed): %v", res.Events, len(res.Chains), res.Unkeyed(), res.Err())
			}
			if acme := headOf(t, s, "acme"); acme.Seq != 4 || acme.KeyID != storetest.AuditKey.ID() {
				t.Fatalf("acme head %+v", acme)
			}
			rs := rechainEvents(t, s)
			if len(rs) != 1 || rs[0].Legacy == nil || rs[0].Legacy.Events != len(legacyEvents) || rs[0].Legacy.Break != "" || rs[0].Key != storetest.AuditKey.ID() || rs[0].Heads["acme"] != headOf(t, s, "acme").String() {
				t.Fatalf("audit.rechain events: %+v", rs)
			}
			// Each event kept its id, time and content.
			for i, e := range chainOf(t, s, "acme") {
				if e.Seq != int64(i+1) || e.Customer != "acme" || e.At.Year() != 2023 {
					t.Fatalf("acme event %d: %+v", i, e)
				}
			}
			// Opening it again changes nothing; writing goes on.
			s.Close()
			s, err = store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
			if err != nil {
				t.Fatal(err)
			}
			appendEvents(t, s, "acme", "import.account")
			if n, err := jobs.VerifyAudit(ctx, s); err != nil || n != len(legacyEvents)+2 || len(rechainEvents(t, s)) != 1 {
				t.Fatalf("after another open and a write: %d events, %v", n, err)
			}
		})
	})

	t.Run("unkeyed first, then keyed", func(t *testing.T) {
		storetest.URLs(t, func(t *testing.T, url string) {
			openLegacy(t, url)
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			res, err := jobs.CheckAudit(ctx, s, nil)
			if err != nil || res.Err() != nil || res.Unkeyed() != 3 {
				t.Fatalf("unkeyed: %+v, %v", res, err)
			}
			appendEvents(t, s, "globex", "import.account")
			s.Close()

			s, err = store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err = jobs.CheckAudit(ctx, s, nil)
			if err != nil || res.Err() != nil || res.Unkeyed() != 0 || res.Events != len(legacyEvents)+3 {
				t.Fatalf("keyed: %+v, %v", res, err)
			}
			rs := rechainEvents(t, s)
			if len(rs) != 2 || rs[1].Legacy != nil || len(rs[1].Unkeyed) != 3 || rs[1].Unkeyed["globex"].Events != 3 {
				t.Fatalf("audit.rechain events: %+v", rs)
			}
			// A process without the key may no longer write.
			unkeyed, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer unkeyed.Close()
			err = unkeyed.Update(ctx, func(tx jobs.Tx) error {
				_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "customer.create", Customer: "initech"})
				return err
			})
			if !errors.Is(err, jobs.ErrAuditKey) || !strings.Contains(err.Error(), "AUTOIMPORT_SECRET_KEY is not set") {
				t.Fatalf("an unkeyed write to a keyed log: %v", err)
			}
		})
	})

	t.Run("broken", func(t *testing.T) {
		storetest.URLs(t, func(t *testing.T, url string) {
			openLegacy(t, url)
			// Someone deleted the password read from the old chain.
			old, err := store.OpenAt(ctx, url, 4)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.DB().Exec("DELETE FROM audit_events WHERE id = 5"); err != nil {
				t.Fatal(err)
			}
			old.Close()

			s, err := store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Not re-chained: verify names the break, writes are refused.
			if _, err := jobs.VerifyAudit(ctx, s); err == nil || !strings.Contains(err.Error(), "broken at event 6: events 5 to 5 are missing") {
				t.Fatalf("verify: %v", err)
			}
			err = s.Update(ctx, func(tx jobs.Tx) error { return tx.PutState(ctx, "acme", "x", "y") })
			if !errors.Is(err, store.ErrAuditBroken) || !strings.Contains(err.Error(), "--accept-broken") {
				t.Fatalf("a write: %v", err)
			}
			if _, err := s.Rechain(ctx, "alice", false); !errors.Is(err, store.ErrAuditBroken) {
				t.Fatalf("rechain without accepting the break: %v", err)
			}
			rep, err := s.Rechain(ctx, "alice", true)
			if err != nil || rep.Legacy == nil || !strings.Contains(rep.Legacy.Break, "events 5 to 5 are missing") {
				t.Fatalf("rechain accepting the break: %+v, %v", rep, err)
			}
			if n, err := jobs.VerifyAudit(ctx, s); err != nil || n != len(legacyEvents) {
				t.Fatalf("after re-chaining: %d events, %v", n, err)
			}
			if rs := rechainEvents(t, s); len(rs) != 1 || rs[0].Legacy.Break == "" {
				t.Fatalf("the break is not on record: %+v", rs)
			}
			if err := s.Update(ctx, func(tx jobs.Tx) error { return tx.PutState(ctx, "acme", "x", "y") }); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestUnkeyedChainInAKeyedLogIsLeftForAPerson: once the log is keyed, an
// unkeyed chain (written without the key, or rebuilt by a database
// writer) is neither re-chained by opening the store nor extended.
func TestUnkeyedChainInAKeyedLogIsLeftForAPerson(t *testing.T) {
	ctx := context.Background()
	storetest.URLs(t, func(t *testing.T, url string) {
		s, err := store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		seedLog(t, s)
		exec(t, s, "DELETE FROM audit_events WHERE customer_id = 'acme' AND action = 'rotation.password-read'")
		rebuildChain(t, s, "acme", nil, "")
		again, err := store.Open(ctx, url, store.WithAuditKey(storetest.AuditKey))
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if _, err := jobs.VerifyAudit(ctx, again); err == nil || !strings.Contains(err.Error(), "unkeyed although this log is keyed") {
			t.Fatalf("verify: %v", err)
		}
		err = again.Update(ctx, func(tx jobs.Tx) error {
			_, err := tx.AppendAudit(ctx, jobs.AuditEvent{Actor: "test", Action: "import.account", Customer: "acme"})
			return err
		})
		if !errors.Is(err, jobs.ErrAuditKey) {
			t.Fatalf("a write to the unkeyed chain: %v", err)
		}
		if len(rechainEvents(t, again)) != 0 {
			t.Fatal("opening the store re-chained an unkeyed chain of a keyed log")
		}
		// A person who has looked may re-chain it.
		rep, err := again.Rechain(ctx, "alice", false)
		if err != nil || rep.Unkeyed["acme"].Events != 5 {
			t.Fatalf("rechain: %+v, %v", rep, err)
		}
		if _, err := jobs.VerifyAudit(ctx, again); err != nil {
			t.Fatal(err)
		}
	})
}

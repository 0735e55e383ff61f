package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func exampleTenant(t *testing.T) *jobs.Tenant {
	t.Helper()
	b, err := os.ReadFile("../../examples/tenant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := jobs.ParseTenantFile("tenant.yaml", b)
	if err != nil {
		t.Fatalf("example tenant does not parse: %v", err)
	}
	return tn
}

func countAudit(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	for _, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func TestMigrationsAreIdempotentAndConcurrent(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + t.TempDir() + "/a.db"
		openMany(t, url)
	})
	t.Run("mysql", func(t *testing.T) {
		openMany(t, storetest.MySQLURL(t))
	})
	s := storetest.SQLite(t)
	again, err := s.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", again, err)
	}
}

// openMany starts several stores on one empty database at once: each must
// open, and the schema must be applied exactly once.
func openMany(t *testing.T, url string) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent open: %v", err)
	}
	s, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	applied, err := s.AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != "0001_init" {
		t.Fatalf("applied migrations = %v", applied)
	}
}

func TestApplyIsIdempotentAndRoundTrips(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		admin := &jobs.TenantAdmin{Store: s, Actor: "test"}
		want := exampleTenant(t)
		res, err := admin.Apply(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) == 0 {
			t.Fatal("first apply changed nothing")
		}
		n := countAudit(t, s)
		if n != len(res.Changes) {
			t.Fatalf("audit events = %d, changes = %d", n, len(res.Changes))
		}
		res2, err := admin.Apply(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(res2.Changes) != 0 || countAudit(t, s) != n {
			t.Fatalf("second apply changed %v and audited %d events; want nothing", res2.Changes, countAudit(t, s)-n)
		}
		got, err := s.LoadTenant(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := jobs.EncodeTenantFile(want)
		b, _ := jobs.EncodeTenantFile(got)
		if string(a) != string(b) {
			t.Fatalf("stored tenant differs from the file:\nfile:\n%s\nstored:\n%s", a, b)
		}
		// The export parses back to the same tenant.
		back, err := jobs.ParseTenantFile("export.yaml", b)
		if err != nil {
			t.Fatalf("export does not parse: %v", err)
		}
		if c, _ := jobs.EncodeTenantFile(back); string(c) != string(b) {
			t.Fatal("export does not round-trip")
		}
		if _, err := jobs.VerifyAudit(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPolicyChangeLeavesLedgerSnapshotAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		admin := &jobs.TenantAdmin{Store: s, Actor: "test"}
		tn := exampleTenant(t)
		if _, err := admin.Apply(ctx, tn); err != nil {
			t.Fatal(err)
		}
		loaded, _ := s.LoadTenant(ctx)
		acme, _ := loaded.Customer("acme")
		r := jobs.Resolve(loaded, acme, jobs.EndUser)
		at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		acct := jobs.ImportedAccount{
			Customer: "acme", Source: "ad", SourceID: "6f1c2a9e-0000-0000-0000-000000000001", Type: jobs.EndUser,
			Username: "jdoe", Email: "jdoe@acme.example", VaultIntegration: "IT Glue", VaultRef: "9001",
			SelfServe: r.On(jobs.SelfServe), Options: r.Snapshot(), OptionsOrigin: string(r.Origin) + " " + r.Policy, ImportedAt: at,
		}
		err := s.Update(ctx, func(tx jobs.Tx) error { return tx.InsertImported(ctx, acct) })
		if err != nil {
			t.Fatal(err)
		}
		before := ledger(t, s, "acme")
		if !before[0].Options[jobs.VaultCreate] || before[0].Options[jobs.WelcomeEmail] {
			t.Fatalf("snapshot = %v, want the policy's options", before[0].Options)
		}
		// The policy changes: welcome emails on, vault creation off.
		if err := admin.SetPolicy(ctx, "Standard end users", jobs.Values{jobs.WelcomeEmail: true, jobs.VaultCreate: false}, nil); err != nil {
			t.Fatal(err)
		}
		loaded, _ = s.LoadTenant(ctx)
		acme, _ = loaded.Customer("acme")
		if now := jobs.Resolve(loaded, acme, jobs.EndUser); !now.On(jobs.WelcomeEmail) || now.On(jobs.VaultCreate) {
			t.Fatalf("policy change did not take effect for future imports: %+v", now.Snapshot())
		}
		after := ledger(t, s, "acme")
		if len(after) != 1 || !after[0].Options.Equal(before[0].Options) || after[0].OptionsOrigin != before[0].OptionsOrigin ||
			after[0].SelfServe != before[0].SelfServe || after[0].Welcome != "none" || !after[0].ImportedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Fatalf("ledger changed by a policy change:\nbefore %+v\nafter  %+v", before[0], after[0])
		}
	})
}

// TestLedgerEntriesLeaveOutTheOptionsSnapshot: the passes' ledger read
// is the whole ledger but the snapshot, which it neither reads nor
// decodes (a damaged one fails ImportedAccounts, not LedgerEntries).
func TestLedgerEntriesLeaveOutTheOptionsSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, exampleTenant(t)); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		var accts []jobs.ImportedAccount
		for i, typ := range []jobs.AccountType{jobs.EndUser, jobs.Admin} {
			accts = append(accts, jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: fmt.Sprintf("id-%d", i), Type: typ, Username: fmt.Sprintf("user%d", i),
				UPN: fmt.Sprintf("user%d@acme.example", i), Email: fmt.Sprintf("user%d@acme.example", i), VaultIntegration: "IT Glue", VaultRef: fmt.Sprint(9000 + i),
				PSAIntegration: "ConnectWise PSA", PSARef: fmt.Sprint(100 + i), SelfServe: i == 0, Rotation: i == 1, Welcome: jobs.WelcomePending, State: "active",
				Options: jobs.Values{jobs.VaultCreate: true}, OptionsOrigin: "customer", ImportedAt: at})
		}
		if err := s.Update(ctx, func(tx jobs.Tx) error { return tx.InsertImported(ctx, accts...) }); err != nil {
			t.Fatal(err)
		}
		var entries []jobs.ImportedAccount
		for a, err := range s.LedgerEntries(ctx, "acme") {
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, a)
		}
		full := ledger(t, s, "acme")
		if len(entries) != 2 || len(full) != 2 {
			t.Fatalf("%d entries, %d accounts, want 2", len(entries), len(full))
		}
		for i := range full {
			if entries[i].Options != nil {
				t.Errorf("entry %d has options %v, want none", i, entries[i].Options)
			}
			want := full[i]
			want.Options = nil
			if !reflect.DeepEqual(entries[i], want) {
				t.Errorf("entry %d:\n got %+v\nwant %+v", i, entries[i], want)
			}
		}
		if _, err := s.DB().Exec("UPDATE imported_accounts SET options = 'not json'"); err != nil {
			t.Fatal(err)
		}
		for _, err := range s.LedgerEntries(ctx, "acme") {
			if err != nil {
				t.Fatalf("LedgerEntries read the damaged snapshot: %v", err)
			}
		}
		var damaged error
		for _, err := range s.ImportedAccounts(ctx, "acme") {
			if err != nil {
				damaged = err
			}
		}
		if damaged == nil || !strings.Contains(damaged.Error(), "options snapshot is damaged") {
			t.Fatalf("ImportedAccounts with a damaged snapshot: %v", damaged)
		}
	})
}

func ledger(t *testing.T, s *store.Store, customer string) []jobs.ImportedAccount {
	t.Helper()
	var out []jobs.ImportedAccount
	for a, err := range s.ImportedAccounts(context.Background(), customer) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestAdminChangesAreValidatedAndAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		admin := &jobs.TenantAdmin{Store: s, Actor: "tech@msp"}
		if _, err := admin.Apply(ctx, exampleTenant(t)); err != nil {
			t.Fatal(err)
		}
		n := countAudit(t, s)
		// bluebird is out of end-user policies and has no PSA company.
		err := admin.SetCustomerOptions(ctx, "bluebird", jobs.EndUser, jobs.Values{jobs.PSAMatch: true})
		var re *jobs.RuleError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "not mapped to a PSA company") {
			t.Fatalf("unavailable option: %v", err)
		}
		// acme follows the default end-user policy.
		err = admin.SetCustomerOptions(ctx, "acme", jobs.EndUser, jobs.Values{jobs.SelfServe: false})
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "policy unassign --customer acme") {
			t.Fatalf("customer in a policy: %v", err)
		}
		if countAudit(t, s) != n {
			t.Fatal("refused changes were audited")
		}
		if err := admin.SetCustomerOptions(ctx, "bluebird", jobs.EndUser, jobs.Values{jobs.Paused: false, jobs.VaultMatch: true}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CreatePolicy(ctx, jobs.Policy{Name: "Quiet admins", Type: jobs.Admin, Default: true, Options: jobs.Values{jobs.Rotation: false}}); err != nil {
			t.Fatal(err)
		}
		if err := admin.AssignPolicy(ctx, "bluebird", "Quiet admins"); err != nil {
			t.Fatal(err)
		}
		if err := admin.UnassignPolicy(ctx, "acme", jobs.EndUser); err != nil {
			t.Fatal(err)
		}
		tn, _ := s.LoadTenant(ctx)
		def, _ := tn.DefaultPolicy(jobs.Admin)
		if def.Name != "Quiet admins" {
			t.Fatalf("default admin policy = %q", def.Name)
		}
		acme, _ := tn.Customer("acme")
		r := jobs.Resolve(tn, acme, jobs.EndUser)
		if r.Origin != jobs.FromCustomer || !r.On(jobs.VaultCreate) {
			t.Fatalf("after unassign acme resolves %+v; want its own copy of the policy's options", r)
		}
		var actions []string
		for e, err := range s.AuditEvents(ctx, jobs.AuditFilter{AfterID: int64(n)}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Actor != "tech@msp" {
				t.Fatalf("event %d actor %q", e.ID, e.Actor)
			}
			actions = append(actions, e.Action)
		}
		want := "customer.options.set policy.create customer.policy.assign customer.policy.unassign"
		if strings.Join(actions, " ") != want {
			t.Fatalf("audited %v, want %s", actions, want)
		}
		if _, err := jobs.VerifyAudit(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		dialect store.Dialect
		bad     bool
	}{
		{"", store.SQLite, false},
		{"sqlite:/tmp/x.db", store.SQLite, false},
		{"data/autoimport.db", store.SQLite, false},
		{"root@tcp(127.0.0.1:3306)/autoimport", store.MySQL, false},
		{"mysql://u:p@tcp(db:3306)/ai?tls=true", store.MySQL, false},
		{"root@tcp(127.0.0.1:3306)/", "", true},
		{"postgres://x", "", true},
		{"sqlite:", "", true},
	}
	for _, tc := range cases {
		d, dsn, err := store.ParseURL(tc.in)
		if (err != nil) != tc.bad || d != tc.dialect {
			t.Errorf("ParseURL(%q) = %q, %v", tc.in, d, err)
		}
		if d == store.MySQL && !strings.Contains(dsn, "interpolateParams=true") {
			t.Errorf("ParseURL(%q): %q does not fill in placeholders in the driver", tc.in, dsn)
		}
		if err != nil && strings.Contains(err.Error(), ":p@") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestTechVaultOnBothDatabases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		key, _ := secret.NewKey(make([]byte, 32))
		v := techvault.New(s, key)
		scope := sinks.VaultScope{Customer: "acme", Container: "acme"}
		e, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "Jane (Active Directory)", Username: "jane", Category: "Active Directory", Password: "pw-123"})
		if err != nil {
			t.Fatal(err)
		}
		ix, err := v.Index(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "JANE"})
		if m.Outcome != sinks.Matched || m.Entry.Ref != e.Ref {
			t.Fatalf("match = %+v", m)
		}
		var sealed string
		if err := s.DB().Get(&sealed, "SELECT sealed FROM tech_vault_entries WHERE id = ?", e.Ref); err != nil {
			t.Fatal(err)
		}
		if sealed == "" || strings.Contains(sealed, "pw-123") {
			t.Fatalf("stored password is not sealed: %q", sealed)
		}
		if other, _ := v.Index(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}); other.Len() != 0 {
			t.Fatal("another customer sees acme's entries")
		}
	})
}

// SetWelcomeIf changes a welcome email's state only from the state given:
// a pending email is claimed for sending once.
func TestSetWelcomeIfClaimsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, exampleTenant(t)); err != nil {
			t.Fatal(err)
		}
		acct := jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: "6f1c2a9e-0000-0000-0000-000000000002", Type: jobs.EndUser,
			Username: "jane", Email: "jane@acme.example", Welcome: "pending"}
		if err := s.Update(ctx, func(tx jobs.Tx) error { return tx.InsertImported(ctx, acct) }); err != nil {
			t.Fatal(err)
		}
		claim := func() bool {
			t.Helper()
			var ok bool
			err := s.Update(ctx, func(tx jobs.Tx) (err error) {
				ok, err = tx.SetWelcomeIf(ctx, "acme", "ad", acct.SourceID, "pending", "attempted")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !claim() {
			t.Fatal("a pending welcome email could not be claimed")
		}
		if claim() {
			t.Fatal("a welcome email was claimed twice")
		}
		if l := ledger(t, s, "acme"); len(l) != 1 || l[0].Welcome != "attempted" {
			t.Fatalf("ledger %+v", l)
		}
	})
}

// TestValuesRoundTrip: whatever a value holds (quotes, backslashes, a NUL,
// characters outside the BMP, placeholders), it is stored and read back
// as it was, the driver filling in placeholders or not.
func TestValuesRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		values := []string{`it's "quoted"`, `back\slash\`, "nul\x00byte", "ünïcödé 🙂", "?, ?) -- ", "'; DROP TABLE customers; --", ""}
		err := s.Update(ctx, func(tx jobs.Tx) error {
			for i, v := range values {
				if err := tx.PutState(ctx, "acme", fmt.Sprint("v", i), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range values {
			if got, err := s.State(ctx, "acme", fmt.Sprint("v", i)); err != nil || got != want {
				t.Errorf("value %d: %q, %v; want %q", i, got, err, want)
			}
		}
	})
}

func TestStatementBasedBinaryLogIsRefused(t *testing.T) {
	for _, tc := range []struct {
		logBin bool
		format string
		bad    bool
	}{{false, "STATEMENT", false}, {true, "STATEMENT", true}, {true, "statement", true}, {true, "MIXED", false}, {true, "ROW", false}} {
		err := store.CheckBinlogFormat(tc.logBin, tc.format)
		if (err != nil) != tc.bad || (err != nil && !strings.Contains(err.Error(), "set binlog_format to ROW or MIXED")) {
			t.Errorf("log_bin %v, binlog_format %s: %v", tc.logBin, tc.format, err)
		}
	}
}

// TestMySQLKeepsItsConnections: connections a burst of work opened stay
// open for the next one, instead of database/sql's two idle ones, so a
// pass does not dial and authenticate a new connection for most calls.
func TestMySQLKeepsItsConnections(t *testing.T) {
	s := storetest.MySQL(t)
	const at = 8 // transactions open at once
	var arrived sync.WaitGroup
	arrived.Add(at)
	var done sync.WaitGroup
	for range at {
		done.Go(func() {
			err := s.Update(context.Background(), func(tx jobs.Tx) error {
				arrived.Done()
				arrived.Wait() // every transaction holds its connection
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	done.Wait()
	st := store.PoolStats(s)
	if st.MaxIdleClosed != 0 || st.Idle < at {
		t.Fatalf("after %d transactions at once: %d connections closed for being idle, %d kept idle; want none closed, %d kept", at, st.MaxIdleClosed, st.Idle, at)
	}
}

package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// copySource is a memSource read incrementally: Read keeps its accounts in
// the customer's copy (in full the first time or when asked, only the
// changed ones after), and CopyAccounts yields them from the copy.
type copySource struct {
	*memSource
	kind  sources.Kind // "ad" when empty
	mu    sync.Mutex
	reads []sources.ReadOptions
	// whileReading, when set, runs at the start of each Read; readErr,
	// when set, is what Read then fails with. whileWriting, when set,
	// runs once Read has read what it reads, before it writes the copy.
	whileReading, whileWriting func()
	readErr                    error
}

func (s *copySource) name() string {
	if s.kind == "" {
		return string(sources.KindAD)
	}
	return string(s.kind)
}

func (s *copySource) Read(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection, opt sources.ReadOptions) (sources.ReadReport, error) {
	s.mu.Lock()
	s.reads = append(s.reads, opt)
	s.mu.Unlock()
	st, err := copies.CopyState(ctx, customer, s.name())
	if err != nil {
		return sources.ReadReport{}, err
	}
	turn := opt.FullTurn()
	defer turn.Release()
	if st.Zero() || opt.Full {
		if err := turn.Take(ctx); err != nil {
			return sources.ReadReport{}, err
		}
	}
	if s.whileReading != nil {
		s.whileReading()
	}
	if s.readErr != nil {
		return sources.ReadReport{}, s.readErr
	}
	held := map[string]string{}
	for o, err := range copies.CopyObjects(ctx, customer, s.name()) {
		if err != nil {
			return sources.ReadReport{}, err
		}
		held[o.ID] = string(o.Doc)
	}
	d := sources.CopyDelta{Full: st.Zero() || opt.Full, State: sources.SyncState{Token: []byte("t")}}
	seen := map[string]bool{}
	for a, err := range s.Accounts(ctx, sel) {
		if err != nil {
			return sources.ReadReport{}, err
		}
		b, _ := json.Marshal(a)
		seen[a.ID] = true
		if d.Full || held[a.ID] != string(b) {
			d.Upserts = append(d.Upserts, sources.CopyObject{Kind: "user", ID: a.ID, Doc: b})
		}
	}
	for id := range held {
		if !seen[id] && !d.Full {
			d.Deletes = append(d.Deletes, id)
		}
	}
	rep := sources.ReadReport{Mode: sources.ReadIncremental, Requests: 1, Changes: len(d.Upserts) + len(d.Deletes), Waited: turn.Waited()}
	if d.Full {
		rep.Mode, rep.Reason = sources.ReadFull, "no state"
		if opt.Full {
			rep.Reason = "asked for"
		}
	}
	if s.whileWriting != nil {
		s.whileWriting()
	}
	return rep, copies.ApplyCopy(ctx, customer, s.name(), d)
}

func (s *copySource) CopyAccounts(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		for o, err := range copies.CopyObjects(ctx, customer, s.name()) {
			var a sources.Account
			if err == nil {
				err = json.Unmarshal(o.Doc, &a)
			}
			if !yield(a, err) || err != nil {
				return
			}
		}
	}
}

// copyConnector hands out acme's AD source, and its Microsoft 365 source
// when m365 is set, as ones read incrementally.
type copyConnector struct {
	inner jobs.Connector
	src   *copySource
	m365  *copySource
}

func (c copyConnector) Connect(ctx context.Context, t *jobs.Tenant, cu jobs.Customer) (*jobs.Connections, error) {
	conn, err := c.inner.Connect(ctx, t, cu)
	if err == nil && cu.ID == "acme" {
		conn.AD = c.src
		if c.m365 != nil && conn.M365 != nil {
			conn.M365 = c.m365
		}
	}
	return conn, err
}

// A source that reads incrementally is read once per pass into its copy,
// and the pass imports from the copy what a full read would give: a user
// added between runs is imported, one removed is marked missing. The
// report says how each source was read; a dry run reads whole and writes
// no copy; --full asks for a full read.
func TestImportFromAnIncrementallyReadCopy(t *testing.T) {
	s := storetest.SQLite(t)
	f := setup(t, s)
	acme := f.worlds["acme"]
	src := &copySource{memSource: acme.ad}
	copies := &sourcestest.Copies{}
	f.runner.Connector = copyConnector{inner: f.runner.Connector, src: src}
	f.runner.Copies = copies
	acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
	once := jobs.RunOptions{Customers: []string{"acme"}}

	dry := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, DryRun: true}), "acme")
	if len(src.reads) != 0 || copies.Applied != 0 || len(dry.Reads) != 0 {
		t.Fatalf("a dry run read into the copy: %d reads, %d applied", len(src.reads), copies.Applied)
	}
	first := customerReport(f.run(t, once), "acme")
	if first.Counts.Imported != 2 || len(first.Reads) != 1 || first.Reads[0].Mode != sources.ReadFull || first.Reads[0].Source != sources.KindAD {
		t.Fatalf("first run: %+v, reads %+v", first.Counts, first.Reads)
	}
	acme.ad.set(user(2, jobs.EndUser), user(3, jobs.EndUser))
	second := customerReport(f.run(t, once), "acme")
	if second.Counts.Imported != 1 || second.Reads[0].Mode != sources.ReadIncremental || second.Reads[0].Changes != 2 {
		t.Fatalf("second run: %+v, reads %+v", second.Counts, second.Reads)
	}
	if led := ledgerOf(t, s, "acme"); led["user1"].State != "missing" || led["user3"].State != "active" {
		t.Fatalf("ledger after the incremental read: user1 %s, user3 %s", led["user1"].State, led["user3"].State)
	}
	full := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, FullRead: true}), "acme")
	if full.Reads[0].Mode != sources.ReadFull || !strings.Contains(full.Reads[0].Reason, "asked") || !src.reads[len(src.reads)-1].Full {
		t.Fatalf("--full: %+v", full.Reads)
	}
	if len(src.reads) != 3 {
		t.Fatalf("%d reads for 3 passes", len(src.reads))
	}
	if got := src.reads[0].FullEvery; got != jobs.DefaultFullReadEvery {
		t.Fatalf("full reads every %s", got)
	}
}

// acmeReadIncrementally is the fixture with acme's AD and Microsoft 365
// read incrementally, into copies kept in memory.
func acmeReadIncrementally(t *testing.T) (f *fixture, ad, m365 *copySource) {
	f = setup(t, storetest.SQLite(t))
	acme := f.worlds["acme"]
	ad = &copySource{memSource: acme.ad}
	m365 = &copySource{memSource: acme.m365, kind: sources.KindM365}
	f.runner.Connector = copyConnector{inner: f.runner.Connector, src: ad, m365: m365}
	f.runner.Copies = &sourcestest.Copies{}
	return f, ad, m365
}

// A customer's two directories are different services: their copies are
// read at once, not one after the other, and the report keeps Microsoft
// 365's read first. A failed read names its source and fails the customer.
func TestBothDirectoriesAreReadAtOnce(t *testing.T) {
	f, ad, m365 := acmeReadIncrementally(t)
	acme := f.worlds["acme"]
	started := map[sources.Kind]chan struct{}{sources.KindAD: make(chan struct{}), sources.KindM365: make(chan struct{})}
	saw := map[sources.Kind]bool{}
	var mu sync.Mutex
	meet := func(self, other sources.Kind) func() {
		return func() {
			close(started[self])
			select {
			case <-started[other]:
				mu.Lock()
				saw[self] = true
				mu.Unlock()
			case <-time.After(5 * time.Second):
			}
		}
	}
	ad.whileReading, m365.whileReading = meet(sources.KindAD, sources.KindM365), meet(sources.KindM365, sources.KindAD)
	acme.ad.set(user(1, jobs.EndUser))
	acme.m365.set(sources.Account{Source: sources.KindM365, ID: "m-ga", Username: "ga@acme.onmicrosoft.com", UPN: "ga@acme.onmicrosoft.com",
		DisplayName: "Global Admin", Type: jobs.Admin, TypeReason: "holds Global Administrator", Enabled: true})

	cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
	if cr.Status != jobs.StatusOK || cr.Counts.Imported != 2 {
		t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Counts)
	}
	if !saw[sources.KindAD] || !saw[sources.KindM365] {
		t.Errorf("one directory was read after the other (AD saw Microsoft 365 reading: %v, Microsoft 365 saw AD: %v)", saw[sources.KindAD], saw[sources.KindM365])
	}
	if len(cr.Reads) != 2 || cr.Reads[0].Source != sources.KindM365 || cr.Reads[1].Source != sources.KindAD {
		t.Fatalf("reads reported %+v, want Microsoft 365 then AD", cr.Reads)
	}
	for _, r := range cr.Reads {
		if r.Seconds <= 0 {
			t.Errorf("the %s read reports no time: %+v", r.Source, r)
		}
	}

	ad.whileReading, m365.whileReading = nil, nil
	m365.readErr = errors.New("HTTP 503 from Graph")
	cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
	if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "Microsoft 365") || !strings.Contains(cr.Error, "HTTP 503") {
		t.Fatalf("a failed read: %s %q", cr.Status, cr.Error)
	}
}

// Full reads take turns across the customers of a run (Runner.FullReads):
// with one turn, a customer's two first reads, both full, come one after
// the other, and the second says how long it waited; its incremental
// reads, which need no turn, still run at once.
func TestFullReadsTakeTurns(t *testing.T) {
	f, ad, m365 := acmeReadIncrementally(t)
	acme := f.worlds["acme"]
	f.runner.FullReads = 1
	acme.ad.set(user(1, jobs.EndUser))
	acme.m365.set(sources.Account{Source: sources.KindM365, ID: "m-1", Username: "u1@acme.onmicrosoft.com", UPN: "u1@acme.onmicrosoft.com",
		DisplayName: "User One", Type: jobs.EndUser, TypeReason: "in All Staff", Enabled: true})
	const patience = 300 * time.Millisecond
	// meetings makes each read wait up to patience for the other to be
	// reading too, and says whether they ever were at once.
	meetings := func() *atomic.Bool {
		var reading atomic.Int32
		met := &atomic.Bool{}
		meet := func() {
			reading.Add(1)
			defer reading.Add(-1)
			for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if reading.Load() > 1 {
					met.Store(true)
					return
				}
			}
		}
		ad.whileReading, m365.whileReading = meet, meet
		return met
	}

	met := meetings()
	cr := customerReport(f.run(t, jobs.RunOptions{AllowSurge: true}), "acme")
	if cr.Status != jobs.StatusOK || len(cr.Reads) != 2 {
		t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Reads)
	}
	if met.Load() {
		t.Error("with one turn, the two full reads ran at once")
	}
	waited := max(cr.Reads[0].Waited, cr.Reads[1].Waited)
	// The second read began waiting about when the first began reading
	// (how soon depends on the scheduler: half of patience is ample).
	if cr.Reads[0].Mode != sources.ReadFull || cr.Reads[1].Mode != sources.ReadFull || waited < patience.Seconds()/2 {
		t.Errorf("reads %+v (waited %.3fs, %.3fs): want two full reads, one of which waited about %v for its turn", cr.Reads, cr.Reads[0].Waited, cr.Reads[1].Waited, patience)
	}

	met = meetings()
	cr = customerReport(f.run(t, jobs.RunOptions{}), "acme")
	if cr.Status != jobs.StatusOK || cr.Reads[0].Mode != sources.ReadIncremental || cr.Reads[1].Mode != sources.ReadIncremental {
		t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Reads)
	}
	if !met.Load() {
		t.Error("incremental reads waited for a turn: they never ran at once")
	}
}

// Every pass, a customer's first import included, lists the sinks'
// indexes once its new accounts are known: not while its directories are
// read or its copies written (a large first import would hold the indexes
// beside its selection), not at all when nothing is new, and only then.
func TestIndexesAreListedOnceTheNewAccountsAreKnown(t *testing.T) {
	s := storetest.SQLite(t)
	f := setup(t, s)
	acme := f.worlds["acme"]
	ad := &copySource{memSource: acme.ad}
	f.runner.Connector = copyConnector{inner: f.runner.Connector, src: ad}
	f.runner.Copies = &sourcestest.Copies{}
	once := jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}
	for _, c := range []struct {
		name     string
		users    []sources.Account
		imported int
		listed   int32 // times the vault is listed
	}{
		{"first import", []sources.Account{user(1, jobs.EndUser), user(2, jobs.Admin)}, 2, 1},
		{"nothing new", []sources.Account{user(1, jobs.EndUser), user(2, jobs.Admin)}, 0, 0},
		{"one new account", []sources.Account{user(1, jobs.EndUser), user(2, jobs.Admin), user(3, jobs.EndUser)}, 1, 1},
	} {
		acme.ad.set(c.users...)
		before := acme.vault.indexes.Load()
		listedWhileReading := false
		ad.whileReading = func() {
			time.Sleep(20 * time.Millisecond) // time for a listing to begin, were one started
			listedWhileReading = acme.vault.indexes.Load() != before || listedWhileReading
		}
		ad.whileWriting = ad.whileReading
		cr := customerReport(f.run(t, once), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != c.imported {
			t.Fatalf("%s: %s %q %+v", c.name, cr.Status, cr.Error, cr.Counts)
		}
		if listedWhileReading {
			t.Errorf("%s: the vault was listed while the directory was read or its copy written", c.name)
		}
		if got := acme.vault.indexes.Load() - before; got != c.listed {
			t.Errorf("%s: the vault listed %d times, want %d", c.name, got, c.listed)
		}
	}
}

// A listing that fails fails the customer, naming the vault, when a new
// account needs it; a pass with nothing new does not list, and so does
// not fail on it.
func TestAFailedListingFailsTheCustomerWhenNeeded(t *testing.T) {
	s := storetest.SQLite(t)
	f := setup(t, s)
	acme := f.worlds["acme"]
	f.runner.Connector = copyConnector{inner: f.runner.Connector, src: &copySource{memSource: acme.ad}}
	acme.vault.failIndex = func() error { return errors.New("HTTP 500 from the vault") }
	once := jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}
	f.runner.Copies = &sourcestest.Copies{}
	if cr := customerReport(f.run(t, once), "acme"); cr.Status != jobs.StatusOK || acme.vault.indexes.Load() != 0 {
		t.Fatalf("nothing new: %s %q, the vault listed %d times", cr.Status, cr.Error, acme.vault.indexes.Load())
	}
	acme.ad.set(user(1, jobs.EndUser))
	f.runner.Copies = &sourcestest.Copies{} // a first import again
	cr := customerReport(f.run(t, once), "acme")
	if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "MemVault") || !strings.Contains(cr.Error, "HTTP 500") {
		t.Fatalf("a failed listing: %s %q", cr.Status, cr.Error)
	}
	if acme.vault.indexes.Load() != 1 {
		t.Fatalf("the vault listed %d times for one pass with a new account", acme.vault.indexes.Load())
	}
}

// A pass says where its time went: reading the directories, selecting,
// listing the indexes and importing the new accounts, each at least what
// it was made to take here, and together no more than the pass.
func TestAPassSaysWhereItsTimeWent(t *testing.T) {
	f, ad, _ := acmeReadIncrementally(t)
	f.runner.Metrics = jobs.NewMetrics(prometheus.NewRegistry())
	acme := f.worlds["acme"]
	const step = 40 * time.Millisecond
	ad.whileReading = func() { time.Sleep(step) }
	acme.vault.failCreate = func(sinks.NewVaultEntry) error { time.Sleep(step); return nil }
	acme.ad.set(user(1, jobs.EndUser))
	check := func(cr *jobs.CustomerReport, want map[string]time.Duration) {
		t.Helper()
		tt := cr.Times
		got := map[string]time.Duration{"directories": tt.Directories, "selection": tt.Selection, "indexes": tt.Indexes, "new accounts": tt.NewAccounts}
		for name, least := range want {
			if got[name] < least || got[name] == 0 {
				t.Errorf("%s took %v, want at least %v and more than nothing (%s)", name, got[name], least, tt.String(cr.Elapsed))
			}
		}
		if sum := tt.Directories + tt.Selection + tt.Indexes + tt.NewAccounts; sum > cr.Elapsed {
			t.Errorf("the steps took %v, more than the pass's %v", sum, cr.Elapsed)
		}
		if s := tt.String(cr.Elapsed); !strings.Contains(s, "directories ") || !strings.Contains(s, "the rest ") {
			t.Errorf("String() = %q", s)
		}
	}
	cr := customerReport(f.run(t, jobs.RunOptions{AllowSurge: true}), "acme")
	if cr.Status != jobs.StatusOK || cr.Counts.Imported != 1 {
		t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Counts)
	}
	check(cr, map[string]time.Duration{"directories": step, "selection": 0, "new accounts": step})

	// A later pass lists the indexes once it knows what is new.
	acme.vault.whileIndexing = func() { time.Sleep(step) }
	acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
	cr = customerReport(f.run(t, jobs.RunOptions{}), "acme")
	if cr.Status != jobs.StatusOK || cr.Counts.Imported != 1 {
		t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Counts)
	}
	check(cr, map[string]time.Duration{"directories": step, "selection": 0, "indexes": step, "new accounts": step})

	// /metrics adds them up by customer and step, over both passes.
	steps := jobs.PassStepsMetric(f.runner.Metrics)
	for _, s := range []string{"directories", "new_accounts"} {
		if got := testutil.ToFloat64(steps.WithLabelValues("acme", s)); got < 2*step.Seconds() {
			t.Errorf("autoimport_pass_step_seconds_total{customer=acme,step=%s} = %v, want at least %v", s, got, 2*step.Seconds())
		}
	}
	if got := testutil.ToFloat64(steps.WithLabelValues("acme", "indexes")); got < step.Seconds() {
		t.Errorf("autoimport_pass_step_seconds_total{step=indexes} = %v, want at least %v", got, step.Seconds())
	}
}

package jobs_test

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// ledgerCounting counts the ledger reads of import passes.
type ledgerCounting struct {
	jobs.Store
	reads atomic.Int32
}

func (s *ledgerCounting) LedgerEntries(ctx context.Context, customer string) iter.Seq2[jobs.ImportedAccount, error] {
	s.reads.Add(1)
	return s.Store.LedgerEntries(ctx, customer)
}

// settledFixture is acme with both directories read through copies in
// the store, 3 end users imported and 4 ambiguous ones.
type settledFixture struct {
	*fixture
	s      *store.Store
	ledger *ledgerCounting
	ad     *copySource
	users  []sources.Account
	metric *prometheus.CounterVec
}

func newSettledFixture(t *testing.T, s *store.Store) *settledFixture {
	f := setup(t, s)
	acme := f.worlds["acme"]
	sf := &settledFixture{fixture: f, s: s, ledger: &ledgerCounting{Store: s}, ad: &copySource{memSource: acme.ad}}
	f.runner.Store = sf.ledger
	f.runner.Metrics = jobs.NewMetrics(prometheus.NewRegistry())
	sf.metric = jobs.SettledPassesMetric(f.runner.Metrics)
	f.runner.Copies = s
	f.runner.Connector = copyConnector{inner: f.runner.Connector, src: sf.ad, m365: &copySource{memSource: acme.m365, kind: sources.KindM365}}
	sf.users = append(ambiguousUsers(acme, 4), user(100, jobs.EndUser), user(101, jobs.EndUser), user(102, jobs.EndUser))
	acme.ad.set(sf.users...)
	return sf
}

// pass runs acme once and returns its report, the plans OnAccount got
// and how often it read the ledger and listed the vault.
type passOutcome struct {
	rep           *jobs.CustomerReport
	plans         int
	ledgerReads   int32
	vaultListings int32
}

func (sf *settledFixture) pass(t *testing.T, opt jobs.RunOptions) passOutcome {
	t.Helper()
	opt.Customers = []string{"acme"}
	ledger, listings := sf.ledger.reads.Load(), sf.worlds["acme"].vault.indexes.Load()
	rep, plans := sf.runStream(t, opt)
	cr := customerReport(rep, "acme")
	if cr.Status != jobs.StatusOK {
		t.Fatalf("acme: %s %s", cr.Status, cr.Error)
	}
	if settled := !cr.UnchangedSince.IsZero(); rep.Unchanged() != map[bool]int{true: 1}[settled] {
		t.Fatalf("the run counts %d customers unchanged; acme settled: %v", rep.Unchanged(), settled)
	}
	return passOutcome{cr, len(plans["acme"]), sf.ledger.reads.Load() - ledger, sf.worlds["acme"].vault.indexes.Load() - listings}
}

// untilSettled runs passes until one is settled (at most 3) and returns
// the last one that was not, with the settled one.
func (sf *settledFixture) untilSettled(t *testing.T) (full, settled passOutcome) {
	t.Helper()
	for range 3 {
		p := sf.pass(t, jobs.RunOptions{})
		if !p.rep.UnchangedSince.IsZero() {
			return full, p
		}
		full = p
	}
	t.Fatal("no pass settled in 3")
	return
}

// sameOutcome compares what two passes report, but for how they read.
func sameOutcome(t *testing.T, got, want *jobs.CustomerReport) {
	t.Helper()
	g, w := *got, *want
	g.Reads, w.Reads, g.Elapsed, w.Elapsed, g.UnchangedSince, w.UnchangedSince = nil, nil, 0, 0, time.Time{}, time.Time{}
	g.Times, w.Times = jobs.PassTimes{}, jobs.PassTimes{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("the settled pass reports\n%+v\nthe last full one\n%+v", g, w)
	}
}

// A pass that finds nothing changed since a pass that had nothing to do
// reads the directories' changes and nothing else: it repeats that
// pass's report (counts, notices, the accounts that need a person)
// without reading the ledger or the copies, listing the vault or
// reporting each account.
func TestASettledPassRepeatsTheLastReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sf := newSettledFixture(t, s)
		first := sf.pass(t, jobs.RunOptions{})
		if first.rep.Counts.Imported != 3 || first.rep.Counts.Ambiguous != 4 || !first.rep.UnchangedSince.IsZero() {
			t.Fatalf("first pass: %+v", first.rep.Counts)
		}
		full, settled := sf.untilSettled(t)
		if full.rep == nil || full.ledgerReads != 1 || full.plans != 7 {
			t.Fatalf("the pass before the settled one: %+v, %d ledger reads, %d plans", full.rep, full.ledgerReads, full.plans)
		}
		if settled.ledgerReads != 0 || settled.plans != 0 || settled.vaultListings != 0 {
			t.Errorf("settled pass: %d ledger reads, %d plans reported, %d vault listings", settled.ledgerReads, settled.plans, settled.vaultListings)
		}
		if len(settled.rep.Reads) != 2 || settled.rep.Reads[0].Mode != sources.ReadIncremental || settled.rep.Reads[1].Mode != sources.ReadIncremental {
			t.Errorf("settled pass reads %+v", settled.rep.Reads)
		}
		sameOutcome(t, settled.rep, full.rep)
		if settled.rep.NextStep == "" || settled.rep.NeedPerson[jobs.StateAmbiguous] != 4 {
			t.Errorf("settled pass: next step %q, need %v", settled.rep.NextStep, settled.rep.NeedPerson)
		}
		again := sf.pass(t, jobs.RunOptions{})
		if !again.rep.UnchangedSince.Equal(settled.rep.UnchangedSince) || again.ledgerReads != 0 {
			t.Errorf("a second settled pass: since %v (want %v), %d ledger reads", again.rep.UnchangedSince, settled.rep.UnchangedSince, again.ledgerReads)
		}
		if n := testutil.ToFloat64(sf.metric.WithLabelValues("acme")); n != 2 {
			t.Errorf("autoimport_settled_passes_total{customer=acme} = %v after 2 settled passes", n)
		}
	})
}

// Anything a pass would read that changed — a directory, the ledger, a
// technician's decision, the options, the recheck interval — or a run
// that asks for a full read or every account's plan, and the next pass
// runs in full and reports the change; a dry run never settles and
// leaves the settled state as it was.
func TestAnyChangeEndsASettledPass(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sf := newSettledFixture(t, s)
		ctx := context.Background()
		acme := sf.worlds["acme"]
		sf.pass(t, jobs.RunOptions{})
		sf.untilSettled(t)
		for _, tc := range []struct {
			name   string
			change func() jobs.RunOptions
			check  func(p passOutcome) bool
		}{
			{"a new hire", func() jobs.RunOptions {
				sf.users = append(sf.users, user(103, jobs.EndUser))
				acme.ad.set(sf.users...)
				return jobs.RunOptions{}
			}, func(p passOutcome) bool { return p.rep.Counts.Imported == 1 }},
			{"a disabled account", func() jobs.RunOptions {
				sf.users[len(sf.users)-1].Enabled = false
				sf.users[len(sf.users)-1].SkipReason = "disabled in the directory"
				acme.ad.set(sf.users...)
				return jobs.RunOptions{}
			}, func(p passOutcome) bool { return p.rep.Counts.AlreadyImported == 3 }},
			{"a technician ignores an ambiguous account", func() jobs.RunOptions {
				decide(t, s, jobs.AccountDecision{Source: "ad", SourceID: sf.users[0].ID, Username: "user0", Kind: jobs.DecisionIgnore, Reason: "shared"})
				return jobs.RunOptions{}
			}, func(p passOutcome) bool { return p.rep.Counts.Ambiguous == 3 }},
			{"a roll-out changes flags", func() jobs.RunOptions {
				if err := s.Update(ctx, func(tx jobs.Tx) error {
					return tx.SetFlags(ctx, "acme", "ad", sf.users[4].ID, jobs.Flags{SelfServe: false})
				}); err != nil {
					t.Fatal(err)
				}
				return jobs.RunOptions{}
			}, func(p passOutcome) bool { return p.ledgerReads == 1 }},
			{"a policy's options", func() jobs.RunOptions {
				tn, err := s.LoadTenant(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range tn.Policies {
					if p.Name == "Std" {
						p.Options[jobs.WelcomeEmail] = false
						if err := s.Update(ctx, func(tx jobs.Tx) error { return tx.PutPolicy(ctx, p) }); err != nil {
							t.Fatal(err)
						}
					}
				}
				return jobs.RunOptions{}
			}, func(p passOutcome) bool { return p.ledgerReads == 1 }},
			{"the recheck interval", func() jobs.RunOptions {
				sf.runner.AttentionRecheckEvery = time.Nanosecond
				return jobs.RunOptions{}
			}, func(p passOutcome) bool {
				sf.runner.AttentionRecheckEvery = 0
				return p.vaultListings == 1
			}},
			{"a full read", func() jobs.RunOptions { return jobs.RunOptions{FullRead: true} },
				func(p passOutcome) bool { return p.rep.Reads[0].Mode == sources.ReadFull }},
			{"every account asked for", func() jobs.RunOptions { return jobs.RunOptions{EveryAccount: true} },
				func(p passOutcome) bool { return p.plans == len(sf.users)-1 }}, // the disabled one was imported: no plan
		} {
			opt := tc.change()
			p := sf.pass(t, opt)
			if !p.rep.UnchangedSince.IsZero() || !tc.check(p) {
				t.Fatalf("%s: the next pass: settled %v, %+v, %d ledger reads, %d plans, %d vault listings",
					tc.name, !p.rep.UnchangedSince.IsZero(), p.rep.Counts, p.ledgerReads, p.plans, p.vaultListings)
			}
			full, settled := sf.untilSettled(t)
			if full.rep != nil {
				sameOutcome(t, settled.rep, full.rep)
			}
		}

		// A dry run plans in full and leaves the settled state alone.
		dry := sf.pass(t, jobs.RunOptions{DryRun: true})
		if !dry.rep.UnchangedSince.IsZero() || dry.plans != len(sf.users)-1 {
			t.Fatalf("dry run: settled %v, %d plans", !dry.rep.UnchangedSince.IsZero(), dry.plans)
		}
		if p := sf.pass(t, jobs.RunOptions{}); p.rep.UnchangedSince.IsZero() {
			t.Fatal("a dry run ended the settled state")
		}
	})
}

// A write to the customer while a pass that found nothing to do runs
// (a technician's decision, another process) keeps that pass from
// recording itself: the next pass runs in full.
func TestAWriteDuringAPassKeepsItFromSettling(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sf := newSettledFixture(t, s)
		ctx := context.Background()
		sf.pass(t, jobs.RunOptions{})
		sf.untilSettled(t)
		sf.users = append(sf.users, user(103, jobs.EndUser))
		sf.worlds["acme"].ad.set(sf.users...)
		if p := sf.pass(t, jobs.RunOptions{}); p.rep.Counts.Imported != 1 {
			t.Fatalf("new hire: %+v", p.rep.Counts)
		}
		// The next pass finds nothing to do; a write lands while it reads.
		var once atomic.Bool
		sf.ad.whileReading = func() {
			if once.CompareAndSwap(false, true) {
				if err := s.Update(ctx, func(tx jobs.Tx) error {
					return tx.SetFlags(ctx, "acme", "ad", sf.users[4].ID, jobs.Flags{SelfServe: true})
				}); err != nil {
					t.Error(err)
				}
			}
		}
		if p := sf.pass(t, jobs.RunOptions{}); !p.rep.UnchangedSince.IsZero() || p.rep.Counts.Imported != 0 {
			t.Fatalf("the pass with a write during it: %+v", p.rep)
		}
		if p := sf.pass(t, jobs.RunOptions{}); !p.rep.UnchangedSince.IsZero() || p.ledgerReads != 1 {
			t.Fatalf("the pass after it settled on a record written across the change: %d ledger reads", p.ledgerReads)
		}
		if _, settled := sf.untilSettled(t); settled.ledgerReads != 0 {
			t.Fatalf("settled: %d ledger reads", settled.ledgerReads)
		}
	})
}

// A pass that noted a failure the next one may not meet (the bind
// account could not be looked up) is never repeated: its notice would
// outlive the failure.
func TestAPassingFailureIsNotRepeated(t *testing.T) {
	s := storetest.SQLite(t)
	sf := newSettledFixture(t, s)
	sf.worlds["acme"].ad.bindErr = errors.New("the DC is restarting")
	for i := range 3 {
		p := sf.pass(t, jobs.RunOptions{})
		if !p.rep.UnchangedSince.IsZero() || !slices.ContainsFunc(p.rep.Notices, func(n string) bool { return strings.Contains(n, "the DC is restarting") }) {
			t.Fatalf("pass %d: settled %v, notices %q", i, !p.rep.UnchangedSince.IsZero(), p.rep.Notices)
		}
	}
	sf.worlds["acme"].ad.bindErr = nil
	if _, settled := sf.untilSettled(t); slices.ContainsFunc(settled.rep.Notices, func(n string) bool { return strings.Contains(n, "the DC is restarting") }) {
		t.Fatalf("the settled pass repeats the failure: %q", settled.rep.Notices)
	}
}

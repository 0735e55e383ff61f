package jobs_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"sync"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// copySource is a memSource read incrementally: Read keeps its accounts in
// the customer's copy (in full the first time or when asked, only the
// changed ones after), and CopyAccounts yields them from the copy.
type copySource struct {
	*memSource
	mu    sync.Mutex
	reads []sources.ReadOptions
}

func (s *copySource) Read(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection, opt sources.ReadOptions) (sources.ReadReport, error) {
	s.mu.Lock()
	s.reads = append(s.reads, opt)
	s.mu.Unlock()
	st, err := copies.CopyState(ctx, customer, "ad")
	if err != nil {
		return sources.ReadReport{}, err
	}
	held := map[string]string{}
	for o, err := range copies.CopyObjects(ctx, customer, "ad") {
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
	rep := sources.ReadReport{Mode: sources.ReadIncremental, Requests: 1, Changes: len(d.Upserts) + len(d.Deletes)}
	if d.Full {
		rep.Mode, rep.Reason = sources.ReadFull, "no state"
		if opt.Full {
			rep.Reason = "asked for"
		}
	}
	return rep, copies.ApplyCopy(ctx, customer, "ad", d)
}

func (s *copySource) CopyAccounts(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		for o, err := range copies.CopyObjects(ctx, customer, "ad") {
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

// copyConnector hands out acme's AD source as one read incrementally.
type copyConnector struct {
	inner jobs.Connector
	src   *copySource
}

func (c copyConnector) Connect(ctx context.Context, t *jobs.Tenant, cu jobs.Customer) (*jobs.Connections, error) {
	conn, err := c.inner.Connect(ctx, t, cu)
	if err == nil && cu.ID == "acme" {
		conn.AD = c.src
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

package ad_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// BenchmarkRead100kUsers reads a 100,000-user OU (plus 1,000 computers)
// from the fake over LDAPS in 1,000-entry pages. It reports users/s, bytes
// allocated per user (the fake server runs in the same process, so its
// BER encoding and go-ldap's decoding are included), and peak-live-MB, the
// growth of the live heap while reading, sampled after a GC every 10,000
// accounts: it stays near one page's worth however big the directory is.
func BenchmarkRead100kUsers(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-user directory")
	}
	const n = 100000
	dir := adtest.Generate(1, n)
	srv, src := fakeSource(b, dir)
	sel := sources.Selection{OUs: []string{adtest.OUBulk + "," + dir.BaseDN}}
	ctx := context.Background()
	var before, after runtime.MemStats
	var peak uint64
	total := 0
	var elapsed time.Duration
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		count := 0
		for _, err := range src.Accounts(ctx, sel) {
			var ee *sources.EntryError
			if err != nil && !errors.As(err, &ee) {
				b.Fatal(err)
			}
			count++
			if count%10000 == 0 {
				b.StopTimer()
				var m runtime.MemStats
				runtime.GC() // live heap only, not garbage awaiting collection
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > before.HeapAlloc && m.HeapAlloc-before.HeapAlloc > peak {
					peak = m.HeapAlloc - before.HeapAlloc
				}
				b.StartTimer()
			}
		}
		elapsed += time.Since(start)
		runtime.ReadMemStats(&after)
		if count != n+n/100 {
			b.Fatalf("read %d accounts, want %d", count, n+n/100)
		}
		total += count
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "users/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n+n/100), "B/user")
	b.ReportMetric(float64(peak)/(1<<20), "peak-live-MB")
	b.ReportMetric(float64(srv.Stats().Pages)/float64(b.N), "pages/op")
}

// BenchmarkIncrementalRead100kUsers keeps a local copy of a
// 100,000-user domain (plus 1,000 computers) in a SQLite store: the full
// read, a read without changes (one DirSync request), and the accounts of
// the whole domain computed from the copy. It reports the time of each and
// peak-live-MB, the largest growth of the live heap over the directory
// the fake holds, sampled after a GC while the full read is applied and
// every 10,000 accounts of CopyAccounts.
func BenchmarkIncrementalRead100kUsers(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-user directory")
	}
	const n = 100000
	dir := adtest.Generate(1, n)
	_, src := fakeSource(b, dir)
	copies := storetest.SQLite(b)
	sel := sources.Selection{Builtin: []string{"Domain Users"}, OUs: []string{adtest.OUBulk + "," + dir.BaseDN}}
	ctx := context.Background()
	var peak uint64
	var base runtime.MemStats
	sample := func() {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > base.HeapAlloc && m.HeapAlloc-base.HeapAlloc > peak {
			peak = m.HeapAlloc - base.HeapAlloc
		}
	}
	sampled := &sampledCopies{CopyStager: copies, sample: sample}
	var full, none, accounts time.Duration
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&base)
		start := time.Now()
		if _, err := src.Read(ctx, sampled, "big", sel, sources.ReadOptions{Full: true}); err != nil {
			b.Fatal(err)
		}
		full += time.Since(start)
		start = time.Now()
		rep, err := src.Read(ctx, copies, "big", sel, sources.ReadOptions{})
		if err != nil || rep.Requests != 1 {
			b.Fatalf("no-change read %+v %v", rep, err)
		}
		none += time.Since(start)
		start = time.Now()
		count := 0
		for _, err := range src.CopyAccounts(ctx, copies, "big", sel) {
			if err != nil {
				b.Fatal(err)
			}
			if count++; count%10000 == 0 {
				b.StopTimer()
				sample()
				b.StartTimer()
			}
		}
		accounts += time.Since(start)
		if count < n {
			b.Fatalf("%d accounts from the copy", count)
		}
	}
	b.ReportMetric(full.Seconds()/float64(b.N), "full-s")
	b.ReportMetric(none.Seconds()/float64(b.N), "nochange-s")
	b.ReportMetric(accounts.Seconds()/float64(b.N), "copyaccounts-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-live-MB")
}

// sampledCopies samples the heap when a delta is applied, the moment a
// full read holds the most, and at every tenth batch it stages.
type sampledCopies struct {
	sources.CopyStager
	sample func()
	staged int
}

func (s *sampledCopies) ApplyCopy(ctx context.Context, customer, source string, d sources.CopyDelta) error {
	s.sample()
	return s.CopyStager.ApplyCopy(ctx, customer, source, d)
}

func (s *sampledCopies) StageCopy(ctx context.Context, customer, source string, objs []sources.CopyObject) error {
	if s.staged++; s.staged%10 == 0 {
		s.sample()
	}
	return s.CopyStager.StageCopy(ctx, customer, source, objs)
}

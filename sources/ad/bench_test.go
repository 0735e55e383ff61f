package ad_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
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

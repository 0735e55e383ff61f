package m365_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// BenchmarkAccounts100k reads 100,000 users from the fake, all users and
// then the transitive members of one group nesting eight others, and
// reports users per second and bytes allocated per user. The fake runs in
// the same process, so its allocations are included in B/user.
func BenchmarkAccounts100k(b *testing.B) {
	if testing.Short() {
		b.Skip("100,000 users: skipped in -short")
	}
	const users = 100000
	srv := m365test.NewServer(m365test.Options{})
	b.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 100000, Users: users, Groups: 8, Hybrid: users / 2, Admins: 5})
	for _, bc := range []struct {
		name string
		sel  sources.Selection
	}{
		{"all users", sources.Selection{}},
		{"nested group", sources.Selection{Groups: []string{"All Staff"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := newSource(b, srv)
			ctx := context.Background()
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			n := 0
			for b.Loop() {
				for _, err := range src.Accounts(ctx, bc.sel) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if n%users != 0 {
				b.Fatalf("read %d accounts, not a multiple of %d", n, users)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "users/s")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/user")
			b.ReportMetric(float64(src.Stats().Requests)/float64(n/users), "requests/read")
		})
	}
}

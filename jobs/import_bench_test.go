package jobs_test

import (
	"context"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// BenchmarkImport measures the job's own cost per imported account, with
// sinks that answer at once: what remains is planning, the ledger and the
// audit chain in the database.
func BenchmarkImport(b *testing.B) {
	if testing.Short() {
		b.Skip("benchmark: skipped in -short mode")
	}
	const n = 2000
	for _, db := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{{"sqlite", storetest.SQLite}, {"mysql", storetest.MySQL}} {
		b.Run(db.name, func(b *testing.B) {
			var accounts []sources.Account
			for i := range n {
				accounts = append(accounts, user(i, jobs.EndUser))
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := db.open(b)
				f := setupTB(b, s)
				f.worlds["acme"].ad.set(accounts...)
				b.StartTimer()
				rep, err := f.runner.Run(context.Background(), jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true})
				if err != nil || rep.Totals.Imported != n {
					b.Fatalf("imported %d: %v", rep.Totals.Imported, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "accounts/s")
		})
	}
}

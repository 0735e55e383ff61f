package hudu_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
)

// BenchmarkImport1000Into5000 is one run for a customer whose company
// holds 5,000 asset passwords: index once, then match and create 1,000 new
// accounts. It reports the API requests per imported account, which should
// stay at one create each plus the listing pages shared by all of them.
func BenchmarkImport1000Into5000(b *testing.B) {
	ctx := context.Background()
	srv := startServer(b, hudutest.Options{RateLimit: -1})
	var perAccount float64
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		co := 100 + round // a fresh company per round
		srv.Generate(co, 5000, 1)
		scope := sinks.VaultScope{Customer: "acme", Container: fmt.Sprint(co)}
		c := newClient(b, srv, nil)
		srv.ResetCounts()
		b.StartTimer()
		ix, err := c.Index(ctx, scope)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			user := fmt.Sprintf("new.user%d", i)
			if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: user}); m.Outcome != sinks.NoMatch {
				b.Fatalf("unexpected %s for %s", m.Outcome, user)
			}
			e, err := c.Create(ctx, scope, sinks.NewVaultEntry{Name: user + " (Active Directory)", Username: user, Category: "Active Directory"})
			if err != nil {
				b.Fatal(err)
			}
			ix.Add(e)
		}
		b.StopTimer()
		if got := srv.Count(hudutest.KindCreatePassword); got != 1000 {
			b.Fatalf("%d creates", got)
		}
		perAccount = float64(srv.Total()) / 1000
		b.StartTimer()
	}
	b.ReportMetric(perAccount, "requests/account")
	b.ReportMetric(float64(srv.Count(hudutest.KindListPasswords)), "list-pages")
}

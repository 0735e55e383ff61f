package itglue_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
)

// BenchmarkImport1000Into5000 is one run for a customer whose organization
// holds 5,000 entries: index once, then match and create 1,000 new
// accounts. It reports the API requests per imported account, which should
// stay at one create each plus the listing pages shared by all of them.
func BenchmarkImport1000Into5000(b *testing.B) {
	ctx := context.Background()
	srv := startServer(b, itgluetest.Options{RateLimit: -1})
	srv.AddCategory("Active Directory")
	var perAccount float64
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		scopeID := 100 + round // a fresh organization per round
		srv.Generate(scopeID, 5000, 1)
		scope := sinks.VaultScope{Customer: "acme", Container: fmt.Sprint(scopeID)}
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
		if got := srv.Count(itgluetest.KindCreatePassword); got != 1000 {
			b.Fatalf("%d creates", got)
		}
		perAccount = float64(srv.Total()) / 1000
		b.StartTimer()
	}
	b.ReportMetric(perAccount, "requests/account")
	b.ReportMetric(float64(srv.Count(itgluetest.KindListPasswords)), "list-pages")
}

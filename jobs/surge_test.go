package jobs_test

import (
	"context"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// The surge guard holds a customer only when the new accounts are both
// more than Max and more than Percent of what the ledger holds; a
// customer's own surge threshold replaces the global one.
func TestSurgeGuardBoundaries(t *testing.T) {
	global := jobs.SurgeThreshold{Max: 50, Percent: 25}
	cases := []struct {
		name        string
		ledger, new int
		own         *jobs.SurgeThreshold // the customer's surge: override
		held        bool
	}{
		{"51 new on 100: above max and 25%", 100, 51, nil, true},
		{"51 new on 1000: under 25%", 1000, 51, nil, false},
		{"50 new on 100: not above max", 100, 50, nil, false},
		{"51 new on 200: 51 > 50 (25%)", 200, 51, nil, true},
		{"51 new on 204: 51 is not above 51 (25%)", 204, 51, nil, false},
		{"first import of 51: nothing held yet", 0, 51, nil, true},
		{"own threshold holds what the global lets through", 100, 20, &jobs.SurgeThreshold{Max: 10, Percent: 5}, true},
		{"own threshold lets through what the global holds", 100, 51, &jobs.SurgeThreshold{Max: 100, Percent: 25}, false},
		{"own percent boundary: 11 on 100 at 10%", 100, 11, &jobs.SurgeThreshold{Max: 5, Percent: 10}, true},
		{"own percent boundary: 10 on 100 at 10%", 100, 10, &jobs.SurgeThreshold{Max: 5, Percent: 10}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := storetest.SQLite(t)
			f := setup(t, s)
			f.runner.Surge = global
			if c.own != nil {
				tn, err := s.LoadTenant(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for i := range tn.Customers {
					if tn.Customers[i].ID == "acme" {
						tn.Customers[i].Surge = c.own
					}
				}
				if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(context.Background(), tn); err != nil {
					t.Fatal(err)
				}
			}
			acme := f.worlds["acme"]
			var users []sources.Account
			for i := range c.ledger {
				users = append(users, user(i, jobs.EndUser))
			}
			if c.ledger > 0 {
				acme.ad.set(users...)
				if cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme"); cr.Counts.Imported != c.ledger {
					t.Fatalf("seeding the ledger: %s %+v", cr.Status, cr.Counts)
				}
			}
			for i := c.ledger; i < c.ledger+c.new; i++ {
				users = append(users, user(i, jobs.EndUser))
			}
			acme.ad.set(users...)
			cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
			if held := cr.Status == jobs.StatusHeld; held != c.held {
				t.Fatalf("held = %v, want %v (status %s, %q, %+v)", held, c.held, cr.Status, cr.Error, cr.Counts)
			}
			want := jobs.Counts{Held: c.new}
			if !c.held {
				want = jobs.Counts{Imported: c.new}
			}
			if cr.Counts.Held != want.Held || cr.Counts.Imported != want.Imported {
				t.Fatalf("counts %+v, want held %d imported %d", cr.Counts, want.Held, want.Imported)
			}
		})
	}
}

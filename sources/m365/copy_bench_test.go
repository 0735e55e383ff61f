package m365_test

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// peakLive runs f and returns the highest live heap (as the collector
// measured it at each cycle) above the live heap before f, and what is
// still live above it afterwards. The collector runs more often than by
// default meanwhile (GOGC 20) so that a short-lived peak is seen; with the
// default a process's heap grows to about twice its live heap.
func peakLive(f func()) (peak, retained uint64) {
	old := debug.SetGCPercent(20)
	defer debug.SetGCPercent(old)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := live()
	high := base
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				high = max(high, live())
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	high = max(high, live())
	runtime.GC()
	if after := live(); after > base {
		retained = after - base
	}
	return high - base, retained
}

// BenchmarkCopy100k measures the incremental reader on a 100,000-user
// tenant (8 department groups nested in one, half the users hybrid, five
// Global Administrators): the first read (full), a read without changes,
// a read after 1 % of the users changed, and CopyAccounts for the nested
// group. Besides allocations it reports the peak of the live heap above
// what was live before (peak-MB; the process's heap, collected at the
// default GOGC, grows to about twice that) and what stays live
// (retained-MB: the in-memory copy standing in for the store). The fake
// runs in the same process: "fake alone" pages through the same rounds
// with a bare client to show its share of the peak.
func BenchmarkCopy100k(b *testing.B) {
	if testing.Short() {
		b.Skip("100,000 users: skipped in -short")
	}
	const users = 100000
	srv := m365test.NewServer(m365test.Options{})
	b.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 100000, Users: users, Groups: 8, Hybrid: users / 2, Admins: 5})
	// Five groups of everyone (licences, "All Company", ...): each user
	// is in six groups, 600,000 memberships in all.
	for _, name := range []string{"Licensed E3", "All Company", "MFA Enforced", "Intune Users", "VPN"} {
		tn.AddGroup(name, gen.Users...)
	}
	ctx := context.Background()
	sel := sources.Selection{Groups: []string{"All Staff"}}
	src := newSource(b, srv)
	report := func(b *testing.B, peak, retained uint64, requests int) {
		b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		b.ReportMetric(float64(retained)/(1<<20), "retained-MB")
		b.ReportMetric(float64(requests), "requests")
	}

	b.Run("first read", func(b *testing.B) {
		b.ReportAllocs()
		var peak, retained uint64
		var rep sources.ReadReport
		for b.Loop() {
			copies := &sourcestest.Copies{}
			peak, retained = peakLive(func() {
				var err error
				if rep, err = src.Read(ctx, copies, "acme", sel, sources.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			})
			runtime.KeepAlive(copies)
			if rep.Mode != sources.ReadFull {
				b.Fatalf("first read %+v", rep)
			}
		}
		report(b, peak, retained, rep.Requests)
	})

	// The same with a store that keeps nothing: the reader's own peak
	// (and the fake's), without the in-memory copy.
	b.Run("first read into a store that keeps nothing", func(b *testing.B) {
		b.ReportAllocs()
		var peak, retained uint64
		var rep sources.ReadReport
		for b.Loop() {
			peak, retained = peakLive(func() {
				var err error
				if rep, err = src.Read(ctx, discardCopies{}, "acme", sel, sources.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			})
		}
		report(b, peak, retained, rep.Requests)
	})

	copies := &sourcestest.Copies{}
	if _, err := src.Read(ctx, copies, "acme", sel, sources.ReadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("read without changes", func(b *testing.B) {
		b.ReportAllocs()
		var peak, retained uint64
		var rep sources.ReadReport
		for b.Loop() {
			peak, retained = peakLive(func() {
				var err error
				if rep, err = src.Read(ctx, copies, "acme", sel, sources.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			})
			if rep.Mode != sources.ReadIncremental || rep.Changes != 0 {
				b.Fatalf("read %+v", rep)
			}
		}
		report(b, peak, retained, rep.Requests)
	})

	b.Run("read after 1% changed", func(b *testing.B) {
		b.ReportAllocs()
		var peak, retained uint64
		var rep sources.ReadReport
		round := 0
		for b.Loop() {
			b.StopTimer()
			round++
			for i := 0; i < users; i += 100 {
				id := gen.Users[(i+round)%users]
				tn.UpdateUser(id, func(u *m365test.User) { u.Disabled = !u.Disabled })
			}
			b.StartTimer()
			peak, retained = peakLive(func() {
				var err error
				if rep, err = src.Read(ctx, copies, "acme", sel, sources.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			})
			if rep.Mode != sources.ReadIncremental || rep.Changes != users/100 {
				b.Fatalf("read %+v", rep)
			}
		}
		report(b, peak, retained, rep.Requests)
	})

	b.Run("copy accounts", func(b *testing.B) {
		b.ReportAllocs()
		var peak, retained uint64
		for b.Loop() {
			n := 0
			peak, retained = peakLive(func() {
				for _, err := range src.CopyAccounts(ctx, copies, "acme", sel) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
			})
			if n != users {
				b.Fatalf("%d accounts", n)
			}
		}
		report(b, peak, retained, 0)
	})

	b.Run("fake alone", func(b *testing.B) {
		tok := fetchToken(b, srv)
		b.ReportAllocs()
		var peak, retained uint64
		for b.Loop() {
			peak, retained = peakLive(func() {
				for _, first := range []string{
					"/v1.0/users/delta?$select=id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,userType,onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,onPremisesSecurityIdentifier,assignedLicenses",
					"/v1.0/groups/delta?$select=id,displayName,members",
					"/v1.0/directoryRoles/delta",
				} {
					next := srv.URL + first
					for next != "" {
						req, _ := http.NewRequest(http.MethodGet, next, nil)
						req.Header.Set("Authorization", "Bearer "+tok)
						req.Header.Set("Prefer", "odata.maxpagesize=999")
						resp, err := srv.Client().Do(req)
						if err != nil {
							b.Fatal(err)
						}
						var page struct {
							NextLink string `json:"@odata.nextLink"`
						}
						err = decodeJSON(resp, &page)
						if err != nil {
							b.Fatal(err)
						}
						next = page.NextLink
					}
				}
			})
		}
		report(b, peak, retained, 0)
	})
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// discardCopies is a CopyStore that keeps nothing.
type discardCopies struct{}

func (discardCopies) CopyState(context.Context, string, string) (sources.SyncState, error) {
	return sources.SyncState{}, nil
}

func (discardCopies) CopyObjects(context.Context, string, string) iter.Seq2[sources.CopyObject, error] {
	return func(func(sources.CopyObject, error) bool) {}
}

func (discardCopies) CopyLinks(context.Context, string, string) iter.Seq2[sources.CopyLink, error] {
	return func(func(sources.CopyLink, error) bool) {}
}

func (discardCopies) ApplyCopy(context.Context, string, string, sources.CopyDelta) error { return nil }

package m365_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
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

func (discardCopies) CopyObjects(context.Context, string, string, ...string) iter.Seq2[sources.CopyObject, error] {
	return func(func(sources.CopyObject, error) bool) {}
}

func (discardCopies) CopyLinks(context.Context, string, string) iter.Seq2[sources.CopyLink, error] {
	return func(func(sources.CopyLink, error) bool) {}
}

func (discardCopies) CopyHolds(context.Context, string, string, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}

func (discardCopies) ApplyCopy(context.Context, string, string, sources.CopyDelta) error { return nil }

// The fake Graph of BenchmarkReadRSS100k runs in a child process (this
// test binary again), so that the benchmark's own resident memory is the
// reader's alone.
const fakeProcessEnv = "M365_BENCH_FAKE_GRAPH"

// TestFakeGraphProcess is the child: it serves the 100,000-user tenant of
// BenchmarkCopy100k, prints its address and credentials, and runs until
// its standard input closes.
func TestFakeGraphProcess(t *testing.T) {
	if os.Getenv(fakeProcessEnv) == "" {
		t.Skip("runs only as the fake Graph process of BenchmarkReadRSS100k")
	}
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 100000, Users: 100000, Groups: 8, Hybrid: 50000, Admins: 5})
	for _, name := range []string{"Licensed E3", "All Company", "MFA Enforced", "Intune Users", "VPN"} {
		tn.AddGroup(name, gen.Users...)
	}
	fmt.Println(srv.URL, srv.TenantID, srv.ClientID, srv.ClientSecret)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// procStatus reads a size in kB from /proc/self/status, in MB.
func procStatus(tb testing.TB, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status (%v): resident memory is measured on Linux only", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				tb.Fatalf("%s: %v", line, err)
			}
			return kb / 1024
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkReadRSS100k reads the 100,000-user tenant of BenchmarkCopy100k
// (600,000 memberships) from a fake in another process, with the default
// collector settings, and reports this process's peak resident memory
// (rss-peak-MB, VmHWM, reset before the read) and what it held before
// (rss-before-MB): the job's memory for a first read of such a customer,
// the store's excepted (it keeps nothing here).
func BenchmarkReadRSS100k(b *testing.B) {
	if testing.Short() {
		b.Skip("100,000 users: skipped in -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFakeGraphProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), fakeProcessEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	var url, tenant, client, secret string
	if _, err := fmt.Fscan(bufio.NewReader(stdout), &url, &tenant, &client, &secret); err != nil {
		b.Fatalf("the fake Graph process: %v", err)
	}
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: tenant, ClientID: client, ClientSecret: secret, LoginURL: url, GraphURL: url})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sel := sources.Selection{Groups: []string{"All Staff"}}
	var rep sources.ReadReport
	var before, peak float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Skipf("cannot reset the peak resident memory (%v)", err)
		}
		before = procStatus(b, "VmRSS")
		if rep, err = src.Read(ctx, discardCopies{}, "acme", sel, sources.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
		peak = procStatus(b, "VmHWM")
	}
	if rep.Mode != sources.ReadFull || rep.Changes < 700000 {
		b.Fatalf("read %+v", rep)
	}
	b.ReportMetric(before, "rss-before-MB")
	b.ReportMetric(peak, "rss-peak-MB")
	b.ReportMetric(float64(rep.Requests), "requests")
}

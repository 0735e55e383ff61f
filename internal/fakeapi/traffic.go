package fakeapi

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Traffic is what a vendor API fake records of the requests it is sent,
// and what it decides to do to each: counters by kind, arrival times, an
// optional rate limit over a sliding window, injected faults and an added
// latency. It has a lock of its own. A fake embeds it, so that its
// exported methods are the fake's.
type Traffic struct {
	mu        sync.Mutex
	faults    Faults
	counts    Counts
	latency   time.Duration
	arrivals  []time.Time // every request's arrival, for pacing checks
	limit     int         // requests accepted per window; 0 for no limit
	window    time.Duration
	accepted  []time.Time // accepted requests inside the window
	throttled int64
}

// SetRateLimit accepts at most n requests in any span of window; later
// ones are refused (Admit returns a wait). n <= 0 removes the limit.
func (t *Traffic) SetRateLimit(n int, window time.Duration) {
	t.mu.Lock()
	t.limit, t.window, t.accepted = max(n, 0), window, nil
	t.mu.Unlock()
}

// Inject adds a fault.
func (t *Traffic) Inject(f Fault) {
	t.mu.Lock()
	t.faults.Add(f)
	t.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (t *Traffic) ClearFaults() {
	t.mu.Lock()
	t.faults = nil
	t.mu.Unlock()
}

// SetLatency delays every later answer.
func (t *Traffic) SetLatency(d time.Duration) {
	t.mu.Lock()
	t.latency = d
	t.mu.Unlock()
}

// Count returns how many requests of a kind arrived (faulty, throttled
// and unauthenticated ones included).
func (t *Traffic) Count(kind string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

// Counts returns every counter.
func (t *Traffic) Counts() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts.Copy()
}

// Total is the number of requests of every kind.
func (t *Traffic) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts.Total()
}

// Throttled is how many requests the rate limit refused.
func (t *Traffic) Throttled() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.throttled
}

// ResetCounts sets every counter to zero and forgets arrival times.
func (t *Traffic) ResetCounts() {
	t.mu.Lock()
	t.counts, t.arrivals, t.throttled = nil, nil, 0
	t.mu.Unlock()
}

// Arrivals returns the arrival time of every admitted request since the
// last ResetCounts, in order.
func (t *Traffic) Arrivals() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Time(nil), t.arrivals...)
}

// MaxInWindow is the largest number of admitted requests that arrived
// within any span of length d (for asserting a client's pacing).
func (t *Traffic) MaxInWindow(d time.Duration) int {
	ts := t.Arrivals()
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Note counts a request refused before admission (bad credentials): it
// takes no fault and does not count against the rate limit.
func (t *Traffic) Note(kind string) {
	t.mu.Lock()
	t.count(kind)
	t.mu.Unlock()
}

func (t *Traffic) count(kind string) {
	if t.counts == nil {
		t.counts = Counts{}
	}
	t.counts[kind]++
}

// Admit counts a request of kind, applies the rate limit and picks a
// fault (one of kind or of any kind, see Faults.Take). It returns the
// fault (nil for none), the latency to add, and, when the rate limit
// refuses the request, how long until it would be accepted.
func (t *Traffic) Admit(kind string) (f *Fault, latency, wait time.Duration) {
	return t.admit(kind, Faults.Take)
}

// AdmitExact is Admit taking only a fault of this very kind (see
// Faults.TakeExact).
func (t *Traffic) AdmitExact(kind string) (f *Fault, latency, wait time.Duration) {
	return t.admit(kind, Faults.TakeExact)
}

func (t *Traffic) admit(kind string, take func(Faults, string) *Fault) (*Fault, time.Duration, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.count(kind)
	t.arrivals = append(t.arrivals, now)
	if t.limit > 0 {
		cut := 0
		for cut < len(t.accepted) && now.Sub(t.accepted[cut]) >= t.window {
			cut++
		}
		t.accepted = t.accepted[cut:]
		if len(t.accepted) >= t.limit {
			t.throttled++
			return nil, t.latency, t.accepted[0].Add(t.window).Sub(now)
		}
		t.accepted = append(t.accepted, now)
	}
	return take(t.faults, kind), t.latency, 0
}

// Serve starts an HTTP test server for h on addr ("127.0.0.1:8443"), or
// on a free loopback port when addr is empty.
func Serve(addr string, h http.Handler) (*httptest.Server, error) {
	srv := httptest.NewUnstartedServer(h)
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	return srv, nil
}

// Package fakeapi holds the request accounting and fault injection that
// autoimport's fake vendor APIs (itgluetest, hudutest, cwtest,
// autotasktest, halopsatest) share. It is not safe for concurrent use by
// itself: each fake calls it under its own lock, together with the rest
// of its state.
package fakeapi

import "time"

// Fault is an injected failure of a fake API.
type Fault struct {
	// Kind is the request kind it applies to; "" means any request.
	Kind string
	// After lets this many matching requests through untouched first.
	After int
	// Times is how many requests fail (default 1; negative: every one).
	Times int
	// Status is the answer's status (e.g. 429, 503). Zero with Malformed
	// answers 200.
	Status int
	// RetryAfter is the Retry-After header value, e.g. "1".
	RetryAfter string
	// Malformed answers a truncated JSON body.
	Malformed bool
	// Latency delays the answer (longer than the client's per-attempt
	// timeout makes a timeout).
	Latency time.Duration

	seen, used int
}

// Faults is a queue of injected faults.
type Faults []*Fault

// Add queues a fault; Times 0 means once.
func (fs *Faults) Add(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	*fs = append(*fs, &f)
}

// Take returns a copy of the first fault that applies to a request of
// kind (a fault of that kind or of any kind), counting the request
// against it, or nil.
func (fs Faults) Take(kind string) *Fault { return fs.take(kind, false) }

// TakeExact is Take for requests that only faults naming their kind
// apply to (a fake's token endpoint, say).
func (fs Faults) TakeExact(kind string) *Fault { return fs.take(kind, true) }

func (fs Faults) take(kind string, exact bool) *Fault {
	for _, f := range fs {
		if f.Kind != kind && (f.Kind != "" || exact) {
			continue
		}
		if f.Times >= 0 && f.used >= f.Times {
			continue
		}
		if f.seen < f.After {
			f.seen++
			continue
		}
		f.used++
		c := *f
		return &c
	}
	return nil
}

// Counts are requests by kind.
type Counts map[string]int64

// Copy returns a copy.
func (c Counts) Copy() map[string]int64 {
	out := make(map[string]int64, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Total is the number of requests of every kind.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

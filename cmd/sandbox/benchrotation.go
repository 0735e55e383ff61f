package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/sandbox"
	"github.com/msp-tools/autoimport/jobs"
)

// rotationResult are the figures of one rotation of every imported
// administrator.
type rotationResult struct {
	Admins             int     `json:"admins"`
	Rotated            int     `json:"rotated"`
	Failed             int     `json:"failed"`
	Status             string  `json:"status"`
	Seconds            float64 `json:"seconds"`
	RotationsPerSecond float64 `json:"rotations_per_s"`
	// Requests are the fakes' counts by integration and kind during the
	// rotation, and per rotated administrator.
	Requests []requestFigure `json:"requests"`
	// LowerBound is the larger of Graph's bound (the busiest tenant's
	// requests at its paced rate, as for imports) and the longest
	// customer's directory round trips times the latency, divided by the
	// administrators a customer rotates at once.
	LowerBound  float64 `json:"lower_bound_s"`
	BoundReason string  `json:"lower_bound_reason"`
	Ratio       float64 `json:"ratio_to_lower_bound"`
	// StoreTransactions and StoreSeconds are the rotation's write
	// transactions (pending, set and done for each) and their time summed
	// over customers, lock waits included.
	StoreTransactions int64      `json:"store_transactions"`
	StoreSeconds      float64    `json:"store_s"`
	StorePool         poolFigure `json:"store_pool"`
}

// directoryTrips are the directory round trips one rotation makes, by
// source: AD: a search to look the account up, then a search and the
// modify to set the password, on connections the customer's rotation
// workers bind once each and share; Graph: the lookup, the last-change
// read and the PATCH.
var directoryTrips = map[string]int{"Active Directory": 3, "Microsoft 365": 3}

// measureRotation rotates every imported administrator of the sandbox at
// once (as autoimport rotate --now) and collects the figures.
func measureRotation(ctx context.Context, env *sandbox.Env) (rotationResult, error) {
	var ids []string
	for _, c := range env.Customers() {
		ids = append(ids, c.ID)
	}
	env.ResetRequests()
	r := env.Runner()
	ts := &timedStore{Store: r.Store}
	pool := poolWaits(r.Store)
	r.Store = ts
	start := time.Now()
	run, err := r.Rotate(ctx, jobs.RotationRunOptions{Customers: ids, Now: true})
	if err != nil {
		return rotationResult{}, err
	}
	rr := rotationResult{Seconds: time.Since(start).Seconds(), Status: run.Status, Rotated: run.Outcomes[jobs.OutcomeRotated], Failed: run.Outcomes[jobs.OutcomeFailed],
		StoreTransactions: ts.n.Load(), StoreSeconds: time.Duration(ts.ns.Load()).Seconds(), StorePool: pool()}
	for _, c := range run.Customers {
		rr.Admins += len(c.Accounts)
	}
	rr.RotationsPerSecond = float64(rr.Rotated) / rr.Seconds
	graph := map[string]int64{}
	for _, c := range env.Requests() {
		if c.N == 0 {
			continue
		}
		f := requestFigure{Integration: c.Integration, Class: c.Kind, N: c.N}
		if rr.Rotated > 0 {
			f.PerImported = float64(c.N) / float64(rr.Rotated)
		}
		rr.Requests = append(rr.Requests, f)
		if c.Integration == sandbox.Graph && c.Kind != "token" {
			graph["all"] += c.N
		}
	}
	o := env.Options()
	lat := o.Latency.Seconds()
	if tenants := graphTenants(env); tenants > 0 {
		per := (graph["all"] + tenants - 1) / tenants
		rr.LowerBound = float64(max(0, per-graphBurst))/graphRate + lat
		rr.BoundReason = fmt.Sprintf("Graph: %d requests per tenant at %d/s", per, graphRate)
	}
	// A customer's administrators are rotated jobs.RotationWorkers at a
	// time, each one's round trips one after another.
	for _, c := range run.Customers {
		trips := 0
		for _, a := range c.Accounts {
			trips += directoryTrips[a.Target]
		}
		if s := float64(trips) * lat / jobs.RotationWorkers; s > rr.LowerBound {
			rr.LowerBound, rr.BoundReason = s, fmt.Sprintf("%s: %d administrators, %d directory round trips at %s, %d at a time", c.Customer, len(c.Accounts), trips, o.Latency, jobs.RotationWorkers)
		}
	}
	if rr.LowerBound > 0 {
		rr.Ratio = rr.Seconds / rr.LowerBound
	}
	sort.Slice(rr.Requests, func(i, j int) bool {
		a, b := rr.Requests[i], rr.Requests[j]
		return a.Integration < b.Integration || a.Integration == b.Integration && a.Class < b.Class
	})
	return rr, nil
}

func printRotation(w io.Writer, r rotationResult) {
	fmt.Fprintf(w, "\nrotation of every administrator: %.2fs, status %s, %d administrators, %d rotated, %d failed\n", r.Seconds, r.Status, r.Admins, r.Rotated, r.Failed)
	fmt.Fprintf(w, "  rotations/s: %.1f\n", r.RotationsPerSecond)
	fmt.Fprintf(w, "  requests by integration and kind:\n")
	for _, q := range r.Requests {
		fmt.Fprintf(w, "    %-18s %-22s %8d  (%.2f per rotation)\n", q.Integration, q.Class, q.N, q.PerImported)
	}
	if r.LowerBound >= 0.01 {
		fmt.Fprintf(w, "  lower bound: %.2fs (%s)\n  measured / lower bound: %.2fx\n", r.LowerBound, r.BoundReason, r.Ratio)
	} else {
		fmt.Fprintf(w, "  no lower bound from the directories at this latency: CPU and the store bound it\n")
	}
	if r.StoreTransactions > 0 {
		fmt.Fprintf(w, "  store write transactions: %d, %.2fs summed over customers (%.2f ms each)\n", r.StoreTransactions, r.StoreSeconds,
			1000*r.StoreSeconds/float64(r.StoreTransactions))
	}
	printPool(w, r.StorePool)
}

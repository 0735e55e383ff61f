package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/msp-tools/autoimport/cmd/internal/sandbox"
	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

// graphRate and graphBurst are the rate and burst cmd/internal/connect gives
// each customer tenant of the MSP's Graph app registration by default.
const graphRate, graphBurst = 60, 20

// autotaskThreads is how many requests per endpoint Autotask (and its
// fake, by default) runs at once for one integration.
const autotaskThreads = 3

// benchReport is what `sandbox bench --json` writes.
type benchReport struct {
	Customers   int     `json:"customers"`
	Accounts    int     `json:"accounts_per_customer"`
	LatencyMS   float64 `json:"latency_ms"`
	RateLimit   float64 `json:"rate_limit_per_s"`
	FaultRate   float64 `json:"fault_rate"`
	Seed        uint64  `json:"seed"`
	Concurrency int     `json:"concurrency"`
	GoVersion   string  `json:"go_version"`
	CPUs        int     `json:"cpus"`
	When        string  `json:"when"`
	// JobMemoryLimit is the job process's GOMEMLIMIT (--job-memory-limit).
	JobMemoryLimit string `json:"job_memory_limit,omitempty"`
	// SetupSeconds is the time to start and seed the fakes and apply the
	// tenant.
	SetupSeconds float64 `json:"setup_s"`
	// PeakRSSBytes is the process's resident high-water mark (VmHWM) at
	// the end: fakes, store and job together; 0 where /proc is missing.
	PeakRSSBytes int64       `json:"peak_rss_bytes"`
	Runs         []runResult `json:"runs"`
	// Rotation is the rotation of every imported administrator after
	// the runs (not in a dry run).
	Rotation *rotationResult `json:"rotation,omitempty"`
}

// readFigure sums up how one run read one kind of directory in one mode.
type readFigure struct {
	Source    string `json:"source"`
	Mode      string `json:"mode"`
	Customers int    `json:"customers"`
	Requests  int    `json:"requests"`
	// MaxRequests is the most one customer's read made.
	MaxRequests int `json:"max_requests_per_customer"`
	Changes     int `json:"changes"`
	// MaxSeconds is the longest one customer's read took, MaxWaited the
	// longest a full read waited for its turn (AUTOIMPORT_FULL_READS).
	MaxSeconds float64 `json:"max_seconds_per_customer"`
	MaxWaited  float64 `json:"max_waited_s,omitempty"`
}

// runResult are one run's figures.
type runResult struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	Status     string  `json:"status"`
	Candidates int     `json:"candidates"`
	Imported   int     `json:"imported"`
	Failed     int     `json:"failed"`
	// Ambiguous accounts are left for a technician and planned again,
	// with their sink's listing, on every run.
	Ambiguous int `json:"ambiguous"`
	// AccountsPerSecond counts every candidate account the run went
	// through; ImportedPerSecond only those it imported.
	AccountsPerSecond float64 `json:"accounts_per_s"`
	ImportedPerSecond float64 `json:"imported_per_s"`
	// Requests are the fakes' counts by integration and class (list,
	// create, other), and per imported account when any was imported.
	Requests    []requestFigure `json:"requests"`
	WriteTotal  int64           `json:"write_requests"`
	LimiterWait []limiterFigure `json:"limiter_wait"`
	// LowerBound is the largest, over API credentials, of the requests
	// made beyond the limiter's burst divided by the credential's allowed
	// rate, plus one latency.
	LowerBound      float64           `json:"lower_bound_s"`
	BoundCredential string            `json:"lower_bound_credential"`
	Bounds          []credentialBound `json:"bounds"`
	Ratio           float64           `json:"ratio_to_lower_bound"`
	// AutotaskThreads is how the busiest Autotask endpoint's threads were
	// used in the run, when any was.
	AutotaskThreads *threadFigure `json:"autotask_threads,omitempty"`
	// Reads say how the directories were read; Settled counts the
	// customers whose pass found nothing changed since their last one.
	Reads   []readFigure `json:"reads,omitempty"`
	Settled int          `json:"settled_customers"`
	// SerialEstimate is the longest customer's sequential writes times the
	// latency: each customer's accounts are applied one at a time.
	SerialEstimate float64 `json:"serial_estimate_s"`
	SerialCustomer string  `json:"serial_estimate_customer"`
	PeakHeapInuse  uint64  `json:"peak_heap_inuse_bytes"`
	// Slowest are the customers that took longest, slowest first.
	Slowest []customerTime `json:"slowest_customers"`
	// HeapInuseBefore is the heap in use just before the run, after a
	// collection: mostly the fakes' seeded state.
	HeapInuseBefore uint64 `json:"heap_inuse_before_bytes"`
	// StoreTransactions and StoreSeconds are the job's write transactions
	// and the time they took, summed over customers (lock waits
	// included).
	StoreTransactions int64   `json:"store_transactions"`
	StoreSeconds      float64 `json:"store_s"`
	// StorePool is the waits for a free database connection (in the
	// store transactions' time, and the Technician Vault's writes).
	StorePool poolFigure `json:"store_pool"`
	// JobPeakRSS is the job process's resident high-water mark, with
	// --job-process: the job's own memory, no fake's.
	JobPeakRSS int64 `json:"job_peak_rss_bytes,omitempty"`
	// JobMemoryLimit is the job process's soft memory limit, as it read
	// it (--job-memory-limit).
	JobMemoryLimit int64 `json:"job_memory_limit_bytes,omitempty"`
	// CPU is where the run's CPU time went.
	CPU *cpuFigure `json:"cpu,omitempty"`
}

type customerTime struct {
	Customer string  `json:"customer"`
	Profile  string  `json:"profile"`
	Seconds  float64 `json:"seconds"`
	Imported int     `json:"imported"`
	// Times says where the customer's pass spent them.
	Times jobs.PassTimes `json:"times"`
}

type requestFigure struct {
	Integration string  `json:"integration"`
	Class       string  `json:"class"`
	N           int64   `json:"n"`
	PerImported float64 `json:"per_imported,omitempty"`
}

type limiterFigure struct {
	Integration string  `json:"integration"`
	Clients     int     `json:"clients"`
	Requests    int64   `json:"requests"`
	Retries     int64   `json:"retries"`
	Throttled   int64   `json:"throttled"`
	WaitSeconds float64 `json:"wait_s"`
}

type credentialBound struct {
	Credential string  `json:"credential"`
	Requests   int64   `json:"requests"`
	Rate       float64 `json:"rate_per_s"`
	Seconds    float64 `json:"seconds"`
	// Note says when the bound is not requests over rate.
	Note string `json:"note,omitempty"`
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f flags
	f.register(fs, 10, 100, 20*time.Millisecond)
	jsonFile := fs.String("json", "", "write the figures to this file as JSON")
	dryRun := fs.Bool("dry-run", false, "measure one dry run (read and plan, write nothing) instead of a first run and a re-run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of both runs to this file (go tool pprof reads it)")
	jobProcess := fs.Bool("job-process", false, "run the job in a process of its own, so that its peak memory is measured apart from the fakes'")
	jobMemoryLimit := fs.String("job-memory-limit", "", "with --job-process, the job process's soft memory limit (GOMEMLIMIT, e.g. 150MiB)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sandbox bench [flags]: a first run, a no-change re-run and a rotation of every administrator over a scaled sandbox, measured")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := f.check(); err != nil {
		fmt.Fprintln(stderr, "sandbox bench:", err)
		return exitUsage
	}
	if *jobMemoryLimit != "" && !*jobProcess {
		fmt.Fprintln(stderr, "sandbox bench: --job-memory-limit limits the job process: add --job-process")
		return exitUsage
	}
	tempDir := f.dir == ""
	opts, err := f.options()
	if err != nil {
		fmt.Fprintln(stderr, "sandbox bench:", err)
		return exitFailed
	}
	if tempDir {
		defer os.RemoveAll(opts.Dir)
	}
	fmt.Fprintf(stdout, "bench: %d customers x %d users, latency %s, %g requests/s per credential, fault rate %g, seed %d\n",
		opts.Customers, opts.Accounts, opts.Latency, opts.RateLimit, opts.FaultRate, opts.Seed)
	if *jobMemoryLimit != "" {
		fmt.Fprintf(stdout, "job process memory limit: GOMEMLIMIT=%s\n", *jobMemoryLimit)
	}
	start := time.Now()
	env, err := sandbox.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer env.Close()
	o := env.Options()
	br := benchReport{Customers: o.Customers, Accounts: o.Accounts, LatencyMS: float64(o.Latency) / float64(time.Millisecond), RateLimit: o.RateLimit,
		FaultRate: o.FaultRate, Seed: o.Seed, Concurrency: o.Concurrency, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		When: time.Now().UTC().Format(time.RFC3339), SetupSeconds: time.Since(start).Seconds(), JobMemoryLimit: *jobMemoryLimit}
	fmt.Fprintf(stdout, "setup (fakes, seeding, tenant applied): %.1fs\n", br.SetupSeconds)

	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			fmt.Fprintln(stderr, "sandbox bench:", err)
			return exitFailed
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	code := exitOK
	// Side by side: a re-run that reads only what changed (the first finds
	// nothing to do, the second that nothing changed since: a settled
	// pass), one that reads every directory whole as before incremental
	// reads, and one after 1 % of the users were hired.
	runs := []struct {
		name   string
		opt    jobs.RunOptions
		before func() error
	}{
		{"first run", jobs.RunOptions{AllowSurge: true}, nil},
		{"no-change re-run", jobs.RunOptions{}, nil},
		{"no-change re-run once more", jobs.RunOptions{}, nil},
		{"no-change re-run, directories read in full", jobs.RunOptions{FullRead: true}, nil},
		{"re-run after 1 % of users were hired", jobs.RunOptions{}, func() error { _, err := env.Hire(0.01, 1); return err }},
	}
	if *dryRun {
		runs = runs[:1]
		runs[0].name, runs[0].opt.DryRun = "dry run", true
	}
	for i, run := range runs {
		if i > 0 {
			env.ClearFaults()
		}
		if run.before != nil {
			if err := run.before(); err != nil {
				fmt.Fprintln(stderr, "sandbox bench:", err)
				return exitFailed
			}
		}
		rr, err := measure(ctx, env, run.name, run.opt, jobProcessOf(*jobProcess, *jobMemoryLimit), stderr)
		if err != nil {
			fmt.Fprintln(stderr, "sandbox bench:", err)
			return exitFailed
		}
		printRun(stdout, rr)
		br.Runs = append(br.Runs, rr)
		if rr.Status != jobs.StatusOK {
			code = exitFailed
		}
	}
	if !*dryRun {
		env.ClearFaults()
		rot, err := measureRotation(ctx, env)
		if err != nil {
			fmt.Fprintln(stderr, "sandbox bench: rotation:", err)
			return exitFailed
		}
		printRotation(stdout, rot)
		br.Rotation = &rot
		if rot.Status != jobs.StatusOK {
			code = exitFailed
		}
	}
	br.PeakRSSBytes = vmHWM()
	if br.PeakRSSBytes > 0 {
		fmt.Fprintf(stdout, "peak resident memory of the whole process (fakes included): %s\n", mib(uint64(br.PeakRSSBytes)))
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(br, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "sandbox bench:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "figures written to %s\n", *jsonFile)
	}
	return code
}

// threadFigure is how one Autotask endpoint's threads were used in a
// run: its requests held a thread HeldMs each on average (the fakes'
// latency and the fake's own work), and all of them were busy at once for
// AllBusySeconds. An Autotask-bound run can end no sooner than
// Requests x HeldMs / autotaskThreads.
type threadFigure struct {
	Endpoint       string  `json:"endpoint"`
	Requests       int64   `json:"requests"`
	HeldMs         float64 `json:"held_ms"`
	AllBusySeconds float64 `json:"all_busy_s"`
}

// autotaskEndpoints are the Autotask fake's thread-limited endpoints.
var autotaskEndpoints = []string{autotasktest.KindQueryContacts, autotasktest.KindCountContacts, autotasktest.KindCreateContact,
	autotasktest.KindContact, autotasktest.KindCompany, autotasktest.KindThreshold}

// autotaskThreadUse is what the Autotask fake says of its endpoints'
// threads so far.
func autotaskThreadUse(env *sandbox.Env) map[string]autotasktest.ThreadUse {
	out := map[string]autotasktest.ThreadUse{}
	for _, k := range autotaskEndpoints {
		out[k] = env.Autotask.Threads(k)
	}
	return out
}

// busiestEndpoint is the endpoint whose threads were held longest between
// two readings of autotaskThreadUse; nil when none was used.
func busiestEndpoint(before, after map[string]autotasktest.ThreadUse) *threadFigure {
	var out *threadFigure
	var held time.Duration
	for _, k := range autotaskEndpoints {
		a, b := after[k], before[k]
		if n := a.Requests - b.Requests; n > 0 && a.Held-b.Held > held {
			held = a.Held - b.Held
			out = &threadFigure{Endpoint: k, Requests: n, HeldMs: float64(held) / float64(time.Millisecond) / float64(n), AllBusySeconds: (a.AllBusy - b.AllBusy).Seconds()}
		}
	}
	return out
}

// jobProcess is how the job's own process is started: with what more in
// its environment.
type jobProcess struct{ env []string }

// jobProcessOf is the job process --job-process and --job-memory-limit
// ask for; nil runs the job in this process.
func jobProcessOf(on bool, memoryLimit string) *jobProcess {
	if !on {
		return nil
	}
	jp := &jobProcess{}
	if memoryLimit != "" {
		jp.env = append(jp.env, "GOMEMLIMIT="+memoryLimit)
	}
	return jp
}

// measure runs the job once, in this process or (jobProcess) in a child
// process of its own, and collects the figures.
func measure(ctx context.Context, env *sandbox.Env, name string, opt jobs.RunOptions, jobProcess *jobProcess, stderr io.Writer) (runResult, error) {
	env.ResetRequests()
	threadsBefore := autotaskThreadUse(env)
	var jf jobFigures
	var fakesCPU []cpuSample
	var err error
	if start := time.Now(); jobProcess != nil {
		fakes := traceCPU(start)
		jf, err = runJobProcess(ctx, append(env.Environ(), jobProcess.env...), env.Options().Concurrency, opt, start, stderr)
		fakesCPU = fakes()
	} else {
		jf, err = runJob(ctx, env.Runner(), opt, start)
	}
	if err != nil {
		return runResult{}, err
	}
	threadsAfter := autotaskThreadUse(env)
	o := env.Options()
	t := jf.Totals
	rr := runResult{AutotaskThreads: busiestEndpoint(threadsBefore, threadsAfter), Name: name, Seconds: jf.Seconds, Status: jf.Status, Candidates: t.Candidates, Imported: t.Imported, Failed: t.Failed, Ambiguous: t.Ambiguous,
		PeakHeapInuse: jf.PeakHeapInuse, HeapInuseBefore: jf.HeapInuseBefore, LimiterWait: jf.LimiterWait, StoreTransactions: jf.StoreTransactions,
		StoreSeconds: jf.StoreSeconds, StorePool: jf.StorePool, JobPeakRSS: jf.PeakRSSBytes, JobMemoryLimit: jf.MemoryLimitBytes, CPU: cpuOf(jf, fakesCPU)}
	rr.AccountsPerSecond = float64(rr.Candidates) / jf.Seconds
	rr.ImportedPerSecond = float64(rr.Imported) / jf.Seconds

	byClass := map[[2]string]int64{}
	perCred := map[string]int64{}
	perKind := map[string]map[string]int64{}
	for _, c := range env.Requests() {
		byClass[[2]string{c.Integration, c.Class}] += c.N
		if c.Class == sandbox.ClassCreate {
			rr.WriteTotal += c.N
		}
		if c.Integration != sandbox.Graph || c.Kind != "token" {
			perCred[c.Integration] += c.N // Graph's tokens do not pass its limiter
		}
		if perKind[c.Integration] == nil {
			perKind[c.Integration] = map[string]int64{}
		}
		perKind[c.Integration][c.Kind] += c.N
	}
	for k, n := range byClass {
		f := requestFigure{Integration: k[0], Class: k[1], N: n}
		if rr.Imported > 0 {
			f.PerImported = float64(n) / float64(rr.Imported)
		}
		rr.Requests = append(rr.Requests, f)
	}
	sort.Slice(rr.Requests, func(i, j int) bool {
		a, b := rr.Requests[i], rr.Requests[j]
		return a.Integration < b.Integration || a.Integration == b.Integration && a.Class < b.Class
	})

	// The lower bound: each HTTP credential's requests at its allowed rate.
	// Autotask also runs at most autotaskThreads requests per endpoint at
	// once, which at the fakes' latency is a rate of its own.
	lat := o.Latency.Seconds()
	// Graph is paced per customer tenant: its bound is one tenant's share.
	tenants := graphTenants(env)
	if tenants > 0 {
		perCred[sandbox.Graph] = (perCred[sandbox.Graph] + tenants - 1) / tenants
	}
	for _, cr := range []struct {
		name  string
		rate  float64
		burst int
	}{{sandbox.ITGlue, o.RateLimit, 1}, {sandbox.Hudu, o.RateLimit, 1}, {sandbox.ConnectWise, o.RateLimit, 1}, {sandbox.Autotask, o.RateLimit, autotask.DefaultBurst},
		{sandbox.HaloPSA, o.RateLimit, 1}, {sandbox.Graph, graphRate, graphBurst}} {
		n := perCred[cr.name]
		b := credentialBound{Credential: cr.name, Requests: n, Rate: cr.rate, Seconds: float64(max(0, n-int64(cr.burst)))/cr.rate + lat}
		if cr.name == sandbox.Autotask && lat > 0 {
			for kind, kn := range perKind[cr.name] {
				if s := float64(kn)*lat/autotaskThreads + lat; s > b.Seconds {
					b.Seconds, b.Note = s, fmt.Sprintf("%d %s requests, %d at a time", kn, kind, autotaskThreads)
				}
			}
		}
		rr.Bounds = append(rr.Bounds, b)
		if b.Seconds > rr.LowerBound {
			rr.LowerBound, rr.BoundCredential = b.Seconds, cr.name
		}
	}
	if rr.LowerBound > 0 {
		rr.Ratio = rr.Seconds / rr.LowerBound
	}
	// Each customer's writes happen one account at a time.
	info := map[string]sandbox.CustomerInfo{}
	for _, c := range env.Customers() {
		info[c.ID] = c
	}
	rr.Reads = readFigures(jf.Customers)
	for _, c := range jf.Customers {
		if c.Settled {
			rr.Settled++
		}
		rr.Slowest = append(rr.Slowest, customerTime{Customer: c.ID, Profile: info[c.ID].Profile, Seconds: c.Seconds, Imported: c.Counts.Imported, Times: c.Times})
	}
	sort.Slice(rr.Slowest, func(i, j int) bool { return rr.Slowest[i].Seconds > rr.Slowest[j].Seconds })
	rr.Slowest = rr.Slowest[:min(3, len(rr.Slowest))]
	for _, c := range jf.Customers {
		writes := c.Counts.PSACreated + 2*c.Counts.EmailsSent // the SMTP fake delays MAIL and DATA
		if info[c.ID].Vault != "Technician Vault" {
			writes += c.Counts.VaultCreated
		}
		if s := float64(writes) * lat; s > rr.SerialEstimate {
			rr.SerialEstimate, rr.SerialCustomer = s, c.ID
		}
	}
	return rr, nil
}

// readFigures sums the customers' reads by source and mode.
func readFigures(customers []customerFigure) []readFigure {
	var out []readFigure
	at := map[[2]string]int{}
	for _, c := range customers {
		for _, r := range c.Reads {
			k := [2]string{string(r.Source), r.Mode}
			i, ok := at[k]
			if !ok {
				i, at[k] = len(out), len(out)
				out = append(out, readFigure{Source: k[0], Mode: k[1]})
			}
			f := &out[i]
			f.Customers++
			f.Requests += r.Requests
			f.MaxRequests = max(f.MaxRequests, r.Requests)
			f.Changes += r.Changes
			f.MaxSeconds = max(f.MaxSeconds, r.Seconds)
			f.MaxWaited = max(f.MaxWaited, r.Waited)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Source < out[j].Source || out[i].Source == out[j].Source && out[i].Mode < out[j].Mode
	})
	return out
}

func printRun(w io.Writer, r runResult) {
	fmt.Fprintf(w, "\n%s: %.2fs, status %s, %d candidate accounts, %d imported, %d ambiguous, %d failed\n", r.Name, r.Seconds, r.Status, r.Candidates, r.Imported, r.Ambiguous, r.Failed)
	fmt.Fprintf(w, "  accounts/s: %.1f (imported/s: %.1f)\n", r.AccountsPerSecond, r.ImportedPerSecond)
	fmt.Fprintf(w, "  requests by integration and kind:\n")
	for _, q := range r.Requests {
		per := ""
		if r.Imported > 0 {
			per = fmt.Sprintf("  (%.3f per imported account)", q.PerImported)
		}
		fmt.Fprintf(w, "    %-18s %-7s %8d%s\n", q.Integration, q.Class, q.N, per)
	}
	fmt.Fprintf(w, "  write requests in all: %d\n", r.WriteTotal)
	if len(r.Reads) > 0 {
		fmt.Fprintf(w, "  directory reads:\n")
		for _, f := range r.Reads {
			fmt.Fprintf(w, "    %-5s %-11s %4d customers, %7d requests (at most %d for one customer), %d changes, the longest %.2fs", f.Source, f.Mode, f.Customers, f.Requests, f.MaxRequests, f.Changes, f.MaxSeconds)
			if f.MaxWaited >= 0.005 {
				fmt.Fprintf(w, "; a full read waited for its turn up to %.2fs", f.MaxWaited)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  customers with nothing changed since their last pass (its report repeated, ledger and copies not read): %d\n", r.Settled)
	}
	fmt.Fprintf(w, "  waiting on rate limiters (summed over clients):\n")
	for _, l := range r.LimiterWait {
		fmt.Fprintf(w, "    %-18s %8.2fs over %d requests (%d retries, %d throttled) by %d clients\n", l.Integration, l.WaitSeconds, l.Requests, l.Retries, l.Throttled, l.Clients)
	}
	fmt.Fprintf(w, "  lower bound: %.2fs (%s", r.LowerBound, r.BoundCredential)
	for _, b := range r.Bounds {
		if b.Requests == 0 {
			continue
		}
		fmt.Fprintf(w, "; %s %d req / %g/s", b.Credential, b.Requests, b.Rate)
		if b.Note != "" {
			fmt.Fprintf(w, " or %s: %.2fs", b.Note, b.Seconds)
		}
	}
	fmt.Fprintf(w, ")\n  measured / lower bound: %.2fx\n", r.Ratio)
	if a := r.AutotaskThreads; a != nil && r.BoundCredential == sandbox.Autotask {
		fmt.Fprintf(w, "  Autotask %s: all %d threads busy %.2fs of the run; its %d requests held a thread %.1f ms each (%.2fs at %d at a time)\n",
			a.Endpoint, autotaskThreads, a.AllBusySeconds, a.Requests, a.HeldMs, float64(a.Requests)*a.HeldMs/1000/autotaskThreads, autotaskThreads)
	}
	if r.SerialEstimate > 0 {
		fmt.Fprintf(w, "  longest customer's sequential writes x latency: %.2fs (%s)\n", r.SerialEstimate, r.SerialCustomer)
	}
	for _, c := range r.Slowest {
		fmt.Fprintf(w, "  slow customer: %s (%s) %.2fs, %d imported: %s\n", c.Customer, c.Profile, c.Seconds, c.Imported,
			c.Times.String(time.Duration(c.Seconds*float64(time.Second))))
	}
	r.CPU.print(w, r.Seconds)
	if r.StoreTransactions > 0 {
		fmt.Fprintf(w, "  store write transactions: %d, %.2fs summed over customers (%.2f ms each)\n", r.StoreTransactions, r.StoreSeconds,
			1000*r.StoreSeconds/float64(r.StoreTransactions))
	}
	printPool(w, r.StorePool)
	if r.JobPeakRSS > 0 {
		limit := ""
		if r.JobMemoryLimit > 0 {
			limit = ", under a soft limit of " + mib(uint64(r.JobMemoryLimit))
		}
		fmt.Fprintf(w, "  job process: peak resident memory %s, peak heap in use %s%s\n", mib(uint64(r.JobPeakRSS)), mib(r.PeakHeapInuse), limit)
	} else {
		fmt.Fprintf(w, "  peak heap in use: %s (%s before the run, mostly the fakes' data)\n", mib(r.PeakHeapInuse), mib(r.HeapInuseBefore))
	}
}

// timedStore times the job's write transactions.
type timedStore struct {
	jobs.Store
	n, ns atomic.Int64
}

// poolFigure is how often and how long the store's users waited for a
// free database connection (database/sql's pool), over one measured run.
type poolFigure struct {
	MaxOpen     int     `json:"max_open"`
	Waits       int64   `json:"waits"`
	WaitSeconds float64 `json:"wait_s"`
}

// poolWaits starts counting the store's connection waits; the returned
// function gives the figure since. A store without a pool gives none.
func poolWaits(s jobs.Store) func() poolFigure {
	p, ok := s.(interface{ DB() *sqlx.DB })
	if !ok {
		return func() poolFigure { return poolFigure{} }
	}
	before := p.DB().Stats()
	return func() poolFigure {
		after := p.DB().Stats()
		return poolFigure{MaxOpen: after.MaxOpenConnections, Waits: after.WaitCount - before.WaitCount, WaitSeconds: (after.WaitDuration - before.WaitDuration).Seconds()}
	}
}

func printPool(w io.Writer, p poolFigure) {
	if p.MaxOpen > 0 {
		fmt.Fprintf(w, "  waiting for one of the store's %d connections: %d times, %.2fs summed\n", p.MaxOpen, p.Waits, p.WaitSeconds)
	}
}

func (s *timedStore) Update(ctx context.Context, fn func(jobs.Tx) error) error {
	start := time.Now()
	err := s.Store.Update(ctx, fn)
	s.n.Add(1)
	s.ns.Add(int64(time.Since(start)))
	return err
}

// statsConnector records the REST clients a run makes, to read their
// limiter waits afterwards.
type statsConnector struct {
	inner   jobs.Connector
	mu      sync.Mutex
	clients []namedStats
}

type statser interface{ Stats() restclient.Stats }

type namedStats struct {
	name string
	s    statser
}

func (sc *statsConnector) Connect(ctx context.Context, t *jobs.Tenant, c jobs.Customer) (*jobs.Connections, error) {
	conn, err := sc.inner.Connect(ctx, t, c)
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	seen := map[statser]bool{}
	add := func(name string, v any) {
		if s, ok := v.(statser); ok && !seen[s] {
			seen[s] = true
			sc.clients = append(sc.clients, namedStats{name, s})
		}
	}
	types := make([]jobs.AccountType, 0, len(conn.Vaults))
	for typ := range conn.Vaults {
		types = append(types, typ)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	for _, typ := range types {
		var v sinks.Vault = conn.Vaults[typ]
		add(v.Name(), v)
	}
	if conn.PSA != nil {
		add(conn.PSA.Name(), conn.PSA)
	}
	if conn.M365 != nil {
		add(sandbox.Graph, conn.M365)
	}
	return conn, nil
}

func (sc *statsConnector) figures() []limiterFigure {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	by := map[string]*limiterFigure{}
	for _, c := range sc.clients {
		f := by[c.name]
		if f == nil {
			f = &limiterFigure{Integration: c.name}
			by[c.name] = f
		}
		s := c.s.Stats()
		f.Clients++
		f.Requests += s.Requests
		f.Retries += s.Retries
		f.Throttled += s.Throttled
		f.WaitSeconds += s.LimiterWait.Seconds()
	}
	out := make([]limiterFigure, 0, len(by))
	for _, f := range by {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Integration < out[j].Integration })
	return out
}

// sampleHeap samples HeapInuse until the returned function is called,
// which returns the largest value seen.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var peak uint64
	read := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapInuse)
		mu.Unlock()
	}
	read()
	stop := sampling(50*time.Millisecond, read)
	return func() uint64 {
		stop()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// sampling calls take every interval until the returned function is
// called, which stops it, takes one last sample and returns once no take
// runs.
func sampling(every time.Duration, take func()) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		take()
	}
}

// vmHWM is the process's peak resident set size from /proc/self/status,
// or 0 where there is none.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// graphTenants counts the customers with a Microsoft 365 tenant: Graph
// paces each tenant apart.
func graphTenants(env *sandbox.Env) int64 {
	n := int64(0)
	for _, c := range env.Customers() {
		if strings.Contains(c.Profile, "M365") {
			n++
		}
	}
	return n
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/sirupsen/logrus"
)

// jobFigures are what the job's side of a measured run reports: measured
// in this process, or in a child process of its own (--job-process), where
// the peak memory is the job's alone.
type jobFigures struct {
	Seconds           float64          `json:"seconds"`
	Status            string           `json:"status"`
	Totals            jobs.Counts      `json:"totals"`
	Customers         []customerFigure `json:"customers"`
	PeakHeapInuse     uint64           `json:"peak_heap_inuse_bytes"`
	HeapInuseBefore   uint64           `json:"heap_inuse_before_bytes"`
	LimiterWait       []limiterFigure  `json:"limiter_wait"`
	StoreTransactions int64            `json:"store_transactions"`
	StoreSeconds      float64          `json:"store_s"`
	StorePool         poolFigure       `json:"store_pool"`
	PeakRSSBytes      int64            `json:"peak_rss_bytes,omitempty"`
	// MemoryLimitBytes is the process's soft memory limit (GOMEMLIMIT);
	// 0 when there is none.
	MemoryLimitBytes int64 `json:"memory_limit_bytes,omitempty"`
	// CPU is the process's CPU time while the job ran, from RunStart:
	// when the run began, in seconds after the measurement did (a job
	// process's start in between).
	CPU      []cpuSample `json:"cpu,omitempty"`
	RunStart float64     `json:"run_start_s"`
}

type customerFigure struct {
	ID      string      `json:"id"`
	Seconds float64     `json:"seconds"`
	Counts  jobs.Counts `json:"counts"`
	// Reads say how each directory was read: full or incremental, why,
	// and its requests.
	Reads []sources.ReadReport `json:"reads,omitempty"`
	// Settled says the pass found nothing changed since the last one
	// and repeated its report.
	Settled bool `json:"settled,omitempty"`
	// Times says where the pass's time went.
	Times jobs.PassTimes `json:"times"`
}

// runJob runs r once and measures the job's side; its CPU samples count
// from start.
func runJob(ctx context.Context, r *jobs.Runner, opt jobs.RunOptions, start time.Time) (jobFigures, error) {
	sc := &statsConnector{inner: r.Connector}
	r.Connector = sc
	ts := &timedStore{Store: r.Store}
	pool := poolWaits(r.Store)
	r.Store = ts
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap()
	cpu := traceCPU(start)
	began := time.Now()
	rep, err := r.Run(ctx, opt)
	elapsed := time.Since(began)
	heap := peak()
	samples := cpu()
	if err != nil {
		return jobFigures{}, err
	}
	jf := jobFigures{Seconds: elapsed.Seconds(), Status: rep.Status, Totals: rep.Totals, PeakHeapInuse: heap, HeapInuseBefore: before.HeapInuse,
		LimiterWait: sc.figures(), StoreTransactions: ts.n.Load(), StoreSeconds: time.Duration(ts.ns.Load()).Seconds(), StorePool: pool(), CPU: samples, RunStart: began.Sub(start).Seconds()}
	for _, c := range rep.Customers {
		jf.Customers = append(jf.Customers, customerFigure{ID: c.Customer, Seconds: c.Elapsed.Seconds(), Counts: c.Counts, Reads: c.Reads, Settled: c.Settled(), Times: c.Times})
	}
	return jf, nil
}

// jobCommand is the hidden subcommand the benchmark runs as its job
// process.
const jobCommand = "bench-job"

// runJobProcess runs the job in a child process of this program against
// the sandbox's store and fakes, and reads its figures; its CPU samples
// count from start.
func runJobProcess(ctx context.Context, env []string, concurrency int, opt jobs.RunOptions, start time.Time, stderr io.Writer) (jobFigures, error) {
	self, err := os.Executable()
	if err != nil {
		return jobFigures{}, err
	}
	args := []string{jobCommand, "--concurrency", fmt.Sprint(concurrency), "--start", strconv.FormatInt(start.UnixNano(), 10)}
	if opt.DryRun {
		args = append(args, "--dry-run")
	}
	if opt.AllowSurge {
		args = append(args, "--allow-surge")
	}
	if opt.FullRead {
		args = append(args, "--full")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return jobFigures{}, fmt.Errorf("job process: %w", err)
	}
	var jf jobFigures
	if err := json.Unmarshal(out.Bytes(), &jf); err != nil {
		return jobFigures{}, fmt.Errorf("job process: its figures: %w", err)
	}
	return jf, nil
}

// benchJob is the job process: one run over the store and secrets its
// environment names (AUTOIMPORT_DATABASE_URL, AUTOIMPORT_SECRET_KEY,
// AUTOIMPORT_SECRETS_DIR and the sandbox's SANDBOX_* references), its figures as JSON on stdout.
func benchJob(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox "+jobCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "plan only")
	allowSurge := fs.Bool("allow-surge", false, "import past the surge guard")
	full := fs.Bool("full", false, "read every directory whole")
	concurrency := fs.Int("concurrency", 8, "customers at once")
	startNanos := fs.Int64("start", 0, "when the measured run began, in Unix nanoseconds (its CPU samples count from then; 0: from the job's start)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sandbox %s: %v\n", jobCommand, err)
		return exitFailed
	}
	key, err := secret.ParseKey(os.Getenv("AUTOIMPORT_SECRET_KEY"))
	if err != nil {
		return fail(err)
	}
	s, err := store.Open(ctx, os.Getenv("AUTOIMPORT_DATABASE_URL"), store.WithAuditKey(jobs.NewAuditKey(key)))
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetLevel(logrus.WarnLevel)
	r := &jobs.Runner{Store: s, Connector: &connect.Connector{Key: key, TechVault: s, Log: log, SecretsDir: os.Getenv(secret.SecretsDirVar)}, Log: log, Holder: "sandbox-bench", LeaseTTL: 10 * time.Minute,
		Concurrency: *concurrency, Surge: jobs.SurgeThreshold{Max: 50, Percent: 20}, Copies: s}
	start := time.Now()
	if *startNanos != 0 {
		start = time.Unix(0, *startNanos)
	}
	jf, err := runJob(ctx, r, jobs.RunOptions{DryRun: *dryRun, AllowSurge: *allowSurge, FullRead: *full}, start)
	if err != nil {
		return fail(err)
	}
	jf.PeakRSSBytes = vmHWM()
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		jf.MemoryLimitBytes = limit
	}
	if err := json.NewEncoder(stdout).Encode(jf); err != nil {
		return fail(err)
	}
	return exitOK
}

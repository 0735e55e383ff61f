package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"
)

func (a *app) runCommand() *cobra.Command {
	var once, dryRun, allowSurge, full bool
	var customers []string
	c := &cobra.Command{
		Use:   "run [--once [--customer C]... [--dry-run] [--allow-surge] [--full]]",
		Short: "Import accounts: on AUTOIMPORT_SCHEDULE (default), or once and exit",
		Long: `Without --once, run the scheduler: an import on every tick of AUTOIMPORT_SCHEDULE,
never two at once, each followed by the rotation of the administrators that
are due, with /healthz and /metrics on AUTOIMPORT_HTTP_ADDR. SIGTERM
finishes the account in hand, records it, releases the leases and exits 0.

With --once, import every customer (or those named) once and exit:
0 all good, 1 a customer failed or was held by the surge guard, 2 bad usage.
--dry-run prints the plan and writes nothing anywhere. Directories are read
incrementally where they can be (only what changed since the last run);
--full reads them whole this time (reconciling: what is not seen is gone).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once && (dryRun || allowSurge || full || len(customers) > 0) {
				return usageError{fmt.Errorf("--customer, --dry-run, --allow-surge and --full go with --once")}
			}
			if allowSurge && len(customers) == 0 {
				return usageError{fmt.Errorf("--allow-surge needs --customer C: approve a surge for named customers only")}
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if once {
				return a.runOnce(cmd.Context(), jobs.RunOptions{Customers: customers, DryRun: dryRun, AllowSurge: allowSurge, FullRead: full})
			}
			return a.schedule(cmd.Context())
		},
	}
	c.Flags().BoolVar(&once, "once", false, "run once and exit")
	c.Flags().StringSliceVar(&customers, "customer", nil, "only this customer (repeat or comma-separate)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing anywhere")
	c.Flags().BoolVar(&allowSurge, "allow-surge", false, "import a surge the guard held, for the named customers")
	c.Flags().BoolVar(&full, "full", false, "read every directory whole this time, not only what changed")
	return c
}

// connector builds customers' clients with this process's secrets: the
// key, AUTOIMPORT_SECRETS_DIR, and the database password withheld.
func (a *app) connector() *connect.Connector {
	sec := a.cfg.secrets()
	return &connect.Connector{Key: a.cfg.key, TechVault: a.store, Log: a.log, SecretsDir: sec.Dir, Withheld: sec.Withheld}
}

func (a *app) runner(reg prometheus.Registerer) *jobs.Runner {
	if a.cfg.key == nil {
		a.log.Warn("AUTOIMPORT_SECRET_KEY is not set: the audit log is chained unkeyed (plain SHA-256), so anyone who can write the database can rewrite it undetected")
	}
	var m *jobs.Metrics
	if reg != nil {
		m = jobs.NewMetrics(reg)
	}
	return &jobs.Runner{
		Store:       a.store,
		Connector:   a.connector(),
		Log:         a.log,
		LeaseTTL:    a.cfg.LeaseTTL,
		Concurrency: a.cfg.Concurrency,
		Surge:       jobs.SurgeThreshold{Max: a.cfg.SurgeMax, Percent: a.cfg.SurgePercent},
		Metrics:     m,
		Key:         a.cfg.key,
		Actor:       jobs.RecordedActor("autoimport"),
		// The store keeps the local copies of incrementally read
		// directories.
		Copies:                copiesOf(a.store),
		FullReadEvery:         a.cfg.FullReadEvery,
		FullReads:             a.cfg.FullReads,
		AttentionRecheckEvery: a.cfg.AttentionRecheck,
	}
}

// copiesOf is the store as the keeper of directory copies, when it is one.
func copiesOf(s any) sources.CopyStore {
	c, _ := s.(sources.CopyStore)
	return c
}

// runOnce runs one pass. SIGTERM or Ctrl-C (the command's context) stops
// it after the accounts in hand; their I/O is not cut off. Accounts are
// written out as they are decided (the dry-run table, the JSON document),
// so that a directory of any size never sits in memory.
func (a *app) runOnce(ctx context.Context, opt jobs.RunOptions) error {
	r := a.runner(nil)
	start := time.Now()
	terminal := false
	if f, ok := a.stderr.(*os.File); ok {
		terminal = isatty.IsTerminal(f.Fd())
	}
	accounts, customersDone, customersTotal := 0, 0, 0
	var shown time.Time
	progress := func(force bool) {
		if !terminal || (!force && time.Since(shown) < 250*time.Millisecond) {
			return
		}
		shown = time.Now()
		rate := float64(accounts) / max(time.Since(start).Seconds(), 0.001)
		fmt.Fprintf(a.stderr, "\r%d/%d customers, %d accounts, %.0f accounts/s ", customersDone, customersTotal, accounts, rate)
	}
	var out accountWriter = discardAccounts{}
	switch {
	case a.json():
		// The JSON report lists every account, changed or not.
		out, opt.EveryAccount = newJSONReport(a.stdout), true
	case opt.DryRun:
		out = newPlanTable(a.stdout)
	}
	var mu sync.Mutex // Progress and OnAccount come from different goroutines
	opt.OnAccount = func(customer string, p jobs.AccountPlan) {
		mu.Lock()
		defer mu.Unlock()
		accounts++
		out.account(customer, &p)
		progress(false)
	}
	r.Progress = func(done, total int, cr *jobs.CustomerReport) {
		mu.Lock()
		customersDone, customersTotal = done, total
		progress(true)
		if terminal && done == total {
			fmt.Fprintln(a.stderr)
		}
		mu.Unlock()
		a.log.WithFields(map[string]any{"customer": cr.Customer, "status": cr.Status, "imported": cr.Counts.Imported, "unchanged": cr.Settled(),
			"done": done, "total": total}).Info("customer done")
	}
	opt.Stop = ctx
	rep, err := r.Run(context.WithoutCancel(ctx), opt)
	if err != nil {
		return err
	}
	audit := a.runAuditOf(context.WithoutCancel(ctx), rep)
	if err := out.finish(rep, audit); err != nil {
		return err
	}
	if !a.json() {
		a.printReport(rep)
		printRunAudit(a.stdout, audit)
	}
	if rep.Failed() {
		return exitError{exitFailed}
	}
	return nil
}

// slowPass is how long a customer's pass takes before the summary says
// where its time went.
const slowPass = 5 * time.Second

// printReport writes the summary table and what needs attention.
func (a *app) printReport(rep *jobs.Report) {
	var rows [][]string
	for _, c := range rep.Customers {
		n := c.Counts
		rows = append(rows, []string{c.Customer, c.Status, strconv.Itoa(n.Imported), fmt.Sprintf("%d/%d", n.VaultMatched, n.VaultCreated), fmt.Sprintf("%d/%d", n.PSAMatched, n.PSACreated),
			strconv.Itoa(n.EmailsSent), strconv.Itoa(n.AlreadyImported), strconv.Itoa(n.Skipped), strconv.Itoa(n.Ambiguous + n.Held + n.Failed), strconv.Itoa(n.PossibleDuplicates)})
	}
	t := rep.Totals
	rows = append(rows, []string{"TOTAL", rep.Status, strconv.Itoa(t.Imported), fmt.Sprintf("%d/%d", t.VaultMatched, t.VaultCreated), fmt.Sprintf("%d/%d", t.PSAMatched, t.PSACreated),
		strconv.Itoa(t.EmailsSent), strconv.Itoa(t.AlreadyImported), strconv.Itoa(t.Skipped), strconv.Itoa(t.Ambiguous + t.Held + t.Failed), strconv.Itoa(t.PossibleDuplicates)})
	a.table([]string{"CUSTOMER", "STATUS", "IMPORTED", "VAULT MATCHED/CREATED", "PSA MATCHED/CREATED", "EMAILS", "ALREADY", "SKIPPED", "NEEDS ATTENTION", "POSSIBLE DUPLICATES"}, rows)
	for _, c := range rep.Customers {
		if c.Error != "" {
			fmt.Fprintf(a.stdout, "\n%s: %s\n", c.Customer, c.Error)
		}
		for _, r := range c.Reads {
			fmt.Fprintf(a.stdout, "%s: read: %s\n", c.Customer, r)
		}
		if c.Elapsed >= slowPass && !c.Settled() {
			fmt.Fprintf(a.stdout, "%s: took %s: %s\n", c.Customer, c.Elapsed.Round(10*time.Millisecond), c.Times.String(c.Elapsed))
		}
		if c.Settled() {
			fmt.Fprintf(a.stdout, "%s: nothing changed since the pass of %s: its counts and the accounts that need a person stand (autoimport run --once --full reads and decides everything again)\n",
				c.Customer, c.UnchangedSince.Local().Format(time.DateTime))
		}
		for _, n := range c.Notices {
			fmt.Fprintf(a.stdout, "%s: note: %s\n", c.Customer, n)
		}
		for _, p := range c.Attention {
			switch {
			case p.Vault.Warning != "":
				fmt.Fprintf(a.stdout, "%s: warning: %s %s: %s\n", c.Customer, p.Source, p.Username, p.Vault.Warning)
			case p.Action == jobs.ActionAmbiguous || p.Action == jobs.ActionError:
				fmt.Fprintf(a.stdout, "%s: %s: %s %s: %s\n", c.Customer, p.Action, p.Source, p.Username, p.Reason)
			}
		}
		if c.AttentionOmitted > 0 {
			fmt.Fprintf(a.stdout, "%s: and %d more accounts that need attention (run with -o json for every account)\n", c.Customer, c.AttentionOmitted)
		}
	}
	fmt.Fprintf(a.stdout, "\nrun took %s; see `autoimport audit list` for every decision\n", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	for _, c := range rep.Customers {
		if c.NextStep != "" {
			fmt.Fprintln(a.stdout, c.NextStep)
		}
	}
}

func step(s jobs.SinkStep) string {
	if s.Ref != "" {
		return s.Op + " " + s.Ref
	}
	return s.Op
}

func flags(f jobs.Flags) string {
	s := ""
	if f.SelfServe {
		s += "self_serve "
	}
	if f.Rotation {
		s += "rotation "
	}
	if f.M365Sync {
		s += "m365_sync"
	}
	return s
}

// Timeouts of the scheduler's /healthz and /metrics server: its requests
// are small GETs answered at once, so a client that is slow to send, to
// read or to go away only holds a connection that long.
const (
	statusReadHeaderTimeout = 5 * time.Second
	statusReadTimeout       = 10 * time.Second
	statusWriteTimeout      = 30 * time.Second
	statusIdleTimeout       = 60 * time.Second
)

// newStatusServer is the scheduler's /healthz and /metrics server.
func newStatusServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: statusReadHeaderTimeout,
		ReadTimeout:       statusReadTimeout,
		WriteTimeout:      statusWriteTimeout,
		IdleTimeout:       statusIdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// schedule runs the scheduler until the context ends (SIGTERM).
func (a *app) schedule(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), restclient.Collector{})
	r := a.runner(reg)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, req *http.Request) {
		if err := a.store.DB().PingContext(req.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return &ConfigError{Var: "AUTOIMPORT_HTTP_ADDR", Got: a.cfg.HTTPAddr, Err: err, Want: describe("HTTPAddr")}
	}
	srv := newStatusServer(mux)
	go srv.Serve(ln)
	defer srv.Shutdown(context.WithoutCancel(ctx))

	sched := cron.New(cron.WithLocation(a.cfg.location), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err = sched.AddFunc(a.cfg.Schedule, func() {
		rep, err := r.Run(context.WithoutCancel(ctx), jobs.RunOptions{Stop: ctx})
		switch {
		case errors.Is(err, jobs.ErrBusy):
			a.log.Warn("the previous run is still under way: this tick is skipped")
		case err != nil:
			a.log.WithError(err).Error("run failed")
		default:
			audit := a.runAuditOf(context.WithoutCancel(ctx), rep)
			fields := map[string]any{"status": rep.Status, "imported": rep.Totals.Imported, "failed": rep.Totals.Failed, "held": rep.Totals.Held,
				"unchanged": rep.Unchanged(), "seconds": rep.Finished.Sub(rep.Started).Seconds(), "audit_heads": audit.Heads}
			if audit.Note != "" || audit.Error != "" {
				fields["audit"] = audit.Note + audit.Error
			}
			a.log.WithFields(fields).Info("run finished")
		}
		if ctx.Err() != nil {
			return
		}
		// Rotation follows each import pass: it reads what the pass imported.
		rot, err := r.Rotate(context.WithoutCancel(ctx), jobs.RotationRunOptions{})
		switch {
		case err != nil && !errors.Is(err, jobs.ErrBusy):
			a.log.WithError(err).Error("rotation failed")
		case err == nil:
			a.log.WithFields(map[string]any{"status": rot.Status, "rotated": rot.Outcomes[jobs.OutcomeRotated], "failed": rot.Outcomes[jobs.OutcomeFailed],
				"vault_pending": rot.Outcomes[jobs.OutcomeVaultPending], "pending": rot.Outcomes[jobs.OutcomeUnknown]}).Info("rotation finished")
		}
	})
	if err != nil {
		return &ConfigError{Var: "AUTOIMPORT_SCHEDULE", Got: a.cfg.Schedule, Err: err, Want: describe("Schedule")}
	}
	sched.Start()
	started := map[string]any{"schedule": a.cfg.Schedule, "time_zone": a.cfg.TimeZone, "http": ln.Addr().String(), "next": sched.Entries()[0].Next}
	if memoryLimit > 0 {
		started["memory_limit_mib"] = memoryLimit >> 20
	}
	a.log.WithFields(started).Info("scheduler started")
	<-ctx.Done()
	a.log.Info("stopping: finishing the accounts in hand")
	<-sched.Stop().Done() // waits for a running import to finish its account and release leases
	a.log.Info("stopped")
	return nil
}

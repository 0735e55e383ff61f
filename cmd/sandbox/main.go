// Command sandbox shows autoimport working end to end on one machine, with no
// Active Directory, tenant or API key: it starts simulated customers'
// directories, IT Glue, Hudu, ConnectWise, Autotask, HaloPSA, Microsoft Graph and an SMTP
// relay on loopback, applies a generated tenant to a SQLite store, runs the
// real import job, and prints what it did and where to look next.
//
//	go run ./cmd/sandbox                  # the demo
//	go run ./cmd/sandbox --serve          # ... then keep the fakes up
//	go run ./cmd/sandbox bench --customers 50 --accounts 200 --json bench.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/sandbox"
	"github.com/msp-tools/autoimport/jobs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // a customer failed or the sandbox could not start
	exitUsage  = 2
)

// flags are the options both the demo and the benchmark take.
type flags struct {
	customers, accounts int
	latency             time.Duration
	rateLimit           float64
	faultRate           float64
	seed                uint64
	dir                 string
	concurrency         int
	databaseURL         string
}

func (f *flags) register(fs *flag.FlagSet, customers, accounts int, latency time.Duration) {
	fs.IntVar(&f.customers, "customers", customers, "number of simulated customers")
	fs.IntVar(&f.accounts, "accounts", accounts, "directory users per customer")
	fs.DurationVar(&f.latency, "latency", latency, "delay added to every answer of every fake, e.g. 20ms")
	fs.Float64Var(&f.rateLimit, "rate-limit", 1000, "requests per second allowed per API credential (fakes and tenant rate_limit)")
	fs.Float64Var(&f.faultRate, "fault-rate", 0, "share of HTTP requests answered 429 with Retry-After: 1, from 0 to 1")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of every generated name, id and entry")
	fs.StringVar(&f.dir, "dir", "", "directory for the database, certificates and captured emails (default: a new temporary directory, kept)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "customers imported at once (default: all, up to 100)")
	fs.StringVar(&f.databaseURL, "database-url", "", "an empty store to use instead of a new SQLite file in --dir (AUTOIMPORT_DATABASE_URL's form)")
}

func (f *flags) check() error {
	switch {
	case f.customers < 1 || f.customers > 10000:
		return fmt.Errorf("--customers must be from 1 to 10000")
	case f.accounts < 1 || f.accounts > 1000000:
		return fmt.Errorf("--accounts must be from 1 to 1000000")
	case f.latency < 0:
		return fmt.Errorf("--latency must not be negative")
	case f.rateLimit <= 0:
		return fmt.Errorf("--rate-limit must be positive")
	case f.faultRate < 0 || f.faultRate > 1:
		return fmt.Errorf("--fault-rate must be from 0 to 1")
	case f.concurrency < 0:
		return fmt.Errorf("--concurrency must not be negative")
	}
	return nil
}

// options turns the flags into sandbox options; a directory is made (and
// kept) when none was named, so that what is printed stays true after exit.
func (f *flags) options() (sandbox.Options, error) {
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "autoimport-sandbox-")
		if err != nil {
			return sandbox.Options{}, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return sandbox.Options{}, err
	}
	return sandbox.Options{Customers: f.customers, Accounts: f.accounts, Latency: f.latency, RateLimit: f.rateLimit,
		FaultRate: f.faultRate, Seed: f.seed, Dir: abs, Concurrency: f.concurrency, DatabaseURL: f.databaseURL}, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bench" {
		return bench(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == jobCommand {
		return benchJob(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sandbox [flags]        start the fakes, apply a tenant, run the import, print a summary")
		fmt.Fprintln(stderr, "       sandbox bench [flags]  measure the job over a scaled sandbox (see sandbox bench -h)")
		fs.PrintDefaults()
	}
	var f flags
	f.register(fs, 6, 40, 0)
	serve := fs.Bool("serve", false, "keep the fakes up after the run and print how to point autoimport at them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := f.check(); err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return exitUsage
	}
	opts, err := f.options()
	if err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "Starting a sandbox of %d customers with %d directory users each (seed %d) in %s\n", opts.Customers, opts.Accounts, opts.Seed, opts.Dir)
	env, err := sandbox.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer env.Close()
	if err := writeEnvFile(env); err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "Fakes on loopback: %d domain controllers (LDAPS), Microsoft Graph, IT Glue, Hudu, ConnectWise PSA, Autotask, HaloPSA, SMTP relay.\n", len(env.AD))
	fmt.Fprintf(stdout, "Tenant applied to %s (file: %s).\n\n", env.DatabaseURL, filepath.Join(env.Dir, "tenant.yaml"))

	fmt.Fprintln(stdout, "First import of every customer, approved past the surge guard as a technician would with --allow-surge:")
	rep, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true})
	if err != nil {
		fmt.Fprintln(stderr, "sandbox: run:", err)
		return exitFailed
	}
	printSummary(stdout, env, rep)
	if err := settleOne(ctx, stdout, env, rep); err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return exitFailed
	}
	rot, err := rotateAdmins(ctx, stdout, env)
	if err != nil {
		fmt.Fprintln(stderr, "sandbox: rotation:", err)
		return exitFailed
	}
	printNext(stdout, env, rep, rot)
	if *serve {
		printServe(stdout, env)
		<-ctx.Done()
		fmt.Fprintln(stdout, "Stopping the fakes.")
	}
	if rep.Failed() || rot.Failed() {
		return exitFailed
	}
	return exitOK
}

// rotateAdmins rotates every imported administrator at once, as
// `autoimport rotate --now` would (they were imported a moment ago, so none
// is due yet), and prints what each customer's rotation did.
func rotateAdmins(ctx context.Context, w io.Writer, env *sandbox.Env) (*jobs.RotationRun, error) {
	var ids []string
	for _, c := range env.Customers() {
		ids = append(ids, c.ID)
	}
	run, err := env.Runner().Rotate(ctx, jobs.RotationRunOptions{Customers: ids, Now: true})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "\nRotation of every imported administrator (autoimport rotate --now): a new password set in the directory, then written to the vault:")
	profiles := map[string]string{}
	for _, c := range env.Customers() {
		profiles[c.ID] = c.Profile
	}
	rows := [][]string{{"CUSTOMER", "PROFILE", "SET IN", "WRITTEN TO", "ADMINS", "ROTATED", "STATUS"}}
	for _, c := range run.Customers {
		targets, vaults := map[string]bool{}, map[string]bool{}
		for _, a := range c.Accounts {
			if a.Outcome == jobs.OutcomeRotated {
				targets[a.Target], vaults[a.VaultIntegration] = true, true
			}
		}
		rows = append(rows, []string{c.Customer, profiles[c.Customer], joinKeys(targets), joinKeys(vaults), itoa(len(c.Accounts)), itoa(c.Outcomes[jobs.OutcomeRotated]), c.Status})
	}
	table(w, rows)
	for _, c := range run.Customers {
		if c.Error != "" {
			fmt.Fprintf(w, "  %s: %s\n", c.Customer, c.Error)
		}
	}
	return run, nil
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// writeEnvFile writes the variables a shell needs to point autoimport at
// the sandbox, readable by the owner only.
func writeEnvFile(env *sandbox.Env) error {
	var b strings.Builder
	b.WriteString("# source this file to point autoimport at the sandbox\n")
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return os.WriteFile(filepath.Join(env.Dir, "sandbox.env"), []byte(b.String()), 0o600)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// printSummary writes one row per customer and the warnings.
func printSummary(w io.Writer, env *sandbox.Env, rep *jobs.Report) {
	profiles := map[string]sandbox.CustomerInfo{}
	for _, c := range env.Customers() {
		profiles[c.ID] = c
	}
	rows := [][]string{{"CUSTOMER", "PROFILE", "VAULT", "PSA", "CANDIDATES", "IMPORTED", "MATCHED", "CREATED", "SKIPPED", "EMAILS", "WARNINGS", "STATUS"}}
	var tot jobs.Counts
	for _, c := range rep.Customers {
		k := c.Counts
		p := profiles[c.Customer]
		rows = append(rows, []string{c.Customer, p.Profile, p.Vault, p.PSA, itoa(k.Candidates), itoa(k.Imported),
			itoa(k.VaultMatched + k.PSAMatched), itoa(k.VaultCreated + k.PSACreated), itoa(k.Skipped), itoa(k.EmailsSent),
			itoa(k.PossibleDuplicates + k.Ambiguous), c.Status})
		tot.Add(k)
	}
	rows = append(rows, []string{"TOTAL", "", "", "", itoa(tot.Candidates), itoa(tot.Imported), itoa(tot.VaultMatched + tot.PSAMatched),
		itoa(tot.VaultCreated + tot.PSACreated), itoa(tot.Skipped), itoa(tot.EmailsSent), itoa(tot.PossibleDuplicates + tot.Ambiguous), rep.Status})
	table(w, rows)
	fmt.Fprintf(w, "MATCHED and CREATED count vault entries and PSA contacts together: vault %d matched, %d created; PSA %d matched, %d created.\n",
		tot.VaultMatched, tot.VaultCreated, tot.PSAMatched, tot.PSACreated)
	fmt.Fprintf(w, "Took %s.\n", rep.Finished.Sub(rep.Started).Round(time.Millisecond))

	var warnings, errs []string
	for _, c := range rep.Customers {
		if c.Error != "" {
			errs = append(errs, c.Error)
		}
		if c.AttentionOmitted > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: and %d more accounts that need attention", c.Customer, c.AttentionOmitted))
		}
		for _, a := range c.Attention {
			for _, s := range []jobs.SinkStep{a.Vault, a.PSA} {
				if s.Warning != "" {
					warnings = append(warnings, fmt.Sprintf("%s: %s (%s): %s", c.Customer, a.Username, a.Source, s.Warning))
				}
			}
			if a.Action == jobs.ActionAmbiguous {
				warnings = append(warnings, fmt.Sprintf("%s: %s (%s): ambiguous, nothing created: %s", c.Customer, a.Username, a.Source, a.Reason))
			}
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (%d):\n", len(warnings))
		for _, s := range warnings {
			fmt.Fprintln(w, "  "+s)
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nErrors (%d):\n", len(errs))
		for _, s := range errs {
			fmt.Fprintln(w, "  "+s)
		}
	}
}

// vaultChoices lists the vault entries with an account's username.
func vaultChoices(ctx context.Context, env *sandbox.Env, customer, username string) []sandbox.Entry {
	entries, _ := env.VaultEntries(ctx, customer, username)
	return entries
}

// settleOne shows a technician's Manual Matching on the first customer
// that needs a person: the ambiguous account gets the entry a person
// chose, the possible duplicate is re-linked to the entry that was there
// before, and the next run imports the ambiguous account with the chosen
// entry and creates none.
func settleOne(ctx context.Context, w io.Writer, env *sandbox.Env, rep *jobs.Report) error {
	var c *jobs.CustomerReport
	var amb, dup *jobs.AccountPlan
	for _, cr := range rep.Customers {
		amb, dup = nil, nil
		for i := range cr.Attention {
			p := &cr.Attention[i]
			switch {
			case p.Action == jobs.ActionAmbiguous && amb == nil && len(vaultChoices(ctx, env, cr.Customer, p.Username)) > 1:
				// A vault ambiguity, which a choice of entry settles (not
				// one of contacts, or of an entry another account holds).
				amb = p
			case p.Vault.Warning != "" && dup == nil:
				dup = p
			}
		}
		if amb != nil && dup != nil {
			c = cr
			break
		}
	}
	if c == nil {
		return nil
	}
	acc := &jobs.Accounts{Store: env.Store, Connector: env.Connector(), Actor: jobs.RecordedActor("technician")}
	fmt.Fprintf(w, "\nA technician settles %s's warnings (Manual Matching):\n", c.Customer)
	fmt.Fprintf(w, "  $ autoimport accounts list --customer %s --state ambiguous\n", c.Customer)
	rows, err := acc.List(ctx, c.Customer, jobs.AccountFilter{State: jobs.StateAmbiguous})
	if err != nil {
		return err
	}
	for _, r := range rows {
		fmt.Fprintf(w, "    %s  %s  %s: %s\n", r.Subject(), r.Username, r.State, r.Reason)
	}
	pick := vaultChoices(ctx, env, c.Customer, amb.Username)[0]
	fmt.Fprintf(w, "  $ autoimport accounts match --customer %s %s --vault-entry %s\n", c.Customer, amb.Username, pick.Ref)
	if _, err := acc.Match(ctx, c.Customer, amb.Username, jobs.MatchRequest{VaultRef: pick.Ref}); err != nil {
		return err
	}
	fmt.Fprintf(w, "    stored: the next run imports %s with entry %s %q\n", amb.Username, pick.Ref, pick.Name)
	var old sandbox.Entry
	dupEntries, err := env.VaultEntries(ctx, c.Customer, dup.Username)
	if err != nil {
		return err
	}
	for _, e := range dupEntries {
		if e.Ref != dup.Vault.Ref {
			old = e
		}
	}
	if old.Ref != "" {
		fmt.Fprintf(w, "  $ autoimport accounts match --customer %s %s --vault-entry %s\n", c.Customer, dup.Username, old.Ref)
		res, err := acc.Match(ctx, c.Customer, dup.Username, jobs.MatchRequest{VaultRef: old.Ref})
		if err != nil {
			return err
		}
		for _, warn := range res.Warnings {
			fmt.Fprintf(w, "    warning: %s\n", warn)
		}
		fmt.Fprintf(w, "    re-linked %s from entry %s to %s %q; the audit log keeps the old link, and entry %s stays in the vault for a person to archive\n",
			dup.Username, res.Before.VaultRef, old.Ref, old.Name, res.Before.VaultRef)
	}
	next, err := env.Runner().Run(ctx, jobs.RunOptions{Customers: []string{c.Customer}})
	if err != nil {
		return err
	}
	n := next.Customers[0]
	fmt.Fprintf(w, "Next run of %s: %d imported (vault: %d matched, %d created), %d already imported, status %s; accounts that need a person: %d.\n",
		c.Customer, n.Counts.Imported, n.Counts.VaultMatched, n.Counts.VaultCreated, n.Counts.AlreadyImported, n.Status, sum(n.NeedPerson))
	// The directories were read into copies by the first run; this run
	// read only what changed since.
	var reads []string
	for _, r := range n.Reads {
		reads = append(reads, r.String())
	}
	if len(reads) > 0 {
		fmt.Fprintf(w, "  directories read: %s\n", strings.Join(reads, "; "))
	}
	return showSettled(ctx, w, env, c.Customer)
}

// showSettled runs a customer twice more with nothing changed: the
// first pass finds nothing to do, the second that nothing changed since
// and repeats its report without reading the ledger or the copies.
func showSettled(ctx context.Context, w io.Writer, env *sandbox.Env, customer string) error {
	var what []string
	for range 2 {
		rep, err := env.Runner().Run(ctx, jobs.RunOptions{Customers: []string{customer}})
		if err != nil {
			return err
		}
		cr := rep.Customers[0]
		if cr.Status != jobs.StatusOK {
			return fmt.Errorf("customer %s: %s", customer, cr.Error)
		}
		if cr.Settled() {
			what = append(what, "settled: nothing changed since the run before, its report repeated, ledger and copies not read")
		} else {
			what = append(what, "a full pass")
		}
	}
	fmt.Fprintf(w, "Two more runs of %s with nothing changed: %s; then %s.\n", customer, what[0], what[1])
	return nil
}

func sum(m map[string]int) int {
	t := 0
	for _, n := range m {
		t += n
	}
	return t
}

// printNext says where to look next, ending with how to reveal a rotated
// password from the Technician Vault.
func printNext(w io.Writer, env *sandbox.Env, rep *jobs.Report, rot *jobs.RotationRun) {
	first := ""
	if len(rep.Customers) > 0 {
		first = rep.Customers[0].Customer
	}
	mails, _ := filepath.Glob(filepath.Join(env.MailDir, "*.eml"))
	fmt.Fprintf(w, "\nWhere to look next:\n")
	fmt.Fprintf(w, "  export AUTOIMPORT_DATABASE_URL=%s\n", env.DatabaseURL)
	fmt.Fprintf(w, "  go run ./cmd/autoimport customer list\n")
	fmt.Fprintf(w, "  go run ./cmd/autoimport options show --customer %s\n", first)
	fmt.Fprintf(w, "  go run ./cmd/autoimport accounts list --customer %s\n", first)
	fmt.Fprintf(w, "  go run ./cmd/autoimport audit list --customer %s\n", first)
	fmt.Fprintf(w, "  go run ./cmd/autoimport rotate --dry-run --customer %s\n", first)
	fmt.Fprintf(w, "  go run ./cmd/autoimport audit verify\n")
	fmt.Fprintf(w, "  welcome emails captured by the SMTP fake: %s (%d messages)\n", env.MailDir, len(mails))
	fmt.Fprintf(w, "  every variable the tenant refers to: source %s\n", filepath.Join(env.Dir, "sandbox.env"))
	fmt.Fprintf(w, "  keep the fakes up for autoimport run --once: go run ./cmd/sandbox --serve\n")
	if c, a, ok := revealable(rot); ok {
		fmt.Fprintf(w, "  reveal %s's rotated password from the Technician Vault (audited): source %s && go run ./cmd/autoimport vault reveal --customer %s %s\n",
			a, filepath.Join(env.Dir, "sandbox.env"), c, a)
	}
}

// revealable picks the first administrator whose rotated password went to
// the Technician Vault.
func revealable(rot *jobs.RotationRun) (customer, account string, ok bool) {
	if rot == nil {
		return "", "", false
	}
	for _, c := range rot.Customers {
		for _, a := range c.Accounts {
			if a.Outcome == jobs.OutcomeRotated && a.VaultIntegration == "Technician Vault" {
				return c.Customer, a.Username, true
			}
		}
	}
	return "", "", false
}

// printServe lists the fakes and the variables for a shell.
func printServe(w io.Writer, env *sandbox.Env) {
	fmt.Fprintln(w, "\nThe fakes stay up until Ctrl-C:")
	ids := make([]string, 0, len(env.AD))
	for id := range env.AD {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "  Active Directory of %-20s %s\n", id, env.AD[id].URL())
	}
	fmt.Fprintf(w, "  Microsoft Graph and login          %s\n", env.Graph.URL)
	fmt.Fprintf(w, "  IT Glue                            %s\n", env.ITGlue.URL)
	fmt.Fprintf(w, "  Hudu                               %s\n", env.Hudu.URL)
	fmt.Fprintf(w, "  ConnectWise PSA                    %s\n", env.ConnectWise.URL)
	fmt.Fprintf(w, "  Autotask                           %s\n", env.Autotask.ZoneURL())
	fmt.Fprintf(w, "  HaloPSA                            %s\n", env.HaloPSA.URL)
	fmt.Fprintf(w, "  SMTP relay (plain, loopback)       %s\n", env.SMTP.Addr())
	fmt.Fprintln(w, "\nIn another shell (these credentials are the fakes' own test values):")
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "  export %s=%s\n", k, shellQuote(v))
	}
	fmt.Fprintln(w, "  go run ./cmd/autoimport run --once --dry-run")
}

func table(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			if i >= 4 && i < len(r)-1 {
				fmt.Fprintf(&b, "%*s", width[i], c)
			} else {
				fmt.Fprintf(&b, "%-*s", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

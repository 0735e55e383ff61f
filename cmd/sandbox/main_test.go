package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
)

func sandboxCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := sandboxCLI(t, "--customers", "3", "--accounts", "12", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"CUSTOMER", "IMPORTED", "MATCHED", "CREATED", "SKIPPED",
		"acme-dental", "bluebird-logistics", "cedar-law",
		"possible duplicate",
		"AUTOIMPORT_DATABASE_URL=sqlite:" + filepath.Join(dir, "autoimport.db"),
		"options show --customer acme-dental",
		"audit list --customer acme-dental",
		filepath.Join(dir, "mail"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// Every customer row ends in status ok.
	for _, id := range []string{"acme-dental", "bluebird-logistics", "cedar-law"} {
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, id+" ") && !strings.HasSuffix(line, " ok") {
				t.Errorf("row of %s is not ok: %q", id, line)
			}
		}
	}
	if mails, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml")); len(mails) == 0 {
		t.Error("no welcome email was captured; the M365-only customer's policy sends them")
	}
	env, err := os.ReadFile(filepath.Join(dir, "sandbox.env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "export SANDBOX_ITGLUE_API_KEY=") {
		t.Errorf("sandbox.env lacks the IT Glue key:\n%s", env)
	}
	if strings.Contains(out, "SANDBOX_ITGLUE_API_KEY=") {
		t.Error("the summary prints credentials; only --serve should")
	}
	revealWorks(t, dir, out, string(env))
}

// revealWorks checks that the summary ends with how to reveal a rotated
// password, and that it does reveal the password the directory took.
func revealWorks(t *testing.T, dir, out, envFile string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	_, cmdline, ok := strings.Cut(last, "go run ./cmd/autoimport vault reveal --customer ")
	if !ok || !strings.Contains(last, "source "+filepath.Join(dir, "sandbox.env")) {
		t.Fatalf("the summary does not end with how to reveal a password: %q", last)
	}
	customer, account, _ := strings.Cut(cmdline, " ")
	var keyB64 string
	for _, l := range strings.Split(envFile, "\n") {
		if v, ok := strings.CutPrefix(l, "export AUTOIMPORT_SECRET_KEY="); ok {
			keyB64 = strings.Trim(v, "'")
		}
	}
	key, err := secret.ParseKey(keyB64)
	if err != nil {
		t.Fatalf("sandbox.env: AUTOIMPORT_SECRET_KEY: %v", err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "autoimport.db"), store.WithAuditKey(jobs.NewAuditKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := &jobs.Accounts{Store: s, Actor: "test", TechVault: (&connect.Connector{Key: key, TechVault: s}).TechVaultReader()}
	p, err := acc.RevealVaultPassword(ctx, customer, account)
	if err != nil || p.Password == "" || p.Entry.AccountUsername != account || p.Entry.LastRotated.IsZero() {
		t.Fatalf("vault reveal --customer %s %s: %+v, %v", customer, account, p, err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--customers", "0"},
		{"--fault-rate", "2"},
		{"--rate-limit", "-1"},
		{"--no-such-flag"},
		{"extra"},
		{"bench", "--accounts", "0"},
	} {
		if code, _, _ := sandboxCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// benchJSON runs sandbox bench with args and --json, and returns what it
// printed and the figures it wrote.
func benchJSON(t *testing.T, args ...string) (string, benchReport) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bench.json")
	code, out, errs := sandboxCLI(t, append(append([]string{"bench"}, args...), "--json", file)...)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var br benchReport
	if err := json.Unmarshal(b, &br); err != nil {
		t.Fatal(err)
	}
	return out, br
}

func TestBench(t *testing.T) {
	out, br := benchJSON(t, "--customers", "3", "--accounts", "10")
	for _, want := range []string{"first run", "no-change re-run", "accounts/s", "per imported account", "waiting on rate limiters", "measured / lower bound", "peak heap in use"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	if br.Customers != 3 || br.Accounts != 10 || len(br.Runs) != 5 {
		t.Fatalf("JSON: %d customers, %d accounts, %d runs; want 3, 10, 5", br.Customers, br.Accounts, len(br.Runs))
	}
	first, again, settled := br.Runs[0], br.Runs[1], br.Runs[2]
	if first.Imported == 0 || first.WriteTotal == 0 || first.Status != "ok" {
		t.Errorf("first run: imported %d, writes %d, status %s", first.Imported, first.WriteTotal, first.Status)
	}
	if first.LowerBound <= 0 || first.Ratio <= 0 || first.PeakHeapInuse == 0 || first.AccountsPerSecond <= 0 {
		t.Errorf("first run figures missing: %+v", first)
	}
	creates := map[string]bool{}
	for _, q := range first.Requests {
		if q.Class == "create" {
			creates[q.Integration] = q.N > 0 && q.PerImported > 0
		}
	}
	for _, in := range []string{"IT Glue", "Hudu", "ConnectWise PSA", "Autotask", "HaloPSA"} {
		if !creates[in] {
			t.Errorf("first run: no create requests per imported account at %s: %+v", in, first.Requests)
		}
	}
	if len(first.LimiterWait) == 0 {
		t.Error("first run: no limiter figures")
	}
	checkSlowest(t, first)
	if c := first.CPU; c == nil || c.Job <= 0 || c.Fakes != 0 || !strings.Contains(out, "job and fakes in one process") {
		t.Errorf("first run: CPU %+v; want the process's, job and fakes together", c)
	}
	// Every Autotask request of the fakes takes their latency (20 ms) at
	// least, holding one of its endpoint's threads.
	if a := first.AutotaskThreads; a == nil || a.Requests == 0 || a.HeldMs < 20 || a.AllBusySeconds < 0 {
		t.Errorf("first run: Autotask's thread use %+v, want its busiest endpoint's requests holding a thread 20 ms or more each", a)
	}
	if again.Imported != 0 || again.WriteTotal != 0 {
		t.Errorf("re-run: imported %d, writes %d; want none", again.Imported, again.WriteTotal)
	}
	// Nothing changed: no vault or PSA index is read again (the ambiguous
	// accounts are as they were), and every directory is read
	// incrementally, one request per domain and three per tenant.
	for _, q := range again.Requests {
		if q.Class == "list" && q.Integration != "Active Directory" && q.Integration != "Microsoft Graph" {
			t.Errorf("the no-change re-run listed %s %d times", q.Integration, q.N)
		}
	}
	// The first no-change re-run finds nothing to do; the second, that
	// nothing changed since: every customer's pass is settled.
	if again.Settled != 0 || settled.Settled != br.Customers || settled.WriteTotal != 0 || settled.Ambiguous != again.Ambiguous || settled.Candidates != again.Candidates {
		t.Errorf("settled customers: %d, then %d of %d; the second re-run: %+v", again.Settled, settled.Settled, br.Customers, settled)
	}
	full, hires := br.Runs[3], br.Runs[4]
	modes := func(r runResult) map[string]int {
		m := map[string]int{}
		for _, f := range r.Reads {
			m[f.Mode] += f.Customers
			// A tenant's read costs three rounds, and one memberOf per
			// user new to its copy (only after hires).
			most := map[string]int{"ad": 1, "m365": 3}[f.Source]
			if f.Mode == "incremental" && f.MaxRequests > most && (r.Name != hires.Name || f.Source != "m365" || f.Requests-3*f.Customers >= f.Changes) {
				t.Errorf("%s: %s read with %d requests for one customer (%d in all, %d changes)", r.Name, f.Source, f.MaxRequests, f.Requests, f.Changes)
			}
		}
		return m
	}
	if m := modes(again); m["full"] != 0 || m["incremental"] == 0 {
		t.Errorf("no-change re-run reads: %+v", again.Reads)
	}
	if m := modes(full); m["incremental"] != 0 || m["full"] == 0 || full.Imported != 0 {
		t.Errorf("full re-read: %+v, imported %d", full.Reads, full.Imported)
	}
	if m := modes(hires); m["full"] != 0 || hires.Imported != br.Customers || hires.Status != "ok" {
		t.Errorf("re-run after the hires: imported %d of %d, reads %+v", hires.Imported, br.Customers, hires.Reads)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, []string{"--serve", "--customers", "3", "--accounts", "8", "--dir", dir}, &out, &errs)
	}()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "go run ./cmd/autoimport run --once") {
		select {
		case code := <-done:
			t.Fatalf("exited %d before serving\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
		case <-deadline:
			t.Fatalf("not serving after 60s:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s := out.String()
	for _, want := range []string{"until Ctrl-C", "IT Glue", "Hudu", "HaloPSA", "Active Directory of acme-dental", "export SANDBOX_ITGLUE_API_KEY=", "export AUTOIMPORT_DATABASE_URL="} {
		if !strings.Contains(s, want) {
			t.Errorf("serve output lacks %q:\n%s", want, s)
		}
	}
	// The fakes answer while the command waits: IT Glue refuses a request
	// without its key.
	var itglue string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "IT" && f[1] == "Glue" {
			itglue = f[2]
		}
	}
	if itglue == "" {
		t.Fatalf("no IT Glue URL in:\n%s", s)
	}
	resp, err := http.Get(itglue + "/organizations")
	if err != nil {
		t.Fatalf("IT Glue fake is not up while serving: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("IT Glue without a key answered %d, want 403", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after Ctrl-C, want 0\nstderr:\n%s", code, errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop after its context ended")
	}
}

func TestBenchDryRun(t *testing.T) {
	_, br := benchJSON(t, "--dry-run", "--customers", "3", "--accounts", "10")
	if len(br.Runs) != 1 || br.Runs[0].Name != "dry run" {
		t.Fatalf("runs: %+v; want one dry run", br.Runs)
	}
	if r := br.Runs[0]; r.WriteTotal != 0 || r.Candidates == 0 || r.PeakHeapInuse == 0 {
		t.Errorf("dry run: %d writes, %d candidates, peak heap %d; want no write, some candidates, a heap figure", r.WriteTotal, r.Candidates, r.PeakHeapInuse)
	}
}

// TestMain lets this test binary be the benchmark's job process: the
// benchmark runs its own executable with the job subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == jobCommand {
		os.Exit(benchJob(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// --job-memory-limit sets the job process's GOMEMLIMIT, which the job
// reports as it read it; without --job-process it is refused.
func TestBenchJobMemoryLimit(t *testing.T) {
	out, br := benchJSON(t, "--job-process", "--job-memory-limit", "1GiB", "--customers", "2", "--accounts", "5", "--dry-run")
	if br.JobMemoryLimit != "1GiB" || len(br.Runs) != 1 || br.Runs[0].JobMemoryLimit != 1<<30 {
		t.Errorf("limit %q, runs %+v", br.JobMemoryLimit, br.Runs)
	}
	if !strings.Contains(out, "under a soft limit of 1024.0 MiB") {
		t.Errorf("output lacks the limit:\n%s", out)
	}
	if code, _, errs := sandboxCLI(t, "bench", "--job-memory-limit", "1GiB", "--customers", "1", "--accounts", "1"); code != exitUsage || !strings.Contains(errs, "add --job-process") {
		t.Errorf("without --job-process: exit %d, %s", code, errs)
	}
}

// With --job-process the job runs in a process of its own: the figures are
// the same kind, and the job's peak memory is reported apart.
func TestBenchJobProcess(t *testing.T) {
	out, br := benchJSON(t, "--job-process", "--customers", "3", "--accounts", "10")
	if !strings.Contains(out, "job process: peak resident memory") {
		t.Errorf("output lacks the job's memory:\n%s", out)
	}
	if len(br.Runs) != 5 {
		t.Fatalf("%d runs", len(br.Runs))
	}
	first, again := br.Runs[0], br.Runs[1]
	if first.Status != "ok" || first.Imported == 0 || first.WriteTotal == 0 || first.JobPeakRSS == 0 || first.PeakHeapInuse == 0 || len(first.LimiterWait) == 0 {
		t.Errorf("first run: %+v", first)
	}
	if again.Imported != 0 || again.WriteTotal != 0 || again.JobPeakRSS == 0 {
		t.Errorf("re-run: imported %d, writes %d, job RSS %d", again.Imported, again.WriteTotal, again.JobPeakRSS)
	}
	checkSlowest(t, first)
	if c := first.CPU; c == nil || c.Job <= 0 || c.Fakes <= 0 || c.BeforeImport != nil {
		t.Errorf("first run of 3 customers: CPU %+v; want the job's and the fakes' apart, nothing for one customer's steps", c)
	}
}

// A run of one customer that imports says what CPU its steps before the
// import used, the job's and the fakes' apart, within the run's.
func TestBenchCPUBeforeTheImport(t *testing.T) {
	out, br := benchJSON(t, "--job-process", "--customers", "1", "--accounts", "10")
	first := br.Runs[0]
	c := first.CPU
	if c == nil || c.BeforeImport == nil {
		t.Fatalf("first run: CPU %+v", c)
	}
	b := c.BeforeImport
	if b.Seconds <= 0 || b.Seconds > first.Seconds || b.Job <= 0 || b.Job > c.Job || b.Fakes <= 0 || b.Fakes > c.Fakes {
		t.Errorf("before the new accounts: %+v of %+v in a run of %.2fs", b, c, first.Seconds)
	}
	if !strings.Contains(out, "CPU before its new accounts began") {
		t.Errorf("output lacks the CPU before the import:\n%s", out)
	}
}

// checkSlowest checks that a first run's slowest customers say where
// their time went: reading, selecting and importing, within their time.
func checkSlowest(t *testing.T, first runResult) {
	t.Helper()
	if len(first.Slowest) == 0 {
		t.Fatal("first run: no slowest customers")
	}
	for _, c := range first.Slowest {
		tt := c.Times
		sum := (tt.Directories + tt.Selection + tt.Indexes + tt.NewAccounts).Seconds()
		if tt.Directories <= 0 || tt.Selection <= 0 || tt.NewAccounts <= 0 || sum > c.Seconds {
			t.Errorf("first run: %s took %.3fs, its steps %+v", c.Customer, c.Seconds, tt)
		}
	}
}

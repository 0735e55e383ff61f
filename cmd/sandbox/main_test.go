package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestBench(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.json")
	code, out, errs := sandboxCLI(t, "bench", "--customers", "3", "--accounts", "10", "--json", file)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"first run", "no-change re-run", "accounts/s", "per imported account", "waiting on rate limiters", "measured / lower bound", "peak heap in use"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var br benchReport
	if err := json.Unmarshal(b, &br); err != nil {
		t.Fatal(err)
	}
	if br.Customers != 3 || br.Accounts != 10 || len(br.Runs) != 2 {
		t.Fatalf("JSON: %d customers, %d accounts, %d runs; want 3, 10, 2", br.Customers, br.Accounts, len(br.Runs))
	}
	first, again := br.Runs[0], br.Runs[1]
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
	for _, in := range []string{"IT Glue", "ConnectWise PSA", "Autotask"} {
		if !creates[in] {
			t.Errorf("first run: no create requests per imported account at %s: %+v", in, first.Requests)
		}
	}
	if len(first.LimiterWait) == 0 {
		t.Error("first run: no limiter figures")
	}
	if again.Imported != 0 || again.WriteTotal != 0 {
		t.Errorf("re-run: imported %d, writes %d; want none", again.Imported, again.WriteTotal)
	}
	for _, q := range again.Requests {
		if q.Class == "list" && q.Integration != "Active Directory" && q.Integration != "Microsoft Graph" {
			t.Errorf("re-run listed %s %d times; nothing new needs an index", q.Integration, q.N)
		}
	}
}

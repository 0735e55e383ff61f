package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs one command line in the current directory.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// examplePath is resolved before any test changes directory.
var examplePath, _ = filepath.Abs("../../examples/tenant.yaml")

func example(*testing.T) string { return examplePath }

// freshDir runs the test in an empty directory with no AUTOIMPORT_ variables.
func freshDir(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AUTOIMPORT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestQuickStartOnFreshDirectory(t *testing.T) {
	freshDir(t)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	if _, err := os.Stat("autoimport.db"); err != nil {
		t.Fatalf("no SQLite file in the working directory: %v", err)
	}
	code, out, errs := cli(t, "", "options", "show", "--customer", "acme", "--output", "json")
	if code != 0 {
		t.Fatalf("options show exit %d: %s", code, errs)
	}
	var res []struct {
		Type    string `json:"type"`
		Origin  string `json:"origin"`
		Options []struct {
			Key       string `json:"key"`
			Value     *bool  `json:"value"`
			Origin    string `json:"origin"`
			Available *bool  `json:"available"`
		} `json:"options"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("options show JSON: %v\n%s", err, out)
	}
	if len(res) != 2 || res[0].Type != "end-user" || res[1].Type != "admin" || len(res[0].Options) != 8 || len(res[1].Options) != 4 {
		t.Fatalf("want every option of both account types, got %s", out)
	}
	for _, r := range res {
		for _, o := range r.Options {
			if o.Value == nil || o.Available == nil || o.Origin == "" {
				t.Fatalf("option %s lacks value, origin or availability: %s", o.Key, out)
			}
		}
	}

	code, _, errs = cli(t, "", "options", "set", "--customer", "bluebird", "--type", "end-user", "psa_match=true")
	if code != 1 || !strings.Contains(errs, "psa_match is not available for customer bluebird") || !strings.Contains(errs, "psa.company_id") {
		t.Fatalf("setting an unavailable option: exit %d, %q", code, errs)
	}

	_, before, _ := cli(t, "", "audit", "list", "--output", "json")
	code, out, _ = cli(t, "", "apply", "-f", example(t))
	if code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("second apply: exit %d, %q", code, out)
	}
	_, after, _ := cli(t, "", "audit", "list", "--output", "json")
	if before != after {
		t.Fatal("applying the same file again wrote audit events")
	}
	if code, out, _ := cli(t, "", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %d %q", code, out)
	}

	// A round trip through export and apply changes nothing.
	t.Setenv("ITGLUE_API_KEY", "itg-topsecret-value")
	code, exported, _ := cli(t, "", "export")
	if code != 0 || strings.Contains(exported, "itg-topsecret-value") || !strings.Contains(exported, "api_key: env:ITGLUE_API_KEY") {
		t.Fatalf("export exit %d, must keep secrets as references:\n%s", code, exported)
	}
	if code, out, _ := cli(t, exported, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("re-applying the export: %d %q", code, out)
	}
}

func TestPolicyCommands(t *testing.T) {
	freshDir(t)
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"apply", "-f", example(t)}, 0, "customer.create acme"},
		{[]string{"policy", "create", "Welcome wave", "--type", "end-user", "vault_match=true", "welcome_email=true"}, 0, "created end-user policy"},
		{[]string{"policy", "create", "Broken", "--type", "admin", "rotation=true", "vault_match=false", "vault_create=false"}, 1, "rotation needs vault storage"},
		{[]string{"policy", "create", "Broken", "--type", "admin", "welcome_email=true"}, 2, "unknown admin option"},
		{[]string{"policy", "assign", "Welcome wave", "--customer", "acme"}, 0, "follows policy"},
		{[]string{"options", "show", "--customer", "acme", "--type", "end-user"}, 0, "policy \"Welcome wave\""},
		{[]string{"options", "set", "--customer", "acme", "--type", "end-user", "paused=true"}, 1, "policy unassign --customer acme --type end-user"},
		{[]string{"policy", "unassign", "--customer", "acme", "--type", "end-user"}, 0, "follows no end-user policy"},
		{[]string{"options", "set", "--customer", "acme", "--type", "end-user", "paused=true"}, 0, "customer-specific"},
		{[]string{"policy", "set", "Rotated admins", "rotation=false"}, 0, "updated policy"},
		{[]string{"policy", "default", "Rotated admins"}, 0, "now the default"},
		{[]string{"policy", "show", "Rotated admins"}, 0, "customers: acme, bluebird"},
		{[]string{"policy", "list"}, 0, "Welcome wave"},
		{[]string{"customer", "show", "acme"}, 0, "customer-specific"},
		{[]string{"customer", "show", "nobody"}, 1, "no customer \"nobody\""},
		{[]string{"options", "show"}, 2, "needs --customer"},
		{[]string{"options", "show", "--customer", "acme", "--type", "robot"}, 2, "unknown account type"},
		{[]string{"audit", "list", "--customer", "acme"}, 0, "customer.policy.unassign"},
		{[]string{"audit", "verify"}, 0, "intact"},
		{[]string{"migrate"}, 0, "sqlite database is at migration"},
		{[]string{"version", "--output", "yaml"}, 2, "want text or json"},
	}
	for _, s := range steps {
		code, out, errs := cli(t, "", s.args...)
		if code != s.code || !strings.Contains(out+errs, s.want) {
			t.Fatalf("autoimport %s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", strings.Join(s.args, " "), code, s.code, out, errs, s.want)
		}
	}
}

func TestEnvironmentErrors(t *testing.T) {
	cases := []struct {
		env, val, want string
	}{
		{"AUTOIMPORT_SCHEDUEL", "x", "AUTOIMPORT_SCHEDUEL is invalid: want one of the documented"},
		{"AUTOIMPORT_SCHEDULE", "every day", "AUTOIMPORT_SCHEDULE=\"every day\" is invalid: want a cron spec"},
		{"AUTOIMPORT_LOG_FORMAT", "xml", "AUTOIMPORT_LOG_FORMAT=\"xml\" is invalid: want text or json"},
		{"AUTOIMPORT_LOG_LEVEL", "loud", "want debug, info, warn or error"},
		{"AUTOIMPORT_CONCURRENCY", "0", "want a whole number from 1 to 64"},
		{"AUTOIMPORT_CONCURRENCY", "many", "AUTOIMPORT_CONCURRENCY=\"many\""},
		{"AUTOIMPORT_FULL_READS", "0", "AUTOIMPORT_FULL_READS=\"0\" is invalid: want a whole number from 1 to 64"},
		{"AUTOIMPORT_SECRET_KEY", "c2hvcnQ=", "AUTOIMPORT_SECRET_KEY is invalid: secret key must be 32 bytes"},
		{"AUTOIMPORT_TIMEZONE", "Mars/Base", "IANA time zone"},
		{"AUTOIMPORT_DATABASE_URL", "postgres://x", "AUTOIMPORT_DATABASE_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.env+"="+tc.val, func(t *testing.T) {
			freshDir(t)
			t.Setenv(tc.env, tc.val)
			code, _, errs := cli(t, "", "customer", "list")
			if tc.env == "AUTOIMPORT_DATABASE_URL" {
				if code != 1 || !strings.Contains(errs, "database") {
					t.Fatalf("exit %d, %q", code, errs)
				}
				return
			}
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errs, tc.want)
			}
		})
	}
}

func TestSealNeverPrintsTheSecret(t *testing.T) {
	freshDir(t)
	t.Setenv("AUTOIMPORT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	code, out, errs := cli(t, "hunter2\n", "seal")
	if code != 0 || !strings.HasPrefix(out, "sealed:") || strings.Contains(out+errs, "hunter2") {
		t.Fatalf("seal: %d %q %q", code, out, errs)
	}
}

func TestBadTenantFileExitsTwoWithLine(t *testing.T) {
	freshDir(t)
	os.WriteFile("bad.yaml", []byte("customers:\n  - id: acme\n    name: Acme\n    colour: blue\n"), 0o600)
	code, _, errs := cli(t, "", "apply", "-f", "bad.yaml")
	if code != 2 || !strings.Contains(errs, "bad.yaml:4: field colour not found") {
		t.Fatalf("exit %d, %q", code, errs)
	}
}

func TestRunOnceUsageAndExitStatus(t *testing.T) {
	freshDir(t)
	if code, _, _ := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatal("apply failed")
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--dry-run"}, 2, "go with --once"},
		{[]string{"run", "--once", "--allow-surge"}, 2, "--allow-surge needs --customer"},
		{[]string{"run", "--once", "--customer", "nobody"}, 2, "no customer \"nobody\""},
		// The example's secrets are not set: the customer fails, naming the reference.
		{[]string{"run", "--once", "--customer", "acme"}, 1, "secret env:ACME_AD_PASSWORD: environment variable ACME_AD_PASSWORD is not set"},
		{[]string{"run", "--once", "--customer", "acme", "--dry-run", "-o", "json"}, 1, `"status": "failed"`},
	} {
		code, out, errs := cli(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("autoimport %s: exit %d (want %d)\n%s%s\nwant %q", strings.Join(tc.args, " "), code, tc.code, out, errs, tc.want)
		}
	}
}

func TestSchedulerServesHealthAndStopsOnSignal(t *testing.T) {
	freshDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("AUTOIMPORT_HTTP_ADDR", addr)
	t.Setenv("AUTOIMPORT_SCHEDULE", "@every 1h")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() { done <- run(ctx, []string{"run"}, strings.NewReader(""), &out, &errb) }()
	var body string
	for range 100 {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "ok\n" {
		t.Fatalf("/healthz = %q; stderr %s", body, errb.String())
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "go_goroutines") {
		t.Fatalf("/metrics lacks the Go collector:\n%.300s", m)
	}
	cancel() // SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scheduler did not stop")
	}
}

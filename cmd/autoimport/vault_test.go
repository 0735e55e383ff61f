package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sql/store"
)

// A technician reads the Technician Vault: the list and show print no
// password; reveal prints the password alone on standard output, only to
// a terminal or with --yes, and the audit log records who.
func TestVaultCommands(t *testing.T) {
	freshDir(t)
	const keyB64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	t.Setenv("AUTOIMPORT_SECRET_KEY", keyB64)
	t.Setenv("AUTOIMPORT_ACTOR", "jane.tech")
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	// An administrator imported with a Technician Vault entry that a
	// rotation filled.
	const pw = "Rotated-Passw0rd-4711!"
	ctx := context.Background()
	s, err := store.Open(ctx, "autoimport.db")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secret.ParseKey(keyB64)
	e, err := techvault.New(s, key).Create(ctx, sinks.VaultScope{Customer: "acme", Container: "acme"},
		sinks.NewVaultEntry{Name: "Jane Admin (Active Directory)", Username: "adm-jane", Category: "Active Directory", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx jobs.Tx) error {
		return tx.InsertImported(ctx, jobs.ImportedAccount{Customer: "acme", Source: "ad", SourceID: "6f1d0c2a-0000-4000-8000-000000000001", Type: jobs.Admin,
			Username: "adm-jane", VaultIntegration: "Technician Vault", VaultRef: e.Ref, Rotation: true, Options: jobs.Values{}, Welcome: jobs.WelcomeNone,
			State: "active", ImportedAt: time.Now()})
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := cli(t, "", "vault", "list", "--customer", "acme")
	t.Log(out)
	_, o2, _ := cli(t, "", "vault", "show", "--customer", "acme", "adm-jane")
	t.Log(o2)
	_, o3, _ := cli(t, "", "accounts", "list", "--customer", "acme")
	t.Log(o3)
	if code != 0 || !strings.Contains(out, e.Ref) || !strings.Contains(out, "adm-jane") || !strings.Contains(out, "stored") || strings.Contains(out+errs, pw) {
		t.Fatalf("vault list: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli(t, "", "vault", "show", "--customer", "acme", "adm-jane", "-o", "json")
	var shown jobs.VaultEntryView
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != e.Ref || shown.Account != "ad:6f1d0c2a-0000-4000-8000-000000000001" || strings.Contains(out, pw) {
		t.Fatalf("vault show: exit %d\n%s%s", code, out, errs)
	}

	// Off a terminal (a test's buffer), without --yes: refused, nothing printed.
	code, out, errs = cli(t, "", "vault", "reveal", "--customer", "acme", "adm-jane")
	if code != 2 || !strings.Contains(errs, "not a terminal") || strings.Contains(out+errs, pw) {
		t.Fatalf("reveal without --yes: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli(t, "", "vault", "reveal", "--customer", "acme", e.Ref, "--yes")
	if code != 0 || out != pw+"\n" || strings.Contains(errs, pw) || !strings.Contains(errs, "audited") {
		t.Fatalf("reveal: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = cli(t, "", "audit", "list", "--customer", "acme", "-o", "json")
	var events []struct {
		Action        string `json:"action"`
		DeclaredActor string `json:"declared_actor"`
		OSUser        string `json:"os_user"`
	}
	if code != 0 || strings.Contains(out, pw) || json.Unmarshal([]byte(out), &events) != nil {
		t.Fatalf("audit after a reveal: exit %d\n%s", code, out)
	}
	var revealed bool
	for _, e := range events {
		if e.Action == "vault.reveal" {
			revealed = e.DeclaredActor == "jane.tech" && e.OSUser != ""
		}
	}
	if !revealed {
		t.Fatalf("the reveal is not audited with the declared actor and the OS user:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vault", "reveal", "--customer", "acme", "nobody", "--yes"}, 1, `"nobody" is neither a Technician Vault entry nor an account`},
		{[]string{"vault", "show", "--customer", "nobody", "x"}, 2, `no customer "nobody"`},
		{[]string{"vault", "list"}, 2, `required flag(s) "customer" not set`},
	} {
		code, out, errs := cli(t, "", c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d, want %d; output %q, want %q", c.args, code, c.code, out+errs, c.want)
		}
	}
	t.Setenv("AUTOIMPORT_SECRET_KEY", "")
	if code, _, errs := cli(t, "", "vault", "reveal", "--customer", "acme", "adm-jane", "--yes"); code != 2 || !strings.Contains(errs, "AUTOIMPORT_SECRET_KEY") {
		t.Fatalf("reveal without the key: exit %d, %s", code, errs)
	}
}

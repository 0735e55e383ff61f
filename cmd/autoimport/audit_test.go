package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sql/store"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

var tenantHead = regexp.MustCompile(`(?m)^@tenant=(\d+):([0-9a-f]{64})$`)

// tenantHeadIn is the @tenant=SEQ:HASH line of an output.
func tenantHeadIn(t *testing.T, out string) string {
	t.Helper()
	m := tenantHead.FindString(out)
	if m == "" {
		t.Fatalf("no @tenant head in:\n%s", out)
	}
	return m
}

func TestAuditHeadsInRunsAndVerify(t *testing.T) {
	freshDir(t)
	t.Setenv("AUTOIMPORT_SECRET_KEY", testKey)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply: %s", errs)
	}

	// A run's summary prints the heads of its customers' chains and of
	// the tenant chain, text and JSON. (The example's secrets are unset:
	// the customer fails, the summary is printed all the same.)
	code, out, _ := cli(t, "", "run", "--once", "--customer", "acme")
	if code != 1 || !strings.Contains(out, "audit heads (keep them elsewhere") || !regexp.MustCompile(`(?m)^acme=\d+:[0-9a-f]{64}$`).MatchString(out) || strings.Contains(out, "bluebird=") || strings.Contains(out, "UNKEYED") {
		t.Fatalf("run summary: exit %d\n%s", code, out)
	}
	runHead := tenantHeadIn(t, out)
	_, out, _ = cli(t, "", "run", "--once", "--customer", "acme", "-o", "json")
	var rep struct {
		Audit struct {
			Keyed bool              `json:"keyed"`
			Heads map[string]string `json:"heads"`
		} `json:"audit"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Audit.Keyed || "@tenant="+rep.Audit.Heads["@tenant"] != runHead || rep.Audit.Heads["acme"] == "" {
		t.Fatalf("run -o json: %v\n%s", err, out)
	}

	// audit verify prints every head; a head kept elsewhere is checked.
	code, out, _ = cli(t, "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "audit log intact") || !strings.Contains(out, "verified under the key") || tenantHeadIn(t, out) != runHead {
		t.Fatalf("audit verify: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "", "audit", "verify", "--head", runHead); code != 0 || !strings.Contains(out, "still extends the 1 heads kept elsewhere") {
		t.Fatalf("audit verify --head: exit %d\n%s", code, out)
	}

	// A tenant-wide change moves the tenant chain on; then someone rewinds
	// it: alone it verifies, against the kept head it does not.
	if code, _, errs := cli(t, "", "policy", "create", "Welcome wave", "--type", "end-user", "vault_match=true"); code != 0 {
		t.Fatal(errs)
	}
	_, out, _ = cli(t, "", "audit", "verify")
	later := tenantHeadIn(t, out)
	rewind(t, runHead)
	if code, out, _ := cli(t, "", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("a rewound chain verifies on its own: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, "", "audit", "verify", "--head", later)
	if code != 1 || !strings.Contains(out, "audit log NOT intact") || !strings.Contains(out, "it was rewound") {
		t.Fatalf("audit verify --head of a rewound chain: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, "", "audit", "verify", "--head", later, "-o", "json")
	var v struct {
		OK     bool `json:"ok"`
		Chains []struct {
			Chain string `json:"chain"`
			Head  string `json:"head"`
			Error string `json:"error"`
		} `json:"chains"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.OK || v.Chains[0].Chain != "@tenant" || "@tenant="+v.Chains[0].Head != runHead || !strings.Contains(v.Chains[0].Error, "rewound") {
		t.Fatalf("audit verify --head -o json: exit %d, %v\n%s", code, err, out)
	}

	if code, _, errs := cli(t, "", "audit", "verify", "--head", strings.TrimPrefix(later, "@tenant=")); code != 2 || !strings.Contains(errs, "write CHAIN=SEQ:HASH") {
		t.Fatalf("a head without its chain: exit %d %s", code, errs)
	}
	// Without the key the keyed chains can be neither checked nor extended.
	t.Setenv("AUTOIMPORT_SECRET_KEY", "")
	if code, out, _ := cli(t, "", "audit", "verify"); code != 1 || !strings.Contains(out, "set AUTOIMPORT_SECRET_KEY to check or extend it") {
		t.Fatalf("audit verify without the key: exit %d\n%s", code, out)
	}
	if code, _, errs := cli(t, "", "policy", "create", "Other", "--type", "end-user", "vault_match=true"); code != 1 || !strings.Contains(errs, "the audit log is keyed") {
		t.Fatalf("a change without the key: exit %d %s", code, errs)
	}
}

// rewind deletes the tenant chain's events after head and moves its head
// back, as someone who can write the database could.
func rewind(t *testing.T, head string) {
	t.Helper()
	m := tenantHead.FindStringSubmatch(head)
	s, err := store.Open(context.Background(), "sqlite:autoimport.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{"DELETE FROM audit_events WHERE customer_id = '' AND seq > ?", "UPDATE audit_heads SET seq = ?, hash = ? WHERE customer_id = ''"} {
		args := []any{m[1]}
		if strings.HasPrefix(q, "UPDATE") {
			args = append(args, m[2])
		}
		if _, err := s.DB().Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnkeyedLogSaysSo(t *testing.T) {
	freshDir(t)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply: %s", errs)
	}
	code, out, _ := cli(t, "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "UNKEYED (plain SHA-256): anyone who can write the database can rewrite them undetected") {
		t.Fatalf("audit verify: exit %d\n%s", code, out)
	}
	tenantHeadIn(t, out)
	_, out, _ = cli(t, "", "run", "--once", "--customer", "acme")
	if !strings.Contains(out, "UNKEYED: AUTOIMPORT_SECRET_KEY is not set") {
		t.Fatalf("run summary:\n%s", out)
	}
	// Setting the key re-chains the log under it, once.
	t.Setenv("AUTOIMPORT_SECRET_KEY", testKey)
	code, out, _ = cli(t, "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "verified under the key") {
		t.Fatalf("audit verify with the key: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "", "audit", "list", "--customer", ""); code != 0 || strings.Count(out, "audit.rechain") != 1 {
		t.Fatalf("audit list: exit %d\n%s", code, out)
	}
}

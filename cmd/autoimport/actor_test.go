package main

import (
	"encoding/json"
	"os"
	"os/user"
	"strings"
	"testing"
)

// AUTOIMPORT_ACTOR is what a person says they are; the audit log records
// beside it the operating-system user and host the command ran as, and
// `audit list` shows both.
func TestAuditRecordsTheOSUserBesideTheDeclaredActor(t *testing.T) {
	freshDir(t)
	u, err := user.Current()
	if err != nil {
		t.Skipf("no operating-system user to compare with: %v", err)
	}
	host, _ := os.Hostname()
	t.Setenv("AUTOIMPORT_ACTOR", "alice.spoofed")
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	code, out, errs := cli(t, "", "audit", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("audit list exit %d: %s", code, errs)
	}
	var events []struct {
		Actor         string `json:"actor"`
		DeclaredActor string `json:"declared_actor"`
		OSUser        string `json:"os_user"`
		Host          string `json:"host"`
	}
	if err := json.Unmarshal([]byte(out), &events); err != nil || len(events) == 0 {
		t.Fatalf("audit list JSON: %v\n%s", err, out)
	}
	for _, e := range events {
		if e.DeclaredActor != "alice.spoofed" || e.OSUser != u.Username || e.Host != host || !strings.HasPrefix(e.Actor, "alice.spoofed (os ") {
			t.Fatalf("event actor %+v, want alice.spoofed run as %s@%s", e, u.Username, host)
		}
	}
	_, table, _ := cli(t, "", "audit", "list")
	if !strings.Contains(table, "OS USER@HOST") || !strings.Contains(table, "alice.spoofed") || !strings.Contains(table, u.Username+"@"+host) {
		t.Fatalf("audit list does not show both:\n%s", table)
	}
}

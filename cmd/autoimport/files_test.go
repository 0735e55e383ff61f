package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// An export names every integration and carries sealed secrets: the file
// it writes is the owner's only, whatever the umask, even when it replaces
// a file that was readable by others.
func TestExportFileIsPrivate(t *testing.T) {
	freshDir(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	if err := os.WriteFile("old.yaml", []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"new.yaml", "old.yaml"} {
		if code, _, errs := cli(t, "", "export", "-f", name); code != 0 {
			t.Fatalf("export exit %d: %s", code, errs)
		}
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, m)
		}
		if b, _ := os.ReadFile(name); len(b) < 100 {
			t.Errorf("%s: %d bytes written", name, len(b))
		}
	}
	for _, name := range []string{"autoimport.db", "autoimport.db-wal"} {
		if st, err := os.Stat(name); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, st.Mode().Perm())
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) > 5 {
		t.Errorf("left files behind: %v", entries)
	}
}

// Sealed secrets are shown as "sealed:…" in every JSON output — customer
// listings and audit events included —, while export keeps the sealed
// value, since a re-apply needs it.
func TestJSONOutputsNeverPrintASealedValue(t *testing.T) {
	freshDir(t)
	t.Setenv("AUTOIMPORT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	_, sealed, _ := cli(t, "hunter2\n", "seal")
	sealed = strings.TrimSpace(sealed)
	b, err := os.ReadFile(example(t))
	if err != nil {
		t.Fatal(err)
	}
	file := strings.ReplaceAll(strings.ReplaceAll(string(b), "env:ACME_AD_PASSWORD", sealed), "env:ITGLUE_API_KEY", sealed)
	os.WriteFile("tenant.yaml", []byte(file), 0o600)
	if code, _, errs := cli(t, "", "apply", "-f", "tenant.yaml"); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	cipher := strings.TrimPrefix(sealed, "sealed:")
	for _, args := range [][]string{
		{"customer", "show", "acme", "-o", "json"},
		{"customer", "list", "-o", "json"},
		{"audit", "list", "-o", "json"},
		{"audit", "list"},
	} {
		code, out, errs := cli(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		if strings.Contains(out, cipher[:16]) {
			t.Errorf("%v prints the sealed value", args)
		}
		if args[0] == "customer" && !strings.Contains(out, "sealed:…") {
			t.Errorf("%v does not say the secret is sealed:\n%s", args, out)
		}
	}
	if _, out, _ := cli(t, "", "export"); !strings.Contains(out, sealed) {
		t.Error("export lost the sealed value a re-apply needs")
	}
}

package main

import (
	"os"
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

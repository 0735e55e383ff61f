package secret

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A tenant file must never make autoimport send its own configuration or
// the kernel's view of its process anywhere: env: references to
// AUTOIMPORT_* variables and file: references to anything but a regular
// file are refused, when the file is applied and when a run resolves them.
func TestReferencesThatWouldLeakAutoimportsOwnConfiguration(t *testing.T) {
	t.Setenv("AUTOIMPORT_SECRET_KEY", "master-key-value")
	dir := t.TempDir()
	link := filepath.Join(dir, "environ")
	if err := os.Symlink("/proc/self/environ", link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ref        Ref
		atApply    string // what Validate says ("" = accepted at apply)
		atRun      string // what Resolve says
		notAtApply bool   // only a run can tell (the file system of the runner)
	}{
		{ref: "env:AUTOIMPORT_SECRET_KEY", atApply: "autoimport's own configuration", atRun: "autoimport's own configuration"},
		{ref: "env:autoimport_database_url", atApply: "autoimport's own configuration", atRun: "autoimport's own configuration"},
		{ref: "file:/proc/self/environ", atApply: "under /proc", atRun: "under /proc"},
		{ref: "file:/proc/../proc/1/environ", atApply: "under /proc", atRun: "under /proc"},
		{ref: "file:/sys/kernel/hostname", atApply: "under /sys", atRun: "under /sys"},
		{ref: "file:/dev/zero", atApply: "under /dev", atRun: "under /dev"},
		{ref: Ref("file:" + link), atRun: "under /proc", notAtApply: true},
		{ref: Ref("file:" + fifo), atRun: "not a regular file", notAtApply: true},
		{ref: Ref("file:" + dir), atRun: "not a regular file", notAtApply: true},
		{ref: Ref("file:" + big), atRun: "more than", notAtApply: true},
	}
	for _, c := range cases {
		err := c.ref.Validate()
		if c.notAtApply {
			if err != nil {
				t.Errorf("Validate(%s) = %v, want accepted (only the runner's file system can tell)", c.ref, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.atApply) {
			t.Errorf("Validate(%s) = %v, want %q", c.ref, err, c.atApply)
		}
		v, err := c.ref.Resolve(nil)
		if err == nil || !strings.Contains(err.Error(), c.atRun) {
			t.Errorf("Resolve(%s) = %q, %v, want %q", c.ref, v, err, c.atRun)
		}
		if v != "" || (err != nil && strings.Contains(err.Error(), "master-key-value")) {
			t.Errorf("Resolve(%s) leaked %q / %v", c.ref, v, err)
		}
	}
	// A link to a regular file is fine.
	real := filepath.Join(dir, "real")
	os.WriteFile(real, []byte("pw\n"), 0o600)
	os.Symlink(real, filepath.Join(dir, "ln"))
	if v, err := Ref("file:" + filepath.Join(dir, "ln")).Resolve(nil); v != "pw" || err != nil {
		t.Errorf("link to a regular file: %q, %v", v, err)
	}
	t.Setenv("MSP_ITGLUE_KEY", "k")
	if v, err := Ref("env:MSP_ITGLUE_KEY").Resolve(nil); v != "k" || err != nil {
		t.Errorf("ordinary variable: %q, %v", v, err)
	}
}

func TestCheckFileOnTemplates(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "welcome.txt.tmpl")
	os.WriteFile(tmpl, []byte("Hello {{.DisplayName}}"), 0o600)
	for path, want := range map[string]string{
		tmpl:                  "",
		"/etc":                "not a regular file",
		"/proc/self/environ":  "under /proc",
		"/dev/stdin":          "under /dev",
		dir + "/missing.tmpl": "no such file",
	} {
		err := CheckFile(path)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckFile(%s) = %v, want %q", path, err, want)
		}
	}
}

func TestRedactSealed(t *testing.T) {
	for in, want := range map[string]string{
		`{"api_key":"sealed:QUJD+/x=="}`:   `{"api_key":"sealed:…"}`,
		`sealed:abc sealed:def= env:X`:     `sealed:… sealed:… env:X`,
		`{"note":"unsealed text"}`:         `{"note":"unsealed text"}`,
		`"{\"k\":\"sealed:AAAA\"}"`:        `"{\"k\":\"sealed:…\"}"`,
		`already sealed:… stays as it was`: `already sealed:… stays as it was`,
	} {
		if got := RedactSealed(in); got != want {
			t.Errorf("RedactSealed(%s) = %s, want %s", in, got, want)
		}
	}
}

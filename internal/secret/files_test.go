package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The checks are made on the open file, whatever its name: a device, a
// FIFO (which must not block), a directory, a kernel view reached through
// a link, a file over the limit.
func TestReadFileChecksTheOpenFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	environ := filepath.Join(dir, "environ")
	os.Symlink("/proc/self/environ", environ)
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	pem := filepath.Join(dir, "ca.pem")
	os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600)
	link := filepath.Join(dir, "ca-link.pem")
	os.Symlink(pem, link)
	for path, want := range map[string]string{
		"/dev/zero":          "not a regular file (it is a character device)",
		zero:                 "not a regular file (it is a character device)",
		fifo:                 "not a regular file (it is a FIFO)",
		dir:                  "not a regular file (it is a directory)",
		"/proc/self/environ": "is on procfs",
		environ:              "is on procfs",
		"/sys/kernel/mm/transparent_hugepage/enabled": "is on sysfs",
		big:                        "holds 2048 bytes, more than the 1024",
		filepath.Join(dir, "none"): "file does not exist",
		pem:                        "",
		link:                       "",
	} {
		done := make(chan struct{})
		var b []byte
		var err error
		go func() { b, err = ReadFile(path, 1024); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("ReadFile(%s) still blocked after a minute", path)
		}
		if want == "" {
			if err != nil || !bytes.HasPrefix(b, []byte("-----BEGIN")) {
				t.Errorf("ReadFile(%s) = %q, %v", path, b, err)
			}
			continue
		}
		if path == "/sys/kernel/mm/transparent_hugepage/enabled" && errors.Is(err, fs.ErrNotExist) {
			continue // not every kernel has it
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want %q", path, len(b), err, want)
		}
		if len(b) > 0 {
			t.Errorf("ReadFile(%s) returned %d bytes with its error", path, len(b))
		}
	}
}

// swapLink replaces link, again and again until stop is closed, by a link
// to one target and then the other, each replacement atomic (a rename
// over the link), as an attacker with write access to the directory
// would.
func swapLink(t *testing.T, link string, targets [2]string, stop <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	tmp := link + ".swap"
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(tmp)
			if err := os.Symlink(targets[i%2], tmp); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, link); err != nil {
				t.Error(err)
				return
			}
		}
	})
	return &wg
}

// A link swapped between a regular file and /proc/self/environ while
// autoimport reads it: the process environment (which holds
// AUTOIMPORT_SECRET_KEY in production) is never what is read, by the
// ca_file reader, by a file: reference or by a template, because the
// checks are made on the file that was opened, and a file: reference
// never leaves the secrets directory. Every read returns the regular
// file's value or an error.
func TestSwappedLinkNeverReadsTheEnvironment(t *testing.T) {
	environ, err := os.ReadFile("/proc/self/environ")
	if err != nil || len(environ) == 0 {
		t.Skipf("this machine has no readable /proc/self/environ (%v): the race cannot be tried", err)
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.WriteFile(real, []byte("client-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "secret")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Dir: dir}
	readers := map[string]func() (string, error){
		"ca_file reader":  func() (string, error) { b, err := ReadFile(link, MaxFileSize); return string(b), err },
		"file: reference": func() (string, error) { return r.Resolve(Ref("file:secret")) },
		"template":        func() (string, error) { return r.ReadTemplate(link) },
	}
	for name, read := range readers {
		t.Run(name, func(t *testing.T) {
			stop := make(chan struct{})
			wg := swapLink(t, link, [2]string{"real", "/proc/self/environ"}, stop)
			defer func() { close(stop); wg.Wait() }()
			good, refused := 0, 0
			for range 5000 {
				v, err := read()
				if err != nil && bytes.Contains([]byte(err.Error()), []byte("PATH=")) {
					t.Fatalf("the error carries the environment")
				}
				switch {
				case err == nil && strings.TrimSpace(v) == "client-secret-value":
					good++
				case err != nil:
					refused++
				default:
					t.Fatalf("read %d bytes that are not the file's (the environment is %d bytes) after %d good reads", len(v), len(environ), good)
				}
			}
			t.Logf("%d reads of the file, %d refused", good, refused)
		})
	}
}

func testResolver(t *testing.T) (*Resolver, string) {
	t.Helper()
	dir := t.TempDir()
	return &Resolver{Dir: dir}, dir
}

// file: references and templates resolve inside AUTOIMPORT_SECRETS_DIR
// only; unset, they are refused with what to do.
func TestFilesResolveInsideTheSecretsDirectory(t *testing.T) {
	r, dir := testResolver(t)
	outside := filepath.Join(t.TempDir(), "autoimport.env")
	os.WriteFile(outside, []byte("AUTOIMPORT_SECRET_KEY=x\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "itglue"), []byte("ITG.key\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "hudu"), []byte("hudu-key"), 0o600)
	// Kubernetes mounts a secret as links into a timestamped directory.
	os.Mkdir(filepath.Join(dir, "..2026_01_01_00_00_00.1"), 0o700)
	os.WriteFile(filepath.Join(dir, "..2026_01_01_00_00_00.1", "graph"), []byte("graph-secret"), 0o600)
	os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data"))
	os.Symlink("..data/graph", filepath.Join(dir, "graph"))
	os.Symlink(outside, filepath.Join(dir, "abs-out"))
	os.Symlink("../"+filepath.Base(filepath.Dir(outside))+"/autoimport.env", filepath.Join(dir, "rel-out"))
	os.Symlink(filepath.Join(dir, "itglue"), filepath.Join(dir, "abs-in"))
	for _, tc := range []struct {
		ref, want, err string
	}{
		{ref: "file:itglue", want: "ITG.key"},
		{ref: "file:" + filepath.Join(dir, "itglue"), want: "ITG.key"},
		{ref: "file:sub/hudu", want: "hudu-key"},
		{ref: "file:graph", want: "graph-secret"},
		{ref: "file:" + outside, err: "is outside AUTOIMPORT_SECRETS_DIR"},
		{ref: "file:../x", err: "climbs out of AUTOIMPORT_SECRETS_DIR"},
		{ref: "file:" + dir, err: "is outside AUTOIMPORT_SECRETS_DIR"},
		{ref: "file:abs-out", err: "through links that stay inside it"},
		{ref: "file:rel-out", err: "through links that stay inside it"},
		{ref: "file:abs-in", err: "through links that stay inside it"}, // an absolute link, even inside
		{ref: "file:sub", err: "it is a directory"},
		{ref: "file:missing", err: "missing: file does not exist"},
		{ref: "file:/proc/self/environ", err: "is under /proc"},
	} {
		v, err := r.Resolve(Ref(tc.ref))
		if tc.err == "" {
			if err != nil || v != tc.want {
				t.Errorf("Resolve(%s) = %q, %v; want %q", tc.ref, v, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Resolve(%s) = %q, %v; want %q", tc.ref, v, err, tc.err)
		}
	}
	var unset Resolver
	_, err := unset.Resolve("file:itglue")
	if err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRETS_DIR is not set") || !strings.Contains(err.Error(), "/run/secrets") {
		t.Errorf("no secrets directory: %v", err)
	}
	if _, err := unset.ReadTemplate("/etc/hostname"); err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRETS_DIR is not set") {
		t.Errorf("template without a secrets directory: %v", err)
	}
	if err := unset.Check("file:itglue"); err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRETS_DIR is not set") {
		t.Errorf("apply without a secrets directory: %v", err)
	}
	// At apply, a file this machine does not have is the runner's to
	// tell; one outside the directory is refused anyway.
	if err := r.Check("file:not-here-yet"); err != nil {
		t.Errorf("apply of a file not on this machine: %v", err)
	}
	if err := r.Check(Ref("file:" + outside)); err == nil {
		t.Error("apply of a file outside the directory accepted")
	}
}

// No secret or template may hold autoimport's own secrets, whichever
// reference or encoding brings them: refused when applied (for what this
// machine can read) and when a run resolves them, without saying what
// they hold.
func TestOwnSecretsAreWithheld(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32) // base64 has '+' or '/': both alphabets differ
	key, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	const dbPassword = "db-Passw0rd-long"
	r, dir := testResolver(t)
	r.Key, r.Withheld = key, []string{dbPassword}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("env-file", "AUTOIMPORT_SECRET_KEY="+b64+"\nOTHER=1\n")
	write("url-key", base64.RawURLEncoding.EncodeToString(raw))
	write("raw-key", string(raw))
	write("db", "user:"+dbPassword+"@tcp(db:3306)/autoimport")
	write("welcome.txt", "Hello {{.DisplayName}}, "+b64)
	write("ok", "an-ordinary-secret")
	t.Setenv("COPY_OF_KEY", "prefix-"+b64)
	t.Setenv("ORDINARY", "value")
	sealedKey := key.SealRef(b64)
	for _, tc := range []struct {
		ref  Ref
		want string
	}{
		{"file:env-file", "AUTOIMPORT_SECRET_KEY"},
		{"file:url-key", "AUTOIMPORT_SECRET_KEY"},
		{"file:raw-key", "AUTOIMPORT_SECRET_KEY"},
		{"file:db", "password of AUTOIMPORT_DATABASE_URL"},
		{"env:COPY_OF_KEY", "AUTOIMPORT_SECRET_KEY"},
		{sealedKey, "AUTOIMPORT_SECRET_KEY"},
		{"file:ok", ""},
		{"env:ORDINARY", ""},
	} {
		for when, check := range map[string]func(Ref) error{
			"run":   func(ref Ref) error { _, err := r.Resolve(ref); return err },
			"apply": r.Check,
		} {
			err := check(tc.ref)
			if tc.want == "" {
				if err != nil {
					t.Errorf("%s %s: %v", when, tc.ref, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %s: %v, want refused naming %s", when, tc.ref, err, tc.want)
				continue
			}
			if strings.Contains(err.Error(), b64) || strings.Contains(err.Error(), dbPassword) {
				t.Errorf("%s %s: the error holds the secret: %v", when, tc.ref, err)
			}
		}
	}
	if _, err := r.ReadTemplate("welcome.txt"); err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRET_KEY") {
		t.Errorf("template holding the key: %v", err)
	}
	if err := r.CheckTemplate("welcome.txt"); err == nil {
		t.Error("apply of a template holding the key accepted")
	}
	// A short database password is refused as a whole secret only.
	short := &Resolver{Dir: dir, Withheld: []string{"root"}}
	write("short", "root\n")
	write("word", "a root cause")
	if _, err := short.Resolve("file:short"); err == nil {
		t.Error("a secret equal to the short database password accepted")
	}
	if _, err := short.Resolve("file:word"); err != nil {
		t.Errorf("a secret containing the short password as a word: %v", err)
	}
}

func TestCheckPath(t *testing.T) {
	for path, want := range map[string]string{
		"/run/secrets/itglue":     "",
		"itglue":                  "",
		"sub/hudu":                "",
		"/proc/self/environ":      "under /proc",
		"/proc/../proc/1/environ": "under /proc",
		"/sys/kernel/hostname":    "under /sys",
		"/dev/zero":               "under /dev",
		"../etc/autoimport.env":   "climbs out",
		"a/../../b":               "climbs out",
		"":                        "no path",
		"with\x00nul":             "NUL",
	} {
		err := CheckPath(path)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckPath(%q) = %v, want %q", path, err, want)
		}
	}
}

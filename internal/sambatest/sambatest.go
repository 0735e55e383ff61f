// Package sambatest gives tests a real Active Directory: Samba's AD DC on
// loopback, set up by start.sh (which installs Samba when missing, and
// seeds fixtures.ldif, the fixture of sources/ad/adtest, and the bulk
// users), or one already running that AUTOIMPORT_TEST_SAMBA_URL, _CA,
// _BIND_DN, _PASSWORD, _BASE_DN (and optionally _BULK_USERS) name. Under CI
// (testenv.InCI) a test that needs Samba fails when it cannot be had;
// elsewhere it skips, saying why.
//
// The DC start.sh sets up lives in AUTOIMPORT_SAMBA_DIR (default
// /tmp/autoimport-samba) and is shared by every test binary that needs it:
// go test ./... runs the sources/ad and cmd/internal/connect suites at the
// same time. A binary that uses it runs its tests through Run, from its
// TestMain. See sharedDC for how the binaries agree on starting and
// stopping it.
package sambatest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/msp-tools/autoimport/internal/testenv"
)

// Facts is how to reach the Samba DC.
type Facts struct {
	// URL is the DC's LDAPS URL: ldaps://127.0.0.1:636 for the DC start.sh
	// sets up, which also answers plain LDAP and StartTLS on port 389.
	URL string
	// CA is the PEM file of the certificate to trust.
	CA string
	// BindDN and Password are the domain administrator's, who may use
	// DirSync: Administrator@corp.example.test for start.sh's DC.
	BindDN, Password string
	BaseDN           string
	// Bulk is the number of users seeded under OU=Bulk; 0 when not known.
	Bulk int
}

var (
	//go:embed start.sh
	startScript []byte
	//go:embed fixtures.ldif
	fixtures []byte
)

// scriptName names start.sh in messages.
const scriptName = "internal/sambatest/start.sh"

var (
	once     sync.Once
	facts    Facts
	factsErr error // why Samba cannot be had
	dc       *sharedDC
)

// Run runs a test binary's tests and then lets go of the DC start.sh set
// up, if this binary used it: the last binary done stops it when a test
// binary started it. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(sambatest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if dc != nil {
		if err := dc.release(); err != nil {
			fmt.Fprintf(os.Stderr, "sambatest: %v\n", err)
		}
	}
	return code
}

// Need returns how to reach the Samba DC, starting it on the first call;
// when Samba cannot be had it fails the test under CI and skips it
// elsewhere.
func Need(t testing.TB) Facts {
	t.Helper()
	once.Do(func() { facts, factsErr = start() })
	if factsErr != nil {
		testenv.Require(t, fmt.Sprintf("no Samba AD: %v", factsErr))
	}
	return facts
}

// start reads the facts of a DC named in the environment, or sets one up
// with start.sh.
func start() (Facts, error) {
	if os.Getenv("AUTOIMPORT_TEST_SAMBA_URL") != "" {
		return parseFacts(os.Getenv), nil
	}
	if os.Geteuid() != 0 {
		return Facts{}, fmt.Errorf("not root: %s must run as root (or set AUTOIMPORT_TEST_SAMBA_URL)", scriptName)
	}
	_, errTool := exec.LookPath("samba-tool")
	_, errApt := exec.LookPath("apt-get")
	if errTool != nil && errApt != nil {
		return Facts{}, errors.New("neither samba-tool nor apt-get is available to set up Samba")
	}
	dir := "/tmp/autoimport-samba"
	if d := os.Getenv("AUTOIMPORT_SAMBA_DIR"); d != "" {
		dir = filepath.Clean(d)
	}
	pidfile := filepath.Join(dir, "run", "samba.pid")
	dc = &sharedDC{dir: dir, script: runScript, running: func() bool { return pidAlive(pidfile) }}
	out, err := dc.start()
	if err != nil {
		return Facts{}, err
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = v
		}
	}
	f := parseFacts(func(k string) string { return vals[k] })
	if f.URL == "" {
		return Facts{}, fmt.Errorf("%s printed no AUTOIMPORT_TEST_SAMBA_URL", scriptName)
	}
	return f, nil
}

func parseFacts(get func(string) string) Facts {
	f := Facts{
		URL: get("AUTOIMPORT_TEST_SAMBA_URL"), CA: get("AUTOIMPORT_TEST_SAMBA_CA"),
		BindDN: get("AUTOIMPORT_TEST_SAMBA_BIND_DN"), Password: get("AUTOIMPORT_TEST_SAMBA_PASSWORD"),
		BaseDN: get("AUTOIMPORT_TEST_SAMBA_BASE_DN"),
	}
	f.Bulk, _ = strconv.Atoi(get("AUTOIMPORT_TEST_SAMBA_BULK_USERS"))
	if f.BaseDN == "" {
		f.BaseDN = "DC=corp,DC=example,DC=test"
	}
	return f
}

// runScript runs start.sh with arg (start or stop) from a copy beside
// fixtures.ldif, and returns what it printed.
func runScript(arg string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "sambatest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(tmp, "start.sh")
	if err := os.WriteFile(script, startScript, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "fixtures.ldif"), fixtures, 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, arg)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %v\n%s", scriptName, arg, err, tail(stderr.String(), 20))
	}
	return out.Bytes(), nil
}

func pidAlive(pidfile string) bool {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	err = unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

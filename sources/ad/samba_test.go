package ad_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/msp-tools/autoimport/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// A real Active Directory: Samba's AD DC, started by
// testdata/samba/start.sh (which installs Samba when missing), or reached
// through AUTOIMPORT_TEST_SAMBA_URL, _CA, _BIND_DN, _PASSWORD, _BASE_DN
// (and optionally _BULK_USERS) when one is already running. Under CI=true
// these tests fail when Samba cannot be had; elsewhere they skip, saying
// why.

// sambaFacts is how to reach the Samba DC.
type sambaFacts struct {
	url, ca, bindDN, password, baseDN, pidfile string
	bulk                                       int
	err                                        error // why Samba is unavailable
}

var (
	sambaOnce  sync.Once
	samba      sambaFacts
	sambaOwned bool // this test binary started Samba and stops it in TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sambaOwned {
		if out, err := exec.Command("bash", "testdata/samba/start.sh", "stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping Samba: %v\n%s", err, out)
		}
	}
	os.Exit(code)
}

func parseFacts(get func(string) string) sambaFacts {
	f := sambaFacts{
		url: get("AUTOIMPORT_TEST_SAMBA_URL"), ca: get("AUTOIMPORT_TEST_SAMBA_CA"),
		bindDN: get("AUTOIMPORT_TEST_SAMBA_BIND_DN"), password: get("AUTOIMPORT_TEST_SAMBA_PASSWORD"),
		baseDN: get("AUTOIMPORT_TEST_SAMBA_BASE_DN"), pidfile: get("AUTOIMPORT_TEST_SAMBA_PIDFILE"),
	}
	f.bulk, _ = strconv.Atoi(get("AUTOIMPORT_TEST_SAMBA_BULK_USERS"))
	if f.baseDN == "" {
		f.baseDN = "DC=corp,DC=example,DC=test"
	}
	return f
}

func startSamba() sambaFacts {
	if os.Getenv("AUTOIMPORT_TEST_SAMBA_URL") != "" {
		return parseFacts(os.Getenv)
	}
	script, _ := filepath.Abs("testdata/samba/start.sh")
	if os.Geteuid() != 0 {
		return sambaFacts{err: fmt.Errorf("not root: %s must run as root (or set AUTOIMPORT_TEST_SAMBA_URL)", script)}
	}
	_, errTool := exec.LookPath("samba-tool")
	_, errApt := exec.LookPath("apt-get")
	if errTool != nil && errApt != nil {
		return sambaFacts{err: fmt.Errorf("neither samba-tool nor apt-get is available to set up Samba")}
	}
	wasRunning := pidAlive(filepath.Join(sambaDir(), "run", "samba.pid"))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return sambaFacts{err: fmt.Errorf("%s: %v\n%s", script, err, tail(stderr.String(), 20))}
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = v
		}
	}
	f := parseFacts(func(k string) string { return vals[k] })
	if f.url == "" {
		return sambaFacts{err: fmt.Errorf("%s printed no AUTOIMPORT_TEST_SAMBA_URL", script)}
	}
	sambaOwned = !wasRunning
	return f
}

func sambaDir() string {
	if d := os.Getenv("AUTOIMPORT_SAMBA_DIR"); d != "" {
		return d
	}
	return "/tmp/autoimport-samba"
}

func pidAlive(pidfile string) bool {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// needSamba returns the Samba facts, or fails (CI) / skips the test.
func needSamba(t *testing.T) sambaFacts {
	t.Helper()
	sambaOnce.Do(func() { samba = startSamba() })
	if samba.err != nil {
		testenv.Require(t, fmt.Sprintf("no Samba AD: %v", samba.err))
	}
	return samba
}

func sambaSource(t *testing.T, f sambaFacts, mod ...func(*ad.Config)) *ad.Source {
	t.Helper()
	cfg := ad.Config{Customer: "samba", URL: f.url, CAFile: f.ca, BindDN: f.bindDN, BindPassword: f.password,
		BaseDN: f.baseDN, SearchTimeout: 30 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	src, err := ad.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func TestClassificationSamba(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	runClassificationCases(t, sambaSource(t, f), f.baseDN, "CORP")
}

func TestSambaCheckDiscoversDomain(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	info, err := sambaSource(t, f, func(c *ad.Config) { c.BaseDN = "" }).Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(info.BaseDN, f.baseDN) || info.NetBIOS != "CORP" || !strings.HasPrefix(info.SID.String(), "S-1-5-21-") {
		t.Errorf("Check = %+v", info)
	}
}

func TestSambaBulkReadWithSmallPages(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	if f.bulk == 0 {
		t.Skip("AUTOIMPORT_TEST_SAMBA_BULK_USERS not given")
	}
	src := sambaSource(t, f, func(c *ad.Config) { c.PageSize = 300 })
	got, bad := collect(t, src, sources.Selection{OUs: []string{adtest.OUBulk + "," + f.baseDN}})
	if len(bad) > 0 {
		t.Errorf("entry errors: %v", bad[0])
	}
	if len(got) != f.bulk {
		t.Errorf("read %d bulk users, want %d", len(got), f.bulk)
	}
	disabled := 0
	for _, a := range got {
		if strings.HasPrefix(a.SkipReason, "disabled") {
			disabled++
		}
	}
	if want := f.bulk / 20; disabled != want {
		t.Errorf("%d disabled, want %d", disabled, want)
	}
}

func TestSambaStartTLS(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	if !strings.HasPrefix(f.url, "ldaps://127.0.0.1") {
		t.Skip("StartTLS check needs the script's loopback DC")
	}
	src := sambaSource(t, f, func(c *ad.Config) { c.URL = "ldap://127.0.0.1:389"; c.StartTLS = true })
	info, err := src.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NetBIOS != "CORP" {
		t.Errorf("NetBIOS %q", info.NetBIOS)
	}
}

func TestSambaWrongPassword(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	const wrong = "not-the-password-4711"
	_, err := sambaSource(t, f, func(c *ad.Config) { c.BindPassword = wrong }).Check(context.Background())
	if err == nil {
		t.Fatal("bind with a wrong password succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"customer samba", "LDAP result 49", "check bind_dn/bind_password"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, wrong) {
		t.Errorf("error reveals the password: %q", msg)
	}
}

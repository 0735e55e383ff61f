package ad_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/sambatest"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// A real Active Directory: Samba's AD DC, which internal/sambatest sets up
// (or finds through AUTOIMPORT_TEST_SAMBA_*). Under CI these tests fail
// when Samba cannot be had; elsewhere they skip, saying why.

func TestMain(m *testing.M) { os.Exit(sambatest.Run(m)) }

func sambaSource(t *testing.T, f sambatest.Facts, mod ...func(*ad.Config)) *ad.Source {
	t.Helper()
	cfg := ad.Config{Customer: "samba", URL: f.URL, CAFile: f.CA, BindDN: f.BindDN, BindPassword: f.Password,
		BaseDN: f.BaseDN, SearchTimeout: 30 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	src, err := ad.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(src.CloseIdleConnections)
	return src
}

func TestClassificationSamba(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	runClassificationCases(t, sambaSource(t, f), f.BaseDN, "CORP")
}

func TestSambaCheckDiscoversDomain(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	info, err := sambaSource(t, f, func(c *ad.Config) { c.BaseDN = "" }).Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(info.BaseDN, f.BaseDN) || info.NetBIOS != "CORP" || !strings.HasPrefix(info.SID.String(), "S-1-5-21-") {
		t.Errorf("Check = %+v", info)
	}
}

func TestSambaBulkReadWithSmallPages(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	if f.Bulk == 0 {
		t.Skip("AUTOIMPORT_TEST_SAMBA_BULK_USERS not given")
	}
	src := sambaSource(t, f, func(c *ad.Config) { c.PageSize = 300 })
	got, bad := collect(t, src, sources.Selection{OUs: []string{adtest.OUBulk + "," + f.BaseDN}})
	if len(bad) > 0 {
		t.Errorf("entry errors: %v", bad[0])
	}
	if len(got) != f.Bulk {
		t.Errorf("read %d bulk users, want %d", len(got), f.Bulk)
	}
	disabled := 0
	for _, a := range got {
		if strings.HasPrefix(a.SkipReason, "disabled") {
			disabled++
		}
	}
	if want := f.Bulk / 20; disabled != want {
		t.Errorf("%d disabled, want %d", disabled, want)
	}
}

func TestSambaStartTLS(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	if !strings.HasPrefix(f.URL, "ldaps://127.0.0.1") {
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
	f := sambatest.Need(t)
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

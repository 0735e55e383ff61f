package ad_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// fakeSource starts a fake DC over LDAPS and returns a Source reading it.
func fakeSource(t testing.TB, dir *adtest.Directory, mod ...func(*ad.Config)) (*adtest.Server, *ad.Source) {
	t.Helper()
	srv := adtest.NewServer(t, adtest.Options{Directory: dir, LDAPS: true})
	cfg := srv.Config("acme")
	for _, m := range mod {
		m(&cfg)
	}
	src, err := ad.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv, src
}

func TestClassificationFake(t *testing.T) {
	dir := adtest.Generate(7, 50)
	_, src := fakeSource(t, dir)
	runClassificationCases(t, src, dir.BaseDN, dir.NetBIOS)
}

func TestPaging20kUsersExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 20000
	dir := adtest.Generate(3, n)
	srv, src := fakeSource(t, dir)
	got, bad := collect(t, src, sources.Selection{OUs: []string{adtest.OUBulk + "," + dir.BaseDN}})
	if len(bad) > 0 {
		t.Fatalf("entry errors: %v", bad[0])
	}
	users, computers, disabled := 0, 0, 0
	for _, a := range got {
		switch {
		case strings.HasSuffix(a.Username, "$"):
			computers++
		default:
			users++
			if strings.HasPrefix(a.SkipReason, "disabled") {
				disabled++
			}
		}
	}
	if users != n || computers != n/100 || disabled != n/20 {
		t.Errorf("users %d computers %d disabled %d; want %d, %d, %d", users, computers, disabled, n, n/100, n/20)
	}
	st := srv.Stats()
	if st.SizeLimitExceeded != 0 {
		t.Errorf("%d searches hit the size limit", st.SizeLimitExceeded)
	}
	if min := int64((n + n/100) / adtest.DefaultMaxPageSize); st.Pages < min {
		t.Errorf("%d pages, want at least %d", st.Pages, min)
	}
	if open := srv.OpenPagedSearches(); open != 0 {
		t.Errorf("%d paged searches left open", open)
	}
}

func TestDomainUsersOnLargeDirectory(t *testing.T) {
	t.Parallel()
	const n = 2000
	dir := adtest.Generate(4, n)
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{Builtin: []string{"Domain Users"}})
	bulk, admins := 0, 0
	for _, a := range got {
		if strings.Contains(a.DN, adtest.OUBulk+",") {
			bulk++
			if a.Type == sources.Admin {
				admins++
				if a.TypeReason != "member of Domain Admins via Tier3 Ops > Tier2 Ops" {
					t.Errorf("%s: reason %q", a.Username, a.TypeReason)
				}
			}
		}
	}
	if bulk != n || admins != n/1000 {
		t.Errorf("bulk users %d admins %d, want %d and %d", bulk, admins, n, n/1000)
	}
}

func TestPrivilegedFoundBySIDNotName(t *testing.T) {
	dir := adtest.Generate(5, 0)
	// A decoy group called "Domain Admins" that is not the RID-512 group.
	decoy := dir.AddGroup("CN=Domain Admins," + adtest.OUGroups + "," + dir.BaseDN)
	heidi := "CN=Heidi Hall," + adtest.OUEngineering + "," + dir.BaseDN
	if err := dir.AddMember(decoy.DN, heidi); err != nil {
		t.Fatal(err)
	}
	// The real one renamed, as on a German DC.
	if err := dir.Set("CN=Domain Admins,CN=Users,"+dir.BaseDN, "cn", "Domänen-Admins"); err != nil {
		t.Fatal(err)
	}
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{OUs: []string{adtest.OUStaff + "," + dir.BaseDN}})
	if a := got["heidi"]; a.Type != sources.EndUser {
		t.Errorf("heidi in a decoy group named Domain Admins: %s (%s)", a.Type, a.TypeReason)
	}
	if a := got["carol"]; a.Type != sources.Admin || a.TypeReason != "member of Domain Admins via Tier2 Ops" {
		t.Errorf("carol: %s (%s)", a.Type, a.TypeReason)
	}
}

func TestPrimaryGroupMembership(t *testing.T) {
	dir := adtest.Generate(6, 0)
	b := dir.BaseDN
	attrs, _ := dir.Lookup(adtest.GroupTier2Ops + "," + b)
	sid, err := ad.ParseSIDBytes([]byte(attrs["objectSid"][0]))
	if err != nil {
		t.Fatal(err)
	}
	rid, _ := sid.RID()
	dir.AddUser(adtest.User{Parent: adtest.OUAdmins + "," + b, SAM: "pat", GivenName: "Pat", Surname: "Primary", PrimaryGroupID: 512})
	dir.AddUser(adtest.User{Parent: adtest.OUAdmins + "," + b, SAM: "quinn", GivenName: "Quinn", Surname: "Nested", PrimaryGroupID: rid})
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{Admins: true})
	for sam, want := range map[string]string{
		"pat":   "member of Domain Admins (primary group)",
		"quinn": "member of Domain Admins via Tier2 Ops (primary group)",
	} {
		a, ok := got[sam]
		if !ok {
			t.Errorf("%s: not yielded as admin candidate", sam)
			continue
		}
		if a.Type != sources.Admin || a.TypeReason != want {
			t.Errorf("%s: %s %q, want admin %q", sam, a.Type, a.TypeReason, want)
		}
	}
}

func TestMalformedEntriesDoNotStopTheStream(t *testing.T) {
	dir := adtest.Generate(8, 100)
	b := dir.BaseDN
	dns := map[string]string{}
	for _, m := range []struct{ attr, value, reason string }{
		{"objectGUID", "12345", "bad objectGUID"},
		{"displayName", "Broken \xfe\xff", "displayName is not valid UTF-8"},
		{"sAMAccountName", "", "no sAMAccountName"},
		{"userAccountControl", "enabled", "userAccountControl"},
	} {
		dn := "CN=Mal " + m.attr + "," + adtest.OUBulk + "," + b
		dir.AddUser(adtest.User{Parent: adtest.OUBulk + "," + b, SAM: "mal" + strings.ToLower(m.attr[:4]), CN: "Mal " + m.attr})
		var vals []string
		if m.value != "" {
			vals = []string{m.value}
		}
		if err := dir.Set(dn, m.attr, vals...); err != nil {
			t.Fatal(err)
		}
		dns[dn] = m.reason
	}
	_, src := fakeSource(t, dir)
	got, bad := collect(t, src, sources.Selection{OUs: []string{adtest.OUBulk + "," + b}})
	if len(bad) != len(dns) {
		t.Fatalf("%d entry errors, want %d: %v", len(bad), len(dns), bad)
	}
	for _, e := range bad {
		want, ok := dns[e.Entry]
		if !ok || !strings.Contains(e.Reason, want) || e.Source != sources.KindAD {
			t.Errorf("entry error %+v, want one for a planted entry with %q", e, want)
		}
	}
	if users := len(got); users != 100+1 { // 100 users and one computer
		t.Errorf("%d accounts after the broken ones, want 101", users)
	}
}

func TestWrongPasswordNamesTheFix(t *testing.T) {
	const wrong = "definitely-wrong-7"
	_, src := fakeSource(t, nil, func(c *ad.Config) { c.BindPassword = wrong })
	var err error
	for _, e := range src.Accounts(context.Background(), sources.Selection{Admins: true}) {
		err = e
	}
	if err == nil {
		t.Fatal("no error for a wrong password")
	}
	msg := err.Error()
	for _, want := range []string{"AD: customer acme", "LDAP result 49", "data 52e", "check bind_dn/bind_password"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, wrong) {
		t.Errorf("error reveals the password: %q", msg)
	}
}

func TestBindNameForms(t *testing.T) {
	for _, name := range []string{adtest.DefaultBindDN, "svc-import@corp.example.test", `CORP\svc-import`} {
		_, src := fakeSource(t, nil, func(c *ad.Config) { c.BindDN = name })
		if _, err := src.Check(context.Background()); err != nil {
			t.Errorf("bind as %q: %v", name, err)
		}
	}
}

func TestTransports(t *testing.T) {
	tests := []struct {
		name    string
		ldaps   bool
		mod     func(*ad.Config, *adtest.Server)
		wantErr string
	}{
		{name: "ldaps with CA", ldaps: true, mod: func(*ad.Config, *adtest.Server) {}},
		{name: "StartTLS with CA", mod: func(c *ad.Config, s *adtest.Server) { c.URL = s.URL(); c.StartTLS = true }},
		{name: "plain when allowed", mod: func(c *ad.Config, s *adtest.Server) { c.URL = s.URL(); c.AllowPlaintext = true; c.CAPEM = nil }},
		{name: "ldaps without the CA", ldaps: true, mod: func(c *ad.Config, s *adtest.Server) { c.CAPEM = nil }, wantErr: "CA bundle"},
		{name: "ldaps with a foreign CA", ldaps: true, mod: func(c *ad.Config, s *adtest.Server) {
			other := adtest.NewServer(t, adtest.Options{LDAPS: true})
			c.CAPEM = other.CAPEM()
		}, wantErr: "certificate"},
		{name: "nobody listening", ldaps: true, mod: func(c *ad.Config, s *adtest.Server) { c.URL = "ldaps://127.0.0.1:1" }, wantErr: "connect 127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := adtest.NewServer(t, adtest.Options{LDAPS: tc.ldaps})
			cfg := ad.Config{Customer: "acme", URL: srv.URL(), CAPEM: srv.CAPEM(), BindDN: srv.BindDN(), BindPassword: srv.Password(), DialTimeout: 2 * time.Second}
			tc.mod(&cfg, srv)
			src, err := ad.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			info, err := src.Check(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if info.NetBIOS != "CORP" || info.BaseDN != "DC=corp,DC=example,DC=test" || info.SID.String() == "" {
					t.Errorf("Check = %+v", info)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestReconnectsOnceAfterDrop(t *testing.T) {
	dir := adtest.Generate(9, 600)
	srv, src := fakeSource(t, dir, func(c *ad.Config) { c.PageSize = 100 })
	seen := map[string]bool{}
	n := 0
	for acc, err := range src.Accounts(context.Background(), sources.Selection{OUs: []string{adtest.OUBulk + "," + dir.BaseDN}}) {
		if err != nil {
			t.Fatalf("after %d accounts: %v", n, err)
		}
		if seen[acc.ID] {
			t.Fatalf("%s yielded twice", acc.Username)
		}
		seen[acc.ID] = true
		n++
		if n == 250 {
			srv.DropConnections() // the rest of this page is buffered; the next page needs a new connection
		}
	}
	if n != 600+6 {
		t.Errorf("read %d accounts, want 606", n)
	}
	if b := srv.Stats().Binds; b != 2 {
		t.Errorf("%d binds, want 2 (one reconnect)", b)
	}
}

func TestSecondDropEndsTheStream(t *testing.T) {
	dir := adtest.Generate(9, 600)
	srv, src := fakeSource(t, dir, func(c *ad.Config) { c.PageSize = 100 })
	var err error
	n := 0
	for _, e := range src.Accounts(context.Background(), sources.Selection{OUs: []string{adtest.OUBulk + "," + dir.BaseDN}}) {
		if e != nil {
			err = e
			break
		}
		n++
		if n == 150 || n == 350 {
			srv.DropConnections()
		}
	}
	if err == nil || !strings.Contains(err.Error(), "AD: customer acme: search") {
		t.Errorf("err %v after %d accounts, want a search error", err, n)
	}
}

func TestEarlyStopReleasesPagingState(t *testing.T) {
	dir := adtest.Generate(10, 300)
	srv, src := fakeSource(t, dir, func(c *ad.Config) { c.PageSize = 100 })
	n := 0
	for _, err := range src.Accounts(context.Background(), sources.Selection{Builtin: []string{"Domain Users"}}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	if open := srv.OpenPagedSearches(); open != 0 {
		t.Errorf("%d paged searches still open after the consumer stopped", open)
	}
	if ab := srv.Stats().Abandons; ab != 1 {
		t.Errorf("%d abandons, want 1", ab)
	}
}

func TestCancelledContextEndsTheStream(t *testing.T) {
	dir := adtest.Generate(11, 300)
	_, src := fakeSource(t, dir, func(c *ad.Config) { c.PageSize = 100 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	n := 0
	for _, e := range src.Accounts(ctx, sources.Selection{OUs: []string{adtest.OUBulk + "," + dir.BaseDN}}) {
		if e != nil {
			err = e
			break
		}
		if n++; n == 5 {
			cancel()
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if n >= 300 {
		t.Errorf("read all %d accounts despite cancel", n)
	}
}

func TestSearchTimeout(t *testing.T) {
	srv, src := fakeSource(t, nil, func(c *ad.Config) { c.SearchTimeout = 50 * time.Millisecond })
	srv.SetLatency(time.Second)
	_, err := src.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "search_timeout") {
		t.Errorf("err %v, want a timeout naming search_timeout", err)
	}
}

func TestSelectionErrors(t *testing.T) {
	dir := adtest.Generate(12, 0)
	_, src := fakeSource(t, dir)
	tests := []struct {
		name string
		sel  sources.Selection
		want string
	}{
		{name: "missing group", sel: sources.Selection{Groups: []string{"CN=Nope,OU=Groups,OU=Corp," + dir.BaseDN}}, want: `selected group "CN=Nope`},
		{name: "OU given as group", sel: sources.Selection{Groups: []string{adtest.OUSales + "," + dir.BaseDN}}, want: "not a group"},
		{name: "unknown built-in", sel: sources.Selection{Builtin: []string{"Everybody"}}, want: `unknown built-in group "Everybody"`},
		{name: "missing OU", sel: sources.Selection{OUs: []string{"OU=Nope," + dir.BaseDN}}, want: "no such object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			for _, e := range src.Accounts(context.Background(), tc.sel) {
				if e != nil {
					err = e
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "customer acme") {
				t.Errorf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBuiltinBySID(t *testing.T) {
	dir := adtest.Generate(13, 0)
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{Builtin: []string{"S-1-5-32-551"}})
	if len(got) != 1 || got["ivan"].Type != sources.Admin {
		t.Errorf("Backup Operators by SID: %v", got)
	}
}

func TestSkippedKindsInOU(t *testing.T) {
	dir := adtest.Generate(14, 0)
	ou := adtest.OUSales + "," + dir.BaseDN
	dir.AddGMSA(ou, "gmsa-web")
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{OUs: []string{ou}})
	for key, want := range map[string]string{
		"gmsa-web$":                              "group-managed service account",
		"ws01$":                                  "computer account",
		"CN=" + adtest.FixtureContact + "," + ou: "contact",
	} {
		if a := got[key]; a.SkipReason != want || a.Candidate() {
			t.Errorf("%s: SkipReason %q, want %q", key, a.SkipReason, want)
		}
	}
}

func TestSearchesPerRun(t *testing.T) {
	dir := adtest.Generate(15, 250)
	srv, src := fakeSource(t, dir, func(c *ad.Config) { c.PageSize = 100 })
	srv.ResetStats()
	got, _ := collect(t, src, sources.Selection{Groups: []string{adtest.GroupAllStaff + "," + dir.BaseDN}, Builtin: []string{"Domain Users"}})
	st := srv.Stats()
	// rootDSE, domain head, crossRef, privileged groups, selected group,
	// Domain Users, nested groups, then 3 pages of 100 members.
	if st.Binds != 1 || st.Searches > 10 {
		t.Errorf("%d accounts took %d binds and %d searches (%+v)", len(got), st.Binds, st.Searches, st)
	}
}

func TestHugeNestingFallsBackToInChain(t *testing.T) {
	dir := adtest.Generate(16, 0)
	b := dir.BaseDN
	parent := adtest.GroupAllStaff + "," + b
	var last string
	for i := range 520 {
		g := dir.AddGroup(fmt.Sprintf("CN=Team %03d,%s,%s", i, adtest.OUGroups, b))
		if err := dir.AddMember(parent, g.DN); err != nil {
			t.Fatal(err)
		}
		last = g.DN
	}
	if err := dir.AddMember(last, "CN=Heidi Hall,"+adtest.OUEngineering+","+b); err != nil {
		t.Fatal(err)
	}
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{Groups: []string{parent}})
	if a, ok := got["heidi"]; !ok || a.Type != sources.EndUser {
		t.Errorf("heidi through group 520 of All Staff: %+v %v", a, ok)
	}
	if _, ok := got["alice"]; !ok {
		t.Errorf("alice missing")
	}
}

func TestErrorsCarryNoNULAndUnwrap(t *testing.T) {
	_, src := fakeSource(t, nil, func(c *ad.Config) { c.BindPassword = "nope" })
	_, err := src.Check(context.Background())
	if err == nil || strings.ContainsRune(err.Error(), 0) {
		t.Fatalf("err %q", err)
	}
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials {
		t.Errorf("errors.As(*ldap.Error) = %v", le)
	}
}

func TestServerConfigWithStartTLS(t *testing.T) {
	srv := adtest.NewServer(t, adtest.Options{})
	src, err := ad.New(srv.Config("acme"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := collect(t, src, sources.Selection{Groups: []string{adtest.GroupSalesEMEA + "," + srv.Directory().BaseDN}})
	if len(got) != 1 || got["erin"].Username != "erin" {
		t.Errorf("got %v", got)
	}
}

func TestGroupByName(t *testing.T) {
	dir := adtest.Generate(17, 0)
	_, src := fakeSource(t, dir)
	got, _ := collect(t, src, sources.Selection{Groups: []string{"Sales EMEA"}})
	if len(got) != 1 || got["erin"].SelectedBy[0] != "Sales EMEA" {
		t.Errorf("by name: %v", got)
	}
	for _, name := range []string{"No Such Group"} {
		var err error
		for _, e := range src.Accounts(context.Background(), sources.Selection{Groups: []string{name}}) {
			err = e
		}
		if err == nil || !strings.Contains(err.Error(), "no group with sAMAccountName") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestLaterDialsResumeTheTLSSession: every dial after a source's first
// resumes its TLS session, over LDAPS and after StartTLS alike.
func TestLaterDialsResumeTheTLSSession(t *testing.T) {
	for _, ldaps := range []bool{true, false} {
		t.Run(map[bool]string{true: "ldaps", false: "starttls"}[ldaps], func(t *testing.T) {
			srv := adtest.NewServer(t, adtest.Options{Directory: adtest.Generate(3, 5), LDAPS: ldaps})
			src, err := ad.New(srv.Config("acme"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				conn, err := src.DialBind(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				st, ok := conn.TLSConnectionState()
				conn.Close()
				if !ok || !st.HandshakeComplete {
					t.Fatalf("dial %d: no TLS", i)
				}
				if st.DidResume != (i > 0) {
					t.Errorf("dial %d: resumed %v, want %v", i, st.DidResume, i > 0)
				}
			}
			// Another source (another customer's, or the next run's)
			// starts with its own session.
			other, err := ad.New(srv.Config("acme"))
			if err != nil {
				t.Fatal(err)
			}
			conn, err := other.DialBind(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if st, _ := conn.TLSConnectionState(); st.DidResume {
				t.Error("a new source resumed another source's session")
			}
		})
	}
}

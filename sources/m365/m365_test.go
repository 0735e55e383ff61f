package m365_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// newSource makes a Source for the fake's default tenant; mod adjusts the
// config before New.
func newSource(t testing.TB, srv *m365test.Server, mod ...func(*m365.Config)) *m365.Source {
	t.Helper()
	cfg := m365.Config{
		Customer:     "acme",
		TenantID:     srv.TenantID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		LoginURL:     srv.URL,
		GraphURL:     srv.URL,
		Transport:    srv.Client().Transport,
		MinWait:      time.Millisecond,
		MaxWait:      10 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := m365.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// collect reads the whole stream; entry errors are collected, any other
// error fails the test.
func collect(t testing.TB, seq func(func(sources.Account, error) bool)) (map[string]sources.Account, []error) {
	t.Helper()
	out := map[string]sources.Account{}
	var entryErrs []error
	for a, err := range seq {
		if err != nil {
			var ee *sources.EntryError
			if errors.As(err, &ee) {
				entryErrs = append(entryErrs, err)
				continue
			}
			t.Fatalf("read: %v", err)
		}
		if _, dup := out[a.ID]; dup {
			t.Fatalf("account %s (%s) yielded twice", a.ID, a.UPN)
		}
		out[a.ID] = a
	}
	return out, entryErrs
}

func boolp(b bool) *bool { return &b }

// classTenant is a small directory covering every classification case.
type classTenant struct {
	srv                                                  *m365test.Server
	finance                                              string
	alice, bob, gina, dave, hank, ann, hal, rita, ursula string
}

const hankImmutableID = "MyIRAFVEd2aImaq7zN3u/w=="

func newClassTenant(t *testing.T) *classTenant {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	c := &classTenant{srv: srv}
	lic := []string{"c42b9cae-ea4f-4ab7-9717-81576235ccac"}
	c.alice = tn.AddUser(m365test.User{UserPrincipalName: "alice@acme.example", DisplayName: "Alice Archer", GivenName: "Alice", Surname: "Archer", Mail: "alice@acme.example", Licenses: lic})
	c.bob = tn.AddUser(m365test.User{UserPrincipalName: "bob@acme.example", DisplayName: "Bob Brown", Licenses: lic})
	c.gina = tn.AddUser(m365test.User{UserPrincipalName: "gina_partner.example#EXT#@acme.onmicrosoft.com", DisplayName: "Gina Guest", Mail: "gina@partner.example", Guest: true})
	c.dave = tn.AddUser(m365test.User{UserPrincipalName: "dave@acme.example", DisplayName: "Dave Disabled", Disabled: true, Licenses: lic})
	c.hank = tn.AddUser(m365test.User{UserPrincipalName: "hank@acme.example", DisplayName: "Hank Hybrid", Mail: "hank@acme.example", Licenses: lic,
		OnPremisesSyncEnabled: boolp(true), OnPremisesImmutableID: hankImmutableID, OnPremisesSamAccountName: "hank", OnPremisesSecurityIdentifier: "S-1-5-21-1-2-3-1105"})
	c.ann = tn.AddUser(m365test.User{UserPrincipalName: "ann@acme.example", DisplayName: "Ann Admin", Licenses: lic})
	c.hal = tn.AddUser(m365test.User{UserPrincipalName: "hal@acme.example", DisplayName: "Hal Helpdesk"})
	c.rita = tn.AddUser(m365test.User{UserPrincipalName: "rita@acme.example", DisplayName: "Rita Reader", Licenses: lic})
	c.ursula = tn.AddUser(m365test.User{UserPrincipalName: "ursula@acme.example", DisplayName: "Ursula Unselected"})
	contractors := tn.AddGroup("Finance Contractors", c.bob)
	c.finance = tn.AddGroup("Finance", c.alice, contractors, c.gina, c.dave, c.hank, c.ann, c.rita)
	tn.AddGroup("Finance Contractors Loop", contractors) // unrelated group
	tn.AddMembers(contractors, c.finance)                // a membership cycle
	ga := tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(ga, c.ann)
	admins := tn.AddGroup("Helpdesk Admins", c.hal)
	tn.ActivateRole(m365test.HelpdeskAdministrator, "")
	tn.AssignRole(m365test.HelpdeskAdministrator, admins) // a role-assignable group
	tn.ActivateRole(m365test.DirectoryReaders, "")
	tn.AssignRole(m365test.DirectoryReaders, c.rita) // not a privileged role
	return c
}

// want is the classification expected of one user.
type want struct {
	typ        sources.AccountType
	reason     string
	skip       string
	selectedBy []string
}

func TestAccountsClassification(t *testing.T) {
	c := newClassTenant(t)
	endUser := func(by ...string) want {
		return want{typ: sources.EndUser, reason: "member of " + strings.Join(by, ", "), selectedBy: by}
	}
	tests := []struct {
		name string
		sel  sources.Selection
		want map[string]want // by user id; users absent here must not be yielded
	}{
		{
			name: "group by name, nested members, guest, disabled, hybrid, admin only",
			sel:  sources.Selection{Groups: []string{"Finance"}},
			want: map[string]want{
				c.alice: endUser("Finance"),
				c.bob:   endUser("Finance"), // through Finance Contractors
				c.gina:  {typ: sources.EndUser, reason: "member of Finance", skip: m365.SkipGuest, selectedBy: []string{"Finance"}},
				c.dave:  {typ: sources.EndUser, reason: "member of Finance", skip: m365.SkipDisabled, selectedBy: []string{"Finance"}},
				c.hank:  endUser("Finance"),
				c.ann:   {typ: sources.Admin, reason: "holds Global Administrator", selectedBy: []string{"Finance"}},
				c.rita:  endUser("Finance"), // Directory Readers is not privileged
			},
		},
		{
			name: "group by id, disabled included",
			sel:  sources.Selection{Groups: []string{c.finance}, IncludeDisabled: true},
			want: map[string]want{
				c.alice: endUser("Finance"),
				c.bob:   endUser("Finance"),
				c.gina:  {typ: sources.EndUser, reason: "member of Finance", skip: m365.SkipGuest, selectedBy: []string{"Finance"}},
				c.dave:  endUser("Finance"),
				c.hank:  endUser("Finance"),
				c.ann:   {typ: sources.Admin, reason: "holds Global Administrator", selectedBy: []string{"Finance"}},
				c.rita:  endUser("Finance"),
			},
		},
		{
			name: "group and role: the admin in both comes once, as admin",
			sel:  sources.Selection{Groups: []string{"Finance"}, Roles: []string{"Global Administrator"}},
			want: map[string]want{
				c.alice: endUser("Finance"),
				c.bob:   endUser("Finance"),
				c.gina:  {typ: sources.EndUser, reason: "member of Finance", skip: m365.SkipGuest, selectedBy: []string{"Finance"}},
				c.dave:  {typ: sources.EndUser, reason: "member of Finance", skip: m365.SkipDisabled, selectedBy: []string{"Finance"}},
				c.hank:  endUser("Finance"),
				c.ann:   {typ: sources.Admin, reason: "holds Global Administrator", selectedBy: []string{"Finance", "Global Administrator"}},
				c.rita:  endUser("Finance"),
			},
		},
		{
			name: "every privileged role, through a role-assignable group",
			sel:  sources.Selection{Admins: true},
			want: map[string]want{
				c.ann: {typ: sources.Admin, reason: "holds Global Administrator", selectedBy: []string{"Global Administrator"}},
				c.hal: {typ: sources.Admin, reason: "holds Helpdesk Administrator", selectedBy: []string{"Helpdesk Administrator"}},
			},
		},
		{
			name: "a role by template id",
			sel:  sources.Selection{Roles: []string{m365test.HelpdeskAdministrator}},
			want: map[string]want{
				c.hal: {typ: sources.Admin, reason: "holds Helpdesk Administrator", selectedBy: []string{"Helpdesk Administrator"}},
			},
		},
		{
			name: "a non-privileged role named in the selection makes its holders admins",
			sel:  sources.Selection{Roles: []string{"Directory Readers"}},
			want: map[string]want{
				c.rita: {typ: sources.Admin, reason: "holds Directory Readers", selectedBy: []string{"Directory Readers"}},
			},
		},
		{
			name: "AD-only selection selects nobody",
			sel:  sources.Selection{OUs: []string{"OU=Staff,DC=acme,DC=example"}},
			want: map[string]want{},
		},
		{
			name: "empty selection reads every user",
			sel:  sources.Selection{},
			want: map[string]want{
				c.alice:  {typ: sources.EndUser, reason: "user of the tenant", selectedBy: []string{m365.ReasonAllUsers}},
				c.bob:    {typ: sources.EndUser, reason: "user of the tenant", selectedBy: []string{m365.ReasonAllUsers}},
				c.gina:   {typ: sources.EndUser, reason: "user of the tenant", skip: m365.SkipGuest, selectedBy: []string{m365.ReasonAllUsers}},
				c.dave:   {typ: sources.EndUser, reason: "user of the tenant", skip: m365.SkipDisabled, selectedBy: []string{m365.ReasonAllUsers}},
				c.hank:   {typ: sources.EndUser, reason: "user of the tenant", selectedBy: []string{m365.ReasonAllUsers}},
				c.ann:    {typ: sources.Admin, reason: "holds Global Administrator", selectedBy: []string{m365.ReasonAllUsers}},
				c.hal:    {typ: sources.Admin, reason: "holds Helpdesk Administrator", selectedBy: []string{m365.ReasonAllUsers}},
				c.rita:   {typ: sources.EndUser, reason: "user of the tenant", selectedBy: []string{m365.ReasonAllUsers}},
				c.ursula: {typ: sources.EndUser, reason: "user of the tenant", selectedBy: []string{m365.ReasonAllUsers}},
			},
		},
	}
	src := newSource(t, c.srv)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, entryErrs := collect(t, src.Accounts(context.Background(), tc.sel))
			if len(entryErrs) > 0 {
				t.Fatalf("entry errors: %v", entryErrs)
			}
			gotW := map[string]want{}
			for id, a := range got {
				gotW[id] = want{typ: a.Type, reason: a.TypeReason, skip: a.SkipReason, selectedBy: a.SelectedBy}
			}
			if diff := diffMap(tc.want, gotW); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("fields of a hybrid user", func(t *testing.T) {
		got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{Groups: []string{"Finance"}}))
		h := got[c.hank]
		wantH := sources.Account{
			Source: sources.KindM365, ID: c.hank, Username: "hank@acme.example", UPN: "hank@acme.example",
			DisplayName: "Hank Hybrid", Email: "hank@acme.example", Enabled: true,
			Type: sources.EndUser, TypeReason: "member of Finance", SelectedBy: []string{"Finance"},
			ImmutableID: hankImmutableID, OnPremisesSync: true, Licensed: true,
		}
		if diff := diffValue(wantH, h); diff != "" {
			t.Errorf("hybrid account (-want +got):\n%s", diff)
		}
		if a := got[c.bob]; a.Email != "" || a.OnPremisesSync || a.ImmutableID != "" {
			t.Errorf("cloud-only user without mail: got email %q sync %v immutable %q, want none invented", a.Email, a.OnPremisesSync, a.ImmutableID)
		}
		if a := got[c.gina]; a.Licensed {
			t.Errorf("unlicensed guest reported licensed")
		}
	})
}

func TestAccountsSeveralGroups(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	both := tn.AddUser(m365test.User{UserPrincipalName: "both@acme.example"})
	one := tn.AddUser(m365test.User{UserPrincipalName: "one@acme.example"})
	two := tn.AddUser(m365test.User{UserPrincipalName: "two@acme.example"})
	tn.AddGroup("Sales", both, one)
	tn.AddGroup("Support", two, both)
	got, _ := collect(t, newSource(t, srv).Accounts(context.Background(), sources.Selection{Groups: []string{"Sales", "Support"}}))
	wantBy := map[string][]string{both: {"Sales", "Support"}, one: {"Sales"}, two: {"Support"}}
	gotBy := map[string][]string{}
	for id, a := range got {
		gotBy[id] = a.SelectedBy
	}
	if diff := diffMap(wantBy, gotBy); diff != "" {
		t.Errorf("selected by (-want +got):\n%s", diff)
	}
}

func TestGroupResolutionErrors(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	tn.AddGroup("Twins")
	tn.AddGroup("Twins")
	src := newSource(t, srv)
	for _, tc := range []struct{ group, want string }{
		{"Twins", "2 groups have this display name"},
		{"Nobody's Group", "no group has this display name"},
		{"0b6a3a0e-0000-4000-8000-000000000000", "Request_ResourceNotFound"},
	} {
		t.Run(tc.group, func(t *testing.T) {
			var err error
			for _, e := range src.Accounts(context.Background(), sources.Selection{Groups: []string{tc.group}}) {
				if e != nil {
					err = e
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "customer acme") || !strings.Contains(err.Error(), srv.TenantID) {
				t.Fatalf("error = %v, want one containing %q, the customer and the tenant", err, tc.want)
			}
		})
	}
}

func TestGraphURLWithVersion(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().AddUser(m365test.User{UserPrincipalName: "a@acme.example"})
	src := newSource(t, srv, func(c *m365.Config) {
		c.GraphURL = srv.URL + "/v1.0/"
		c.Scope = "https://graph.microsoft.com/.default"
	})
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRead20000UsersPageSize999(t *testing.T) {
	t.Parallel()
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	gen := srv.Default().Generate(m365test.GenOptions{Seed: 20000, Users: 20000})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 999 })
	got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{}))
	if len(got) != 20000 {
		t.Fatalf("got %d accounts, want 20000", len(got))
	}
	for _, id := range gen.Users {
		if _, ok := got[id]; !ok {
			t.Fatalf("user %s missing", id)
		}
	}
	if n := srv.Count(m365test.KindUsers); n != 21 {
		t.Errorf("user list requests = %d, want 21 (20,000 / 999 rounded up)", n)
	}
	if n := srv.Count(m365test.KindToken); n != 1 {
		t.Errorf("token requests = %d, want 1 (the token is reused)", n)
	}
}

// ids returns the sorted ids of a read.
func ids(m map[string]sources.Account) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func TestThrottledMidPagingCompletes(t *testing.T) {
	t.Parallel()
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 7, Users: 3000, Groups: 3, Admins: 2})
	sel := sources.Selection{Groups: []string{"All Staff"}}
	base, _ := collect(t, newSource(t, srv, func(c *m365.Config) { c.PageSize = 500 }).Accounts(context.Background(), sel))

	tests := []struct {
		name  string
		fault m365test.Fault
	}{
		{"429 with Retry-After", m365test.Fault{Kind: m365test.KindGroupMembers, After: 2, Status: 429, RetryAfter: "1"}},
		{"503 without Retry-After", m365test.Fault{Kind: m365test.KindGroupMembers, After: 3, Status: 503, Times: 2}},
		{"504", m365test.Fault{Kind: m365test.KindGroupMembers, After: 1, Status: 504}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetCounts()
			srv.Inject(tc.fault)
			src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 500 })
			start := time.Now()
			got, _ := collect(t, src.Accounts(context.Background(), sel))
			if diff := diffMap(base, got); diff != "" {
				t.Fatalf("result differs from the unthrottled read (-want +got):\n%s", diff)
			}
			times := max(tc.fault.Times, 1)
			st := src.Stats()
			if st.Retries != int64(times) {
				t.Errorf("retries = %d, want %d", st.Retries, times)
			}
			if tc.fault.Status == 429 {
				if st.Throttled != 1 {
					t.Errorf("throttled = %d, want 1", st.Throttled)
				}
				if el := time.Since(start); el < time.Second {
					t.Errorf("read took %v: Retry-After 1 was not honoured", el)
				}
			}
			// 3,000 members in pages of 500: 6 pages plus the faulty attempts.
			if n := srv.Count(m365test.KindGroupMembers); n != int64(6+times) {
				t.Errorf("member requests = %d, want %d", n, 6+times)
			}
		})
	}
}

func TestMalformedBodyIsAnError(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 3, Users: 50})
	srv.Inject(m365test.Fault{Kind: m365test.KindUsers, After: 1, Malformed: true})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10 })
	var n int
	var err error
	for a, e := range src.Accounts(context.Background(), sources.Selection{}) {
		if e != nil {
			err = e
			break
		}
		_ = a
		n++
	}
	if err == nil || !strings.Contains(err.Error(), "malformed response body") || !strings.Contains(err.Error(), "list users page 2") {
		t.Fatalf("error = %v, want a malformed-body error on page 2", err)
	}
	if n != 10 {
		t.Errorf("yielded %d accounts before the error, want the 10 of page 1", n)
	}
}

func TestGraphErrorsNameCustomerTenantAndFix(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().AddUser(m365test.User{UserPrincipalName: "x@acme.example"})
	srv.Inject(m365test.Fault{Kind: m365test.KindRoles, Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	var err error
	for _, e := range newSource(t, srv).Accounts(context.Background(), sources.Selection{}) {
		err = e
	}
	var me *m365.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not an *m365.Error", err, err)
	}
	msg := err.Error()
	for _, w := range []string{"customer acme", "tenant " + srv.TenantID, "HTTP 403", "Authorization_RequestDenied", "Insufficient privileges", "RoleManagement.Read.Directory"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if me.Code != "Authorization_RequestDenied" {
		t.Errorf("code = %q", me.Code)
	}
}

func TestTokenFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(*m365test.Server)
		mod      func(*m365.Config)
		code     string
		fixMatch string
	}{
		{"wrong secret", nil, func(c *m365.Config) { c.ClientSecret = "not-the-secret-XYZ" }, "AADSTS7000215", "client secret is wrong"},
		{"expired secret", func(s *m365test.Server) { s.SetSecretExpired(true) }, nil, "AADSTS7000222", "has expired"},
		{"app not consented", func(s *m365test.Server) { s.Default().SetConsented(false) }, nil, "AADSTS700016", "grant admin consent"},
		{"unknown tenant", nil, func(c *m365.Config) { c.TenantID = "contoso-typo.onmicrosoft.com" }, "AADSTS90002", "check the customer's tenant id"},
		{"wrong client id", nil, func(c *m365.Config) { c.ClientID = "00000000-0000-0000-0000-000000000000" }, "AADSTS700016", "admin consent"},
		{"wrong scope", nil, func(c *m365.Config) { c.Scope = "https://graph.microsoft.com/User.Read.All" }, "AADSTS1002012", "/.default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := m365test.NewServer(m365test.Options{})
			t.Cleanup(srv.Close)
			if tc.setup != nil {
				tc.setup(srv)
			}
			mods := []func(*m365.Config){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			src := newSource(t, srv, mods...)
			var err error
			for _, e := range src.Accounts(context.Background(), sources.Selection{}) {
				err = e
			}
			var me *m365.Error
			if !errors.As(err, &me) || !errors.Is(err, m365.ErrTokenRefused) {
				t.Fatalf("error = %v, want an *m365.Error wrapping ErrTokenRefused", err)
			}
			if me.Code != tc.code {
				t.Errorf("code = %q, want %q", me.Code, tc.code)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.fixMatch) || !strings.Contains(msg, "customer acme") {
				t.Errorf("error %q lacks %q or the customer", msg, tc.fixMatch)
			}
			for _, secret := range []string{srv.ClientSecret, "not-the-secret-XYZ"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q carries a secret", msg)
				}
			}
			if n := srv.Count(m365test.KindUsers) + srv.Count(m365test.KindRoles); n != 0 {
				t.Errorf("%d Graph requests without a token", n)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := m365.Config{Customer: "acme", TenantID: "t", ClientID: "c", ClientSecret: "s"}
	tests := []struct {
		name string
		mod  func(*m365.Config)
		want string
	}{
		{"no tenant", func(c *m365.Config) { c.TenantID = "" }, "missing tenant id"},
		{"no secret", func(c *m365.Config) { c.ClientSecret = "" }, "missing client secret"},
		{"page size", func(c *m365.Config) { c.PageSize = 1000 }, "page size 1000 out of range"},
		{"tenant with a path", func(c *m365.Config) { c.TenantID = "a/b" }, "not a tenant id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := m365.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := m365.New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
}

func TestHybridImmutableIDsFromGenerator(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	anchors := []string{"MyIRAFVEd2aImaq7zN3u/w==", "AAECAwQFBgcICQoLDA0ODw=="}
	gen := srv.Default().Generate(m365test.GenOptions{Seed: 9, Users: 10, Hybrid: 3, ImmutableIDs: anchors, Guests: 2, Disabled: 1, Unlicensed: 2})
	got, _ := collect(t, newSource(t, srv).Accounts(context.Background(), sources.Selection{}))
	for i, id := range gen.Hybrid {
		a := got[id]
		if !a.OnPremisesSync || a.ImmutableID == "" {
			t.Errorf("hybrid user %s: sync %v immutable %q", id, a.OnPremisesSync, a.ImmutableID)
		}
		if i < len(anchors) && a.ImmutableID != anchors[i] {
			t.Errorf("hybrid user %d immutable id = %q, want %q", i, a.ImmutableID, anchors[i])
		}
	}
	for _, id := range gen.Unlicensed {
		if got[id].Licensed {
			t.Errorf("unlicensed user %s reported licensed", id)
		}
	}
	skips := map[string]int{}
	for _, a := range got {
		skips[a.SkipReason]++
	}
	if diff := diffMap(map[string]int{"": 10, m365.SkipGuest: 2, m365.SkipDisabled: 1}, skips); diff != "" {
		t.Errorf("skip reasons (-want +got):\n%s", diff)
	}
}

func TestCanceledContextStopsTheRead(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 100})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10 })
	n := 0
	var err error
	for _, e := range src.Accounts(ctx, sources.Selection{}) {
		if e != nil {
			err = e
			break
		}
		if n++; n == 5 {
			cancel()
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if n != 10 {
		t.Errorf("yielded %d accounts, want the 10 of the page read before the cancel", n)
	}
}

// diffMap describes how got differs from want, key by key; "" if equal.
func diffMap[K comparable, V any](want, got map[K]V) string {
	var b strings.Builder
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			fmt.Fprintf(&b, "- %v: %+v\n", k, w)
		case !reflect.DeepEqual(w, g):
			fmt.Fprintf(&b, "- %v: %+v\n+ %v: %+v\n", k, w, k, g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "+ %v: %+v\n", k, g)
		}
	}
	return b.String()
}

// diffValue describes how got differs from want; "" if equal.
func diffValue(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("- %+v\n+ %+v\n", want, got)
}

func TestErrorMessageShape(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 30})
	srv.Inject(m365test.Fault{Kind: m365test.KindUsers, After: 2, Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	var err error
	for _, e := range newSource(t, srv, func(c *m365.Config) { c.PageSize = 10 }).Accounts(context.Background(), sources.Selection{}) {
		err = e
	}
	msg := err.Error()
	t.Log(msg)
	want := "Microsoft 365: customer acme: tenant " + srv.TenantID + ": list users page 3: Graph: GET /v1.0/users: HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
	if !strings.HasPrefix(msg, want) {
		t.Errorf("error\n%s\ndoes not start with\n%s", msg, want)
	}
	if strings.Count(msg, "acme") != 1 || strings.Contains(msg, "skiptoken") {
		t.Errorf("error names the customer more than once or carries the query: %s", msg)
	}
}

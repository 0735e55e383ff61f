package m365_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

const rotated = "Rotated-Pass-2024!"

var longAgo = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// pwTenant is a fake tenant with a cloud user, a hybrid user and a Global
// Administrator, and a Source that logs every request into log.
type pwTenant struct {
	srv                 *m365test.Server
	ten                 *m365test.Tenant
	src                 *m365.Source
	log                 *bytes.Buffer
	user, hybrid, admin string
}

func newPWTenant(t *testing.T, mod ...func(*m365.Config)) *pwTenant {
	t.Helper()
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	ten := srv.Default()
	p := &pwTenant{srv: srv, ten: ten, log: &bytes.Buffer{},
		user:   ten.AddUser(m365test.User{DisplayName: "Cloud Admin", LastPasswordChange: longAgo}),
		hybrid: ten.AddUser(m365test.User{DisplayName: "Hybrid Admin", OnPremisesSyncEnabled: boolp(true), LastPasswordChange: longAgo}),
		admin:  ten.AddUser(m365test.User{DisplayName: "Global Admin", LastPasswordChange: longAgo}),
	}
	ten.ActivateRole(m365test.GlobalAdministrator, "")
	ten.AssignRole(m365test.GlobalAdministrator, p.admin)
	l := logrus.New()
	l.SetOutput(p.log)
	l.SetLevel(logrus.DebugLevel)
	p.src = newSource(t, srv, append([]func(*m365.Config){func(c *m365.Config) { c.Log = l }}, mod...)...)
	return p
}

// noSecret fails when err or the log holds the password.
func (p *pwTenant) noSecret(t *testing.T, err error, pw string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), pw) {
		t.Errorf("error reveals the password: %q", err)
	}
	if strings.Contains(p.log.String(), pw) {
		t.Errorf("log reveals the password")
	}
}

func TestSetPasswordGraph(t *testing.T) {
	p := newPWTenant(t)
	ctx := context.Background()
	before, err := p.src.LastPasswordChange(ctx, p.user)
	if err != nil || !before.Equal(longAgo) {
		t.Fatalf("LastPasswordChange before: %v %v", before, err)
	}
	if err := p.src.SetPassword(ctx, p.user, rotated); err != nil {
		t.Fatal(err)
	}
	if pw, _ := p.ten.Password(p.user); pw != rotated {
		t.Error("Graph holds another password")
	}
	if p.ten.MustChangePassword(p.user) {
		t.Error("the user must change the password at next sign-in")
	}
	after, err := p.src.LastPasswordChange(ctx, p.user)
	if err != nil || !after.After(before) || time.Since(after) > time.Minute {
		t.Errorf("LastPasswordChange after: %v %v", after, err)
	}
	// The administrator too: the fake's app holds Privileged
	// Authentication Administrator by default.
	if err := p.src.SetPassword(ctx, p.admin, rotated); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.log.String(), "PATCH") {
		t.Error("the request was not logged")
	}
	p.noSecret(t, nil, rotated)
}

func TestSetPasswordGraphRefusals(t *testing.T) {
	cases := []struct {
		name  string
		id    string
		pw    string
		setup func(*pwTenant)
		is    error
		fix   string // substring of the message
	}{
		{"admin without the role", "admin", rotated, func(p *pwTenant) { p.ten.SetAppCanResetAdmins(false) }, m365.ErrResetDenied,
			"Privileged Authentication Administrator"},
		{"no permission", "user", rotated, func(p *pwTenant) { p.ten.SetAppCanResetPasswords(false) }, m365.ErrResetDenied,
			"User-PasswordProfile.ReadWrite.All (or User.ReadWrite.All) with admin consent"},
		{"synced from AD", "hybrid", rotated, nil, m365.ErrOnPremisesSynced, "only be rotated in AD"},
		{"missing", "", rotated, nil, m365.ErrUserNotFound, "no such user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPWTenant(t)
			if tc.setup != nil {
				tc.setup(p)
			}
			id := map[string]string{"user": p.user, "admin": p.admin, "hybrid": p.hybrid, "": "00000000-0000-4000-8000-000000000000"}[tc.id]
			err := p.src.SetPassword(context.Background(), id, tc.pw)
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			var me *m365.Error
			if !errors.As(err, &me) || me.Customer != "acme" || me.Op != "set password of user "+id {
				t.Errorf("not an *m365.Error for acme: %#v", err)
			}
			if !strings.Contains(err.Error(), tc.fix) || !strings.HasPrefix(err.Error(), "Microsoft 365: customer acme: tenant ") {
				t.Errorf("error %q lacks %q", err, tc.fix)
			}
			if errors.Is(err, m365.ErrOutcomeUnknown) {
				t.Error("a refusal reported as an unknown outcome")
			}
			p.noSecret(t, err, tc.pw)
			if _, ok := p.ten.Password(id); ok {
				t.Error("a refused reset took effect")
			}
		})
	}
}

func TestSetPasswordGraphPolicy(t *testing.T) {
	p := newPWTenant(t)
	for _, weak := range []string{"onlylowercase", "Ab1!"} {
		err := p.src.SetPassword(context.Background(), p.user, weak)
		var pe *m365.PolicyError
		if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "does not comply with password complexity requirements") {
			t.Fatalf("got %v, want a *PolicyError", err)
		}
		p.noSecret(t, err, weak)
	}
	if _, ok := p.ten.Password(p.user); ok {
		t.Error("a refused password took effect")
	}
}

// A reset whose answer is lost is reported as such, not retried, and
// LastPasswordChange shows that it took.
func TestSetPasswordGraphLostAnswer(t *testing.T) {
	cases := []struct {
		name    string
		fault   m365test.Fault
		applied bool
	}{
		{"server error after the change", m365test.Fault{Kind: m365test.KindUserUpdate, Status: 500, AfterApply: true}, true},
		{"dropped after the change", m365test.Fault{Kind: m365test.KindUserUpdate, Drop: true, AfterApply: true}, true},
		{"unavailable before the change", m365test.Fault{Kind: m365test.KindUserUpdate, Status: 503}, false},
		{"dropped before the change", m365test.Fault{Kind: m365test.KindUserUpdate, Drop: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPWTenant(t)
			ctx := context.Background()
			before, err := p.src.LastPasswordChange(ctx, p.user)
			if err != nil {
				t.Fatal(err)
			}
			p.srv.Inject(tc.fault)
			err = p.src.SetPassword(ctx, p.user, rotated)
			if !errors.Is(err, m365.ErrOutcomeUnknown) {
				t.Fatalf("got %v, want ErrOutcomeUnknown", err)
			}
			p.noSecret(t, err, rotated)
			if n := p.srv.Count(m365test.KindUserUpdate); n != 1 {
				t.Errorf("%d attempts, want exactly 1", n)
			}
			after, err := p.src.LastPasswordChange(ctx, p.user)
			if err != nil {
				t.Fatal(err)
			}
			if took := after.After(before); took != tc.applied {
				t.Errorf("LastPasswordChange %v -> %v: took %v, want %v", before, after, took, tc.applied)
			}
		})
	}
}

func TestSetPasswordGraphRetriesThrottling(t *testing.T) {
	p := newPWTenant(t)
	p.srv.Inject(m365test.Fault{Kind: m365test.KindUserUpdate, Status: 429, RetryAfter: "0", Times: 2})
	if err := p.src.SetPassword(context.Background(), p.user, rotated); err != nil {
		t.Fatal(err)
	}
	if n := p.srv.Count(m365test.KindUserUpdate); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestSetPasswordGraphRenewsARevokedToken(t *testing.T) {
	p := newPWTenant(t)
	ctx := context.Background()
	if _, err := p.src.LastPasswordChange(ctx, p.user); err != nil {
		t.Fatal(err)
	}
	p.srv.RevokeTokens()
	if err := p.src.SetPassword(ctx, p.user, rotated); err != nil {
		t.Fatal(err)
	}
	if n := p.srv.Count(m365test.KindToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestSetPasswordGraphArguments(t *testing.T) {
	p := newPWTenant(t)
	ctx := context.Background()
	for _, c := range []struct{ id, pw string }{{"", rotated}, {p.user, ""}, {p.user, "bad\xffutf8"}} {
		if err := p.src.SetPassword(ctx, c.id, c.pw); err == nil {
			t.Errorf("SetPassword(%q) accepted", c.id)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.src.SetPassword(canceled, p.user, rotated); !errors.Is(err, context.Canceled) || errors.Is(err, m365.ErrOutcomeUnknown) {
		t.Errorf("canceled: %v", err)
	}
	if n := p.srv.Count(m365test.KindUserUpdate); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if _, err := p.src.LastPasswordChange(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, m365.ErrUserNotFound) {
		t.Errorf("LastPasswordChange of a missing user: %v", err)
	}
}

func TestLookupGraph(t *testing.T) {
	p := newPWTenant(t)
	off := p.ten.AddUser(m365test.User{DisplayName: "Former Admin", Disabled: true, LastPasswordChange: longAgo})
	cases := []struct {
		name, id string
		state    m365.UserState
		synced   bool
	}{
		{"enabled", p.user, m365.UserEnabled, false},
		{"synced", p.hybrid, m365.UserEnabled, true},
		{"disabled", off, m365.UserDisabled, false},
		{"missing", "00000000-0000-4000-8000-000000000000", m365.UserMissing, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := p.src.Lookup(context.Background(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state || st.OnPremisesSynced != tc.synced {
				t.Errorf("Lookup = %+v", st)
			}
			if tc.state != m365.UserMissing && (!st.LastPasswordChange.Equal(longAgo) || st.UserPrincipalName == "") {
				t.Errorf("Lookup = %+v", st)
			}
		})
	}
}

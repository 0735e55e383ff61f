package ad_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// pwFixture is a fake DC whose user dave has a known password.
type pwFixture struct {
	dir    *adtest.Directory
	srv    *adtest.Server
	src    *ad.Source
	dave   string // DN
	target ad.PasswordTarget
	clock  *time.Time
}

const (
	oldPassword = "Old-Password-1"
	newPassword = "Rotated-Pass-2024!"
)

func newPWFixture(t *testing.T, opts adtest.Options, mod ...func(*ad.Config)) *pwFixture {
	t.Helper()
	dir := adtest.Generate(11, 0)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := &pwFixture{dir: dir, clock: &at, dave: "CN=Dave Dunn," + adtest.OUAdmins + "," + dir.BaseDN}
	dir.SetClock(func() time.Time { return *f.clock })
	if err := dir.SetUserPassword(f.dave, oldPassword); err != nil {
		t.Fatal(err)
	}
	f.target = ad.PasswordTarget{ObjectGUID: dir.GUID(f.dave), Username: "dave"}
	opts.Directory = dir
	f.srv = adtest.NewServer(t, opts)
	cfg := f.srv.Config("acme")
	for _, m := range mod {
		m(&cfg)
	}
	var err error
	if f.src, err = ad.New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// noSecret fails when err's text holds one of the passwords.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error reveals a password: %q", err)
		}
	}
}

func TestSetPasswordRotates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ldaps bool
	}{{"ldaps", true}, {"starttls", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPWFixture(t, adtest.Options{LDAPS: tc.ldaps})
			ctx := context.Background()
			before, err := f.src.PasswordLastSet(ctx, f.target)
			if err != nil || before.IsZero() {
				t.Fatalf("PasswordLastSet before: %v %v", before, err)
			}
			*f.clock = f.clock.Add(time.Hour)
			if err := f.src.SetPassword(ctx, f.target, newPassword); err != nil {
				t.Fatal(err)
			}
			if pw, _ := f.dir.Password(f.dave); pw != newPassword {
				t.Fatal("the directory holds another password")
			}
			after, err := f.src.PasswordLastSet(ctx, f.target)
			if err != nil || !after.Equal(*f.clock) || !after.After(before) {
				t.Errorf("PasswordLastSet after: %v %v, want %v", after, err, *f.clock)
			}
			for _, c := range []struct {
				pw   string
				want bool
			}{{newPassword, true}, {oldPassword, false}, {"Something-Else-9", false}} {
				got, err := f.src.CheckPassword(ctx, f.target, c.pw)
				if err != nil || got != c.want {
					t.Errorf("CheckPassword: %v %v, want %v", got, err, c.want)
				}
			}
		})
	}
}

func TestSetPasswordByDN(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	byDN := ad.PasswordTarget{DN: f.dave}
	if err := f.src.SetPassword(context.Background(), byDN, newPassword); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.src.CheckPassword(context.Background(), byDN, newPassword); !ok || err != nil {
		t.Fatalf("CheckPassword: %v %v", ok, err)
	}
}

func TestSetPasswordRefusesPlaintext(t *testing.T) {
	f := newPWFixture(t, adtest.Options{}, func(c *ad.Config) { c.StartTLS = false; c.AllowPlaintext = true; c.CAPEM = nil })
	ctx := context.Background()
	// Reads over plaintext are allowed by this configuration...
	if _, err := f.src.Lookup(ctx, f.target); err != nil {
		t.Fatalf("Lookup over plaintext: %v", err)
	}
	f.srv.ResetStats()
	// ...passwords never go over it.
	err := f.src.SetPassword(ctx, f.target, newPassword)
	if !errors.Is(err, ad.ErrPlaintext) {
		t.Fatalf("SetPassword over plaintext: %v, want ErrPlaintext", err)
	}
	for _, want := range []string{"AD: customer acme: set password of \"dave\"", "refusing to send a password over a connection without TLS", "use ldaps:// or set start_tls"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noSecret(t, err, newPassword)
	ok, err := f.src.CheckPassword(ctx, f.target, oldPassword)
	if ok || !errors.Is(err, ad.ErrPlaintext) {
		t.Fatalf("CheckPassword over plaintext: %v %v, want ErrPlaintext", ok, err)
	}
	if st := f.srv.Stats(); st.Binds != 0 || st.Modifies != 0 || st.Searches != 0 {
		t.Errorf("something was sent: %+v", st)
	}
	if pw, _ := f.dir.Password(f.dave); pw != oldPassword {
		t.Error("the password changed")
	}
}

func TestSetPasswordPolicyRefusal(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	cases := []struct{ name, pw, reason string }{
		{"complexity", "onlylowercase", "the password does not meet the complexity criteria"},
		{"account name", "Dave-Is-Admin-1", "the password does not meet the complexity criteria"},
		{"length", "Ab1!", "the password is too short. It should be equal or longer than 7 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.src.SetPassword(context.Background(), f.target, tc.pw)
			var pe *ad.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *PolicyError", err)
			}
			if pe.Reason != tc.reason || pe.ResultCode != 19 || !strings.Contains(pe.Diagnostic, "0000052D") {
				t.Errorf("PolicyError %+v", pe)
			}
			if want := "AD: customer acme: set password of \"dave\" (" + f.dave + "): the domain's password policy refused the password: " + tc.reason; err.Error() != want {
				t.Errorf("error\n %q\nwant\n %q", err, want)
			}
			noSecret(t, err, tc.pw)
			if errors.Is(err, ad.ErrOutcomeUnknown) {
				t.Error("a refusal reported as an unknown outcome")
			}
			if pw, _ := f.dir.Password(f.dave); pw != oldPassword {
				t.Error("the password changed")
			}
		})
	}
}

func TestSetPasswordResetDenied(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	f.srv.FailPasswordChanges(adtest.DenyReset)
	err := f.src.SetPassword(context.Background(), f.target, newPassword)
	if !errors.Is(err, ad.ErrResetDenied) {
		t.Fatalf("got %v, want ErrResetDenied", err)
	}
	for _, want := range []string{"LDAP result 50", `Reset Password`, "AdminSDHolder", f.srv.BindDN()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noSecret(t, err, newPassword)
	if pw, _ := f.dir.Password(f.dave); pw != oldPassword {
		t.Error("the password changed")
	}
}

// A crash between the change and its answer: SetPassword cannot know, and
// says so; CheckPassword finds out that the new password took.
func TestSetPasswordDropAfterApply(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	f.srv.FailPasswordChanges(adtest.DropAfterApply)
	err := f.src.SetPassword(context.Background(), f.target, newPassword)
	if !errors.Is(err, ad.ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrOutcomeUnknown", err)
	}
	noSecret(t, err, newPassword)
	ctx := context.Background()
	if ok, err := f.src.CheckPassword(ctx, f.target, newPassword); !ok || err != nil {
		t.Fatalf("CheckPassword(new) after the drop: %v %v, want true", ok, err)
	}
	if ok, err := f.src.CheckPassword(ctx, f.target, oldPassword); ok || err != nil {
		t.Fatalf("CheckPassword(old) after the drop: %v %v, want false", ok, err)
	}
}

func TestSetPasswordMissingAndNotAPerson(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	ctx := context.Background()
	gone := ad.PasswordTarget{ObjectGUID: "00000000-0000-4000-8000-000000000001", Username: "ghost"}
	if err := f.src.SetPassword(ctx, gone, newPassword); !errors.Is(err, ad.ErrNotFound) || !strings.Contains(err.Error(), `"ghost" (objectGUID 00000000-0000-4000-8000-000000000001)`) {
		t.Errorf("SetPassword of a missing account: %v", err)
	}
	if _, err := f.src.PasswordLastSet(ctx, gone); !errors.Is(err, ad.ErrNotFound) {
		t.Errorf("PasswordLastSet of a missing account: %v", err)
	}
	if _, err := f.src.CheckPassword(ctx, gone, newPassword); !errors.Is(err, ad.ErrNotFound) {
		t.Errorf("CheckPassword of a missing account: %v", err)
	}
	if err := f.src.SetPassword(ctx, ad.PasswordTarget{DN: "CN=Nobody," + f.dir.BaseDN}, newPassword); !errors.Is(err, ad.ErrNotFound) {
		t.Errorf("SetPassword by a missing DN: %v", err)
	}
	if err := f.src.SetPassword(ctx, ad.PasswordTarget{ObjectGUID: "not-a-guid"}, newPassword); err == nil {
		t.Error("a malformed GUID was accepted")
	}
	ws := "CN=" + adtest.FixtureComputer + "," + adtest.OUSales + "," + f.dir.BaseDN
	err := f.src.SetPassword(ctx, ad.PasswordTarget{ObjectGUID: f.dir.GUID(ws)}, newPassword)
	if err == nil || !strings.Contains(err.Error(), "computer") {
		t.Errorf("SetPassword of a computer: %v", err)
	}
	group := adtest.GroupTier2Ops + "," + f.dir.BaseDN
	if err := f.src.SetPassword(ctx, ad.PasswordTarget{DN: group}, newPassword); err == nil || !strings.Contains(err.Error(), "not a user account") {
		t.Errorf("SetPassword of a group: %v", err)
	}
	if err := f.src.SetPassword(ctx, f.target, ""); err == nil {
		t.Error("an empty password was accepted")
	}
	if _, err := f.src.CheckPassword(ctx, f.target, ""); err == nil {
		t.Error("an empty password was checked (an anonymous bind)")
	}
	if st := f.srv.Stats(); st.Modifies != 0 {
		t.Errorf("%d modifies sent", st.Modifies)
	}
}

func TestLookup(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	grace := "CN=Grace Green," + adtest.OUAdmins + "," + f.dir.BaseDN
	ctx := context.Background()
	cases := []struct {
		name   string
		target ad.PasswordTarget
		state  ad.AccountState
		user   string
	}{
		{"enabled by GUID", f.target, ad.AccountEnabled, "dave"},
		{"enabled by DN", ad.PasswordTarget{DN: f.dave}, ad.AccountEnabled, "dave"},
		{"disabled", ad.PasswordTarget{ObjectGUID: f.dir.GUID(grace)}, ad.AccountDisabled, "grace"},
		{"missing", ad.PasswordTarget{ObjectGUID: "00000000-0000-4000-8000-000000000001"}, ad.AccountMissing, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := f.src.Lookup(ctx, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state || st.Username != tc.user {
				t.Errorf("Lookup = %+v", st)
			}
			if tc.state == ad.AccountEnabled && (st.DN != f.dave || st.ObjectGUID != f.target.ObjectGUID || st.DisplayName != "Dave Dunn" || st.PasswordLastSet.IsZero()) {
				t.Errorf("Lookup = %+v", st)
			}
		})
	}
	// pwdLastSet 0: must change at next logon.
	if err := f.dir.Set(f.dave, "pwdLastSet", "0"); err != nil {
		t.Fatal(err)
	}
	st, err := f.src.Lookup(ctx, f.target)
	if err != nil || !st.MustChangePassword || !st.PasswordLastSet.IsZero() {
		t.Errorf("pwdLastSet 0: %+v %v", st, err)
	}
}

// AD reports a disabled account only to the right password.
func TestCheckPasswordDisabledAccount(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	grace := "CN=Grace Green," + adtest.OUAdmins + "," + f.dir.BaseDN
	if err := f.dir.SetUserPassword(grace, oldPassword); err != nil {
		t.Fatal(err)
	}
	target := ad.PasswordTarget{ObjectGUID: f.dir.GUID(grace)}
	for _, c := range []struct {
		pw   string
		want bool
	}{{oldPassword, true}, {newPassword, false}} {
		got, err := f.src.CheckPassword(context.Background(), target, c.pw)
		if err != nil || got != c.want {
			t.Errorf("CheckPassword: %v %v, want %v", got, err, c.want)
		}
	}
}

func TestSetPasswordHonoursContext(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.src.SetPassword(ctx, f.target, newPassword)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if pw, _ := f.dir.Password(f.dave); pw != oldPassword {
		t.Error("the password changed")
	}
}

// TestPasswordExchangesReuseIdleConnections: the lookups and changes of a
// rotation share the source's few idle connections, bound once; a
// connection the DC dropped meanwhile costs a new dial, not an error; and
// none stays open past its idle time.
func TestPasswordExchangesReuseIdleConnections(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	ctx := context.Background()
	f.srv.ResetStats()
	for range 3 {
		if st, err := f.src.Lookup(ctx, f.target); err != nil || st.State != ad.AccountEnabled {
			t.Fatalf("Lookup: %+v %v", st, err)
		}
	}
	if err := f.src.SetPassword(ctx, f.target, newPassword); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.src.CheckPassword(ctx, f.target, newPassword); !ok || err != nil {
		t.Fatalf("CheckPassword: %v %v", ok, err)
	}
	// CheckPassword binds as the account on a connection of its own,
	// which is never kept: one bind as the bind account, one as dave.
	if st := f.srv.Stats(); st.Binds != 2 || st.PasswordChanges != 1 {
		t.Errorf("binds %d, password changes %d; want 2 and 1", st.Binds, st.PasswordChanges)
	}
	if n := f.src.IdleConns(); n != 1 {
		t.Errorf("%d idle connections, want 1", n)
	}

	// Dropped by the DC (a restart, an idle-timeout firewall): noticed
	// when taken, or by the lookup's search, which asks again.
	for i := range 5 {
		f.srv.DropConnections()
		if st, err := f.src.Lookup(ctx, f.target); err != nil || st.State != ad.AccountEnabled {
			t.Fatalf("Lookup %d after the DC dropped the idle connection: %+v %v", i, st, err)
		}
	}

	// At once, more than are kept: at most maxIdle stay.
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		wg.Go(func() {
			_, err := f.src.Lookup(ctx, f.target)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.src.IdleConns(); n < 1 || n > 4 {
		t.Errorf("%d idle connections after 12 lookups at once, want 1 to 4", n)
	}

	// Past their idle time they are closed.
	ad.SetIdleFor(t, 10*time.Millisecond)
	src, err := ad.New(f.srv.Config("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Lookup(ctx, f.target); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for src.IdleConns() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := src.IdleConns(); n != 0 {
		t.Errorf("%d connections still idle past their idle time", n)
	}
}

// TestRefusedOrCancelledExchangesKeepNoConnection: only an exchange that
// ended cleanly leaves its connection for the next.
func TestRefusedOrCancelledExchangesKeepNoConnection(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	f.srv.FailPasswordChanges(adtest.DenyReset)
	if err := f.src.SetPassword(context.Background(), f.target, newPassword); err == nil {
		t.Fatal("a refused change succeeded")
	}
	if n := f.src.IdleConns(); n != 0 {
		t.Errorf("%d idle connections after a refused change, want 0", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.src.Lookup(ctx, f.target); err == nil {
		t.Fatal("a lookup with an ended context succeeded")
	}
	if n := f.src.IdleConns(); n != 0 {
		t.Errorf("%d idle connections after a cancelled lookup, want 0", n)
	}
}

// TestCloseIdleConnections closes what a source keeps for its next
// exchange at once: the next exchange dials again.
func TestCloseIdleConnections(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	if _, err := f.src.Lookup(context.Background(), f.target); err != nil {
		t.Fatal(err)
	}
	if n := f.src.IdleConns(); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
	f.src.CloseIdleConnections()
	if n := f.src.IdleConns(); n != 0 {
		t.Errorf("%d idle connections after CloseIdleConnections", n)
	}
	f.srv.ResetStats()
	if _, err := f.src.Lookup(context.Background(), f.target); err != nil {
		t.Fatal(err)
	}
	if st := f.srv.Stats(); st.Binds != 1 {
		t.Errorf("%d binds after the idle connections were closed, want 1 (a new connection)", st.Binds)
	}
}

// A password change whose fence fails once the account was looked up (its
// holder's lease ran out meanwhile) is never sent: the directory keeps the
// old password, and the error says nothing changed rather than that the
// outcome is unknown.
func TestAFencedSetPasswordIsNotSent(t *testing.T) {
	f := newPWFixture(t, adtest.Options{LDAPS: true})
	lost := errors.New("the lease ran out")
	ctx := fence.With(context.Background(), func() error { return lost })
	err := f.src.SetPassword(ctx, f.target, newPassword)
	if !errors.Is(err, fence.ErrNotSent) || !errors.Is(err, lost) || errors.Is(err, ad.ErrOutcomeUnknown) {
		t.Fatalf("err %v; want not sent, for the fence's reason", err)
	}
	if pw, _ := f.dir.Password(f.dave); pw != oldPassword {
		t.Fatal("the directory's password changed")
	}
}

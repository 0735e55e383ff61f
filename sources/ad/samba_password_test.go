package ad_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/internal/sambatest"
	"github.com/msp-tools/autoimport/sources/ad"
)

// Password rotation against Samba: the same skip and fail rules as
// samba_test.go. Each test makes its own administrator
// (sambatest.NewRotationUser), with a password policy of its own.

// targetOf is how the password calls address u.
func targetOf(t *testing.T, u sambatest.RotationUser) ad.PasswordTarget {
	t.Helper()
	guid, err := ad.GUIDString(u.ObjectGUID)
	if err != nil {
		t.Fatal(err)
	}
	return ad.PasswordTarget{ObjectGUID: guid, Username: u.Sam}
}

func TestSambaRotateAdminPassword(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	u := sambatest.NewRotationUser(t, f, sambatest.AdminConn(t, f))
	target := targetOf(t, u)
	src := sambaSource(t, f)
	ctx := context.Background()

	st, err := src.Lookup(ctx, target)
	if err != nil || st.State != ad.AccountEnabled || !strings.EqualFold(st.DN, u.DN) || st.Username != u.Sam {
		t.Fatalf("Lookup: %+v %v", st, err)
	}
	before, err := src.PasswordLastSet(ctx, target)
	if err != nil || before.IsZero() {
		t.Fatalf("PasswordLastSet: %v %v", before, err)
	}
	if ok, err := src.CheckPassword(ctx, target, u.Password); !ok || err != nil {
		t.Fatalf("CheckPassword with the initial password: %v %v", ok, err)
	}

	rotated, err := password.Generate(password.DefaultLength, u.Sam, u.Display)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SetPassword(ctx, target, rotated); err != nil {
		t.Fatalf("SetPassword over LDAPS: %v", err)
	}
	if ok, err := src.CheckPassword(ctx, target, rotated); !ok || err != nil {
		t.Errorf("the new password does not bind: %v %v", ok, err)
	}
	if ok, err := src.CheckPassword(ctx, target, u.Password); ok || err != nil {
		t.Errorf("the old password still binds: %v %v", ok, err)
	}
	after, err := src.PasswordLastSet(ctx, target)
	if err != nil || !after.After(before) {
		t.Errorf("pwdLastSet did not move forward: %v -> %v (%v)", before, after, err)
	}
	if d := time.Since(after); d < -time.Minute || d > 10*time.Minute {
		t.Errorf("pwdLastSet %v is not about now", after)
	}

	for _, weak := range []struct{ name, pw, reason string }{
		{"complexity", "alllowercase12", "the password does not meet the complexity criteria"},
		{"length", "Ab1!", "the password is too short. It should be equal or longer than 7 characters"},
	} {
		err := src.SetPassword(ctx, target, weak.pw)
		var pe *ad.PolicyError
		if !errors.As(err, &pe) || pe.ResultCode != ldap.LDAPResultConstraintViolation || pe.Reason != weak.reason {
			t.Errorf("%s: got %v, want a PolicyError saying %q", weak.name, err, weak.reason)
			continue
		}
		if !strings.Contains(err.Error(), "customer samba: set password of \""+u.Sam+"\"") || strings.Contains(err.Error(), weak.pw) {
			t.Errorf("%s: error %q", weak.name, err)
		}
	}
	if ok, err := src.CheckPassword(ctx, target, rotated); !ok || err != nil {
		t.Errorf("a refused password changed the account: %v %v", ok, err)
	}

	if strings.HasPrefix(f.URL, "ldaps://127.0.0.1") {
		tlsSrc := sambaSource(t, f, func(c *ad.Config) { c.URL = "ldap://127.0.0.1:389"; c.StartTLS = true })
		again, err := password.Generate(password.MinLength, u.Sam, u.Display)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlsSrc.SetPassword(ctx, target, again); err != nil {
			t.Fatalf("SetPassword over StartTLS: %v", err)
		}
		if ok, err := tlsSrc.CheckPassword(ctx, target, again); !ok || err != nil {
			t.Errorf("the password set over StartTLS does not bind: %v %v", ok, err)
		}
	}

	gone := ad.PasswordTarget{ObjectGUID: "00000000-0000-4000-8000-00000000dead", Username: "ghost"}
	if err := src.SetPassword(ctx, gone, rotated); !errors.Is(err, ad.ErrNotFound) {
		t.Errorf("SetPassword of an unknown objectGUID: %v", err)
	}
	if st, err := src.Lookup(ctx, gone); err != nil || st.State != ad.AccountMissing {
		t.Errorf("Lookup of an unknown objectGUID: %+v %v", st, err)
	}
}

// countingProxy forwards TCP connections to target and counts them.
func countingProxy(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(b, c)
			go pipe(c, b)
		}
	}()
	return l.Addr().String(), &n
}

// Samba with the test setting takes a password over plain LDAP (Windows
// would not), so only the client can keep it off the wire.
func TestSambaSetPasswordRefusesPlaintext(t *testing.T) {
	t.Parallel()
	f := sambatest.Need(t)
	if !strings.HasPrefix(f.URL, "ldaps://127.0.0.1") {
		t.Skip("the plain-LDAP check needs the script's loopback DC")
	}
	u := sambatest.NewRotationUser(t, f, sambatest.AdminConn(t, f))
	target := targetOf(t, u)
	ctx := context.Background()

	// The control: Samba accepts a reset over plain LDAP.
	plain, err := ldap.DialURL("ldap://127.0.0.1:389")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Bind(f.BindDN, f.Password); err != nil {
		t.Fatal(err)
	}
	viaPlain, err := password.Generate(password.MinLength, u.Sam, u.Display)
	if err != nil {
		t.Fatal(err)
	}
	req := ldap.NewModifyRequest(u.DN, nil)
	req.Replace("unicodePwd", []string{sambatest.UnicodePwd(t, viaPlain)})
	if err := plain.Modify(req); err != nil {
		t.Fatalf("Samba refused a reset over plain LDAP, so this test proves nothing: %v", err)
	}

	addr, conns := countingProxy(t, "127.0.0.1:389")
	src := sambaSource(t, f, func(c *ad.Config) { c.URL = "ldap://" + addr; c.AllowPlaintext = true; c.CAFile = "" })
	if _, err := src.Lookup(ctx, target); err != nil {
		t.Fatalf("a read over plain LDAP (allow_plaintext): %v", err)
	}
	before := conns.Load()
	refused, err := password.Generate(password.MinLength, u.Sam, u.Display)
	if err != nil {
		t.Fatal(err)
	}
	err = src.SetPassword(ctx, target, refused)
	if !errors.Is(err, ad.ErrPlaintext) || strings.Contains(err.Error(), refused) {
		t.Fatalf("SetPassword over plain LDAP: %v, want ErrPlaintext", err)
	}
	if ok, err := src.CheckPassword(ctx, target, viaPlain); ok || !errors.Is(err, ad.ErrPlaintext) {
		t.Fatalf("CheckPassword over plain LDAP: %v %v, want ErrPlaintext", ok, err)
	}
	if n := conns.Load() - before; n != 0 {
		t.Errorf("%d connections opened for the refused calls", n)
	}
	tlsSrc := sambaSource(t, f)
	if ok, err := tlsSrc.CheckPassword(ctx, target, viaPlain); !ok || err != nil {
		t.Errorf("the password set before is gone: %v %v", ok, err)
	}
	if ok, err := tlsSrc.CheckPassword(ctx, target, refused); ok || err != nil {
		t.Errorf("the refused password took: %v %v", ok, err)
	}
}

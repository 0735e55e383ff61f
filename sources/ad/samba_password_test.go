package ad_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/text/encoding/unicode"

	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/sources/ad"
)

// Password rotation against Samba: the same skip and fail rules as
// samba_test.go. Each test makes its own administrator in OU=Rotation Tests
// and, so that the shared test domain keeps its relaxed policy, a
// fine-grained password policy (minimum length 7, complexity on, the
// defaults of a new domain) that applies to that user alone. Both are
// deleted at the end.

const rotationOU = "OU=Rotation Tests"

// sambaAdmin binds to Samba as the domain's administrator over LDAPS.
func sambaAdmin(t *testing.T, f sambaFacts) *ldap.Conn {
	t.Helper()
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := ldap.DialURL(f.url, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetTimeout(30 * time.Second)
	if err := c.Bind(f.bindDN, f.password); err != nil {
		t.Fatal(err)
	}
	return c
}

func unicodePwd(t *testing.T, pw string) string {
	t.Helper()
	v, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(`"` + pw + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rotationUser is an administrator made for one test.
type rotationUser struct {
	dn, sam, display, password string
	target                     ad.PasswordTarget
}

// newRotationUser adds an enabled member of Domain Admins with a known
// password and a password policy of its own, and removes both when the
// test ends.
func newRotationUser(t *testing.T, f sambaFacts, c *ldap.Conn) rotationUser {
	t.Helper()
	ou := rotationOU + "," + f.baseDN
	add := ldap.NewAddRequest(ou, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(add); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		t.Fatal(err)
	}
	removeStaleRotationUsers(t, c, ou)

	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	u := rotationUser{sam: "rot-" + suffix, display: "Rotation Admin " + suffix}
	u.dn = "CN=" + u.sam + "," + ou
	var err error
	if u.password, err = password.Generate(password.MinLength, u.sam, u.display); err != nil {
		t.Fatal(err)
	}
	add = ldap.NewAddRequest(u.dn, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{u.sam})
	add.Attribute("userPrincipalName", []string{u.sam + "@corp.example.test"})
	add.Attribute("displayName", []string{u.display})
	add.Attribute("unicodePwd", []string{unicodePwd(t, u.password)})
	add.Attribute("userAccountControl", []string{"512"})
	if err := c.Add(add); err != nil {
		t.Fatalf("add %s: %v", u.dn, err)
	}
	t.Cleanup(func() {
		if err := c.Del(ldap.NewDelRequest(u.dn, nil)); err != nil {
			t.Errorf("delete %s: %v", u.dn, err)
		}
	})
	mod := ldap.NewModifyRequest("CN=Domain Admins,CN=Users,"+f.baseDN, nil)
	mod.Add("member", []string{u.dn})
	if err := c.Modify(mod); err != nil {
		t.Fatalf("add %s to Domain Admins: %v", u.sam, err)
	}

	pso := "CN=autoimport-" + u.sam + ",CN=Password Settings Container,CN=System," + f.baseDN
	add = ldap.NewAddRequest(pso, nil)
	for _, a := range [][2]string{
		{"objectClass", "msDS-PasswordSettings"},
		{"msDS-PasswordSettingsPrecedence", "10"},
		{"msDS-PasswordReversibleEncryptionEnabled", "FALSE"},
		{"msDS-PasswordHistoryLength", "0"},
		{"msDS-PasswordComplexityEnabled", "TRUE"},
		{"msDS-MinimumPasswordLength", "7"},
		{"msDS-MinimumPasswordAge", "0"},
		{"msDS-MaximumPasswordAge", "-9223372036854775808"},
		{"msDS-LockoutThreshold", "0"},
		{"msDS-LockoutObservationWindow", "-18000000000"},
		{"msDS-LockoutDuration", "-18000000000"},
		{"msDS-PSOAppliesTo", u.dn},
	} {
		add.Attribute(a[0], []string{a[1]})
	}
	if err := c.Add(add); err != nil {
		t.Fatalf("add the password policy of %s: %v", u.sam, err)
	}
	t.Cleanup(func() {
		if err := c.Del(ldap.NewDelRequest(pso, nil)); err != nil {
			t.Errorf("delete %s: %v", pso, err)
		}
	})

	res, err := c.Search(ldap.NewSearchRequest(u.dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s: %v", u.dn, err)
	}
	guid, err := ad.GUIDString(res.Entries[0].GetRawAttributeValue("objectGUID"))
	if err != nil {
		t.Fatal(err)
	}
	u.target = ad.PasswordTarget{ObjectGUID: guid, Username: u.sam}
	return u
}

// removeStaleRotationUsers deletes what an interrupted earlier run left
// behind (older than an hour, so a concurrent run keeps its own).
func removeStaleRotationUsers(t *testing.T, c *ldap.Conn, ou string) {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(ou, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=user)", []string{"whenCreated", "sAMAccountName"}, nil))
	if err != nil {
		return
	}
	for _, e := range res.Entries {
		created, err := time.Parse("20060102150405.0Z", e.GetAttributeValue("whenCreated"))
		if err != nil || time.Since(created) < time.Hour {
			continue
		}
		_ = c.Del(ldap.NewDelRequest(e.DN, nil))
		_ = c.Del(ldap.NewDelRequest("CN=autoimport-"+e.GetAttributeValue("sAMAccountName")+",CN=Password Settings Container,CN=System,"+strings.SplitN(ou, ",", 2)[1], nil))
	}
}

func TestSambaRotateAdminPassword(t *testing.T) {
	t.Parallel()
	f := needSamba(t)
	u := newRotationUser(t, f, sambaAdmin(t, f))
	src := sambaSource(t, f)
	ctx := context.Background()

	st, err := src.Lookup(ctx, u.target)
	if err != nil || st.State != ad.AccountEnabled || !strings.EqualFold(st.DN, u.dn) || st.Username != u.sam {
		t.Fatalf("Lookup: %+v %v", st, err)
	}
	before, err := src.PasswordLastSet(ctx, u.target)
	if err != nil || before.IsZero() {
		t.Fatalf("PasswordLastSet: %v %v", before, err)
	}
	if ok, err := src.CheckPassword(ctx, u.target, u.password); !ok || err != nil {
		t.Fatalf("CheckPassword with the initial password: %v %v", ok, err)
	}

	rotated, err := password.Generate(password.DefaultLength, u.sam, u.display)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SetPassword(ctx, u.target, rotated); err != nil {
		t.Fatalf("SetPassword over LDAPS: %v", err)
	}
	if ok, err := src.CheckPassword(ctx, u.target, rotated); !ok || err != nil {
		t.Errorf("the new password does not bind: %v %v", ok, err)
	}
	if ok, err := src.CheckPassword(ctx, u.target, u.password); ok || err != nil {
		t.Errorf("the old password still binds: %v %v", ok, err)
	}
	after, err := src.PasswordLastSet(ctx, u.target)
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
		err := src.SetPassword(ctx, u.target, weak.pw)
		var pe *ad.PolicyError
		if !errors.As(err, &pe) || pe.ResultCode != ldap.LDAPResultConstraintViolation || pe.Reason != weak.reason {
			t.Errorf("%s: got %v, want a PolicyError saying %q", weak.name, err, weak.reason)
			continue
		}
		if !strings.Contains(err.Error(), "customer samba: set password of \""+u.sam+"\"") || strings.Contains(err.Error(), weak.pw) {
			t.Errorf("%s: error %q", weak.name, err)
		}
	}
	if ok, err := src.CheckPassword(ctx, u.target, rotated); !ok || err != nil {
		t.Errorf("a refused password changed the account: %v %v", ok, err)
	}

	if strings.HasPrefix(f.url, "ldaps://127.0.0.1") {
		tlsSrc := sambaSource(t, f, func(c *ad.Config) { c.URL = "ldap://127.0.0.1:389"; c.StartTLS = true })
		again, err := password.Generate(password.MinLength, u.sam, u.display)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlsSrc.SetPassword(ctx, u.target, again); err != nil {
			t.Fatalf("SetPassword over StartTLS: %v", err)
		}
		if ok, err := tlsSrc.CheckPassword(ctx, u.target, again); !ok || err != nil {
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
	f := needSamba(t)
	if !strings.HasPrefix(f.url, "ldaps://127.0.0.1") {
		t.Skip("the plain-LDAP check needs the script's loopback DC")
	}
	u := newRotationUser(t, f, sambaAdmin(t, f))
	ctx := context.Background()

	// The control: Samba accepts a reset over plain LDAP.
	plain, err := ldap.DialURL("ldap://127.0.0.1:389")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Bind(f.bindDN, f.password); err != nil {
		t.Fatal(err)
	}
	viaPlain, err := password.Generate(password.MinLength, u.sam, u.display)
	if err != nil {
		t.Fatal(err)
	}
	req := ldap.NewModifyRequest(u.dn, nil)
	req.Replace("unicodePwd", []string{unicodePwd(t, viaPlain)})
	if err := plain.Modify(req); err != nil {
		t.Fatalf("Samba refused a reset over plain LDAP, so this test proves nothing: %v", err)
	}

	addr, conns := countingProxy(t, "127.0.0.1:389")
	src := sambaSource(t, f, func(c *ad.Config) { c.URL = "ldap://" + addr; c.AllowPlaintext = true; c.CAFile = "" })
	if _, err := src.Lookup(ctx, u.target); err != nil {
		t.Fatalf("a read over plain LDAP (allow_plaintext): %v", err)
	}
	before := conns.Load()
	refused, err := password.Generate(password.MinLength, u.sam, u.display)
	if err != nil {
		t.Fatal(err)
	}
	err = src.SetPassword(ctx, u.target, refused)
	if !errors.Is(err, ad.ErrPlaintext) || strings.Contains(err.Error(), refused) {
		t.Fatalf("SetPassword over plain LDAP: %v, want ErrPlaintext", err)
	}
	if ok, err := src.CheckPassword(ctx, u.target, viaPlain); ok || !errors.Is(err, ad.ErrPlaintext) {
		t.Fatalf("CheckPassword over plain LDAP: %v %v, want ErrPlaintext", ok, err)
	}
	if n := conns.Load() - before; n != 0 {
		t.Errorf("%d connections opened for the refused calls", n)
	}
	tlsSrc := sambaSource(t, f)
	if ok, err := tlsSrc.CheckPassword(ctx, u.target, viaPlain); !ok || err != nil {
		t.Errorf("the password set before is gone: %v %v", ok, err)
	}
	if ok, err := tlsSrc.CheckPassword(ctx, u.target, refused); ok || err != nil {
		t.Errorf("the refused password took: %v %v", ok, err)
	}
}

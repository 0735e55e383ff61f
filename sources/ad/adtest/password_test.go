package adtest

import (
	"crypto/tls"
	"crypto/x509"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/text/encoding/unicode"

	"github.com/msp-tools/autoimport/sources/ad"
)

// Fixture users' DNs relative to BaseDN.
const (
	daveRDN  = "CN=Dave Dunn," + OUAdmins
	graceRDN = "CN=Grace Green," + OUAdmins
)

func quoted(t *testing.T, pw string) string {
	t.Helper()
	v, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(`"` + pw + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func resetReq(dn, value string) *ldap.ModifyRequest {
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("unicodePwd", []string{value})
	return req
}

func startTLS(t *testing.T, s *Server, c *ldap.Conn) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
}

func canBind(t *testing.T, s *Server, dn, pw string) bool {
	t.Helper()
	c := dial(t, s, false)
	err := c.Bind(dn, pw)
	if err != nil && resultCode(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("bind: %v", err)
	}
	return err == nil
}

func pwdLastSet(t *testing.T, d *Directory, dn string) int64 {
	t.Helper()
	attrs, _ := d.Lookup(dn)
	if len(attrs["pwdLastSet"]) == 0 {
		return 0
	}
	v, err := strconv.ParseInt(attrs["pwdLastSet"][0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPasswordResetNeedsTLS(t *testing.T) {
	d := Generate(1, 0)
	dave := daveRDN + "," + d.BaseDN
	if err := d.SetUserPassword(dave, "Old-Password-1"); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Directory: d})

	plain := dial(t, s, true)
	err := plain.Modify(resetReq(dave, quoted(t, "New-Password-2")))
	if resultCode(err) != ldap.LDAPResultUnwillingToPerform || !strings.Contains(err.Error(), "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)") {
		t.Fatalf("reset over plain LDAP: %v, want 53 with 0000001F", err)
	}
	if pw, _ := d.Password(dave); pw != "Old-Password-1" {
		t.Fatal("the password changed over plain LDAP")
	}

	c := dial(t, s, false)
	startTLS(t, s, c)
	if err := c.Bind(s.BindDN(), s.Password()); err != nil {
		t.Fatal(err)
	}
	if err := c.Modify(resetReq(dave, quoted(t, "New-Password-2"))); err != nil {
		t.Fatalf("reset after StartTLS: %v", err)
	}
	if pw, _ := d.Password(dave); pw != "New-Password-2" {
		t.Fatal("the password did not change after StartTLS")
	}
	st := s.Stats()
	if st.Modifies != 2 || st.PasswordChanges != 1 || st.PasswordRefusals != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPasswordResetOverLDAPSAndBinds(t *testing.T) {
	d := Generate(1, 0)
	dave := daveRDN + "," + d.BaseDN
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d.SetClock(func() time.Time { return at })
	if err := d.SetUserPassword(dave, "Old-Password-1"); err != nil {
		t.Fatal(err)
	}
	before := pwdLastSet(t, d, dave)
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	if !canBind(t, s, dave, "Old-Password-1") {
		t.Fatal("the seeded password does not bind")
	}
	at = at.Add(time.Hour)
	c := dial(t, s, true)
	if err := c.Modify(resetReq(dave, quoted(t, "Brand-New-Pass-3"))); err != nil {
		t.Fatal(err)
	}
	if got := pwdLastSet(t, d, dave); got != ad.TimeToFiletime(at) || got <= before {
		t.Errorf("pwdLastSet %d, want %d (after %d)", got, ad.TimeToFiletime(at), before)
	}
	if !canBind(t, s, dave, "Brand-New-Pass-3") {
		t.Error("the new password does not bind")
	}
	if canBind(t, s, dave, "Old-Password-1") {
		t.Error("the old password still binds")
	}
	for _, name := range []string{"dave@corp.example.test", `CORP\dave`, "dave"} {
		if !canBind(t, s, name, "Brand-New-Pass-3") {
			t.Errorf("bind as %q failed", name)
		}
	}
}

func TestPasswordResetRefusals(t *testing.T) {
	d := Generate(1, 0)
	dave := daveRDN + "," + d.BaseDN
	if err := d.SetUserPassword(dave, "Old-Password-1"); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	cases := []struct {
		name  string
		dn    string
		value string
		code  uint16
		diag  string
	}{
		{"too short", dave, quoted(t, "Ab1!x"), ldap.LDAPResultConstraintViolation,
			"0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!"},
		{"two categories", dave, quoted(t, "onlylower123"), ldap.LDAPResultConstraintViolation,
			"0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!"},
		{"contains the sAMAccountName", dave, quoted(t, "My-DAVE-pass-9"), ldap.LDAPResultConstraintViolation, "does not meet the complexity criteria"},
		{"contains a display-name token", dave, quoted(t, "Xx-dunn-42-yy"), ldap.LDAPResultConstraintViolation, "does not meet the complexity criteria"},
		{"not in quotes", dave, "New-Password-2", ldap.LDAPResultUnwillingToPerform, "0000001F"},
		{"odd length", dave, quoted(t, "New-Password-2") + "x", ldap.LDAPResultUnwillingToPerform, "0000001F"},
		{"no such object", "CN=Nobody," + OUAdmins + "," + d.BaseDN, quoted(t, "New-Password-2"), ldap.LDAPResultNoSuchObject, "NO_OBJECT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s, true)
			err := c.Modify(resetReq(tc.dn, tc.value))
			if resultCode(err) != tc.code || !strings.Contains(err.Error(), tc.diag) {
				t.Fatalf("got %v, want %d with %q", err, tc.code, tc.diag)
			}
			if pw, _ := d.Password(dave); pw != "Old-Password-1" {
				t.Fatal("a refused change took effect")
			}
		})
	}

	t.Run("other modifications", func(t *testing.T) {
		c := dial(t, s, true)
		req := ldap.NewModifyRequest(dave, nil)
		req.Replace("description", []string{"x"})
		if err := c.Modify(req); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not bound", func(t *testing.T) {
		c := dial(t, s, false)
		if err := c.Modify(resetReq(dave, quoted(t, "New-Password-2"))); resultCode(err) != ldap.LDAPResultOperationsError {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a user may not reset", func(t *testing.T) {
		c := dial(t, s, false)
		if err := c.Bind(dave, "Old-Password-1"); err != nil {
			t.Fatal(err)
		}
		if err := c.Modify(resetReq(dave, quoted(t, "New-Password-2"))); resultCode(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("policy can be relaxed", func(t *testing.T) {
		d.SetPasswordPolicy(PasswordPolicy{})
		t.Cleanup(func() { d.SetPasswordPolicy(DefaultPasswordPolicy) })
		c := dial(t, s, true)
		if err := c.Modify(resetReq(dave, quoted(t, "x"))); err != nil {
			t.Fatal(err)
		}
		if err := d.SetUserPassword(dave, "Old-Password-1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPasswordFaults(t *testing.T) {
	d := Generate(1, 0)
	dave := daveRDN + "," + d.BaseDN
	if err := d.SetUserPassword(dave, "Old-Password-1"); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	s.FailPasswordChanges(DenyReset, DropAfterApply)
	c := dial(t, s, true)
	err := c.Modify(resetReq(dave, quoted(t, "New-Password-2")))
	if resultCode(err) != ldap.LDAPResultInsufficientAccessRights || !strings.Contains(err.Error(), "INSUFFICIENT_ACCESS_RIGHTS") {
		t.Fatalf("first change: %v, want 50", err)
	}
	err = c.Modify(resetReq(dave, quoted(t, "New-Password-3")))
	if code := resultCode(err); err == nil || (code != 0 && code != ldap.ErrorNetwork) {
		t.Fatalf("second change: %v, want a dropped connection", err)
	}
	if pw, _ := d.Password(dave); pw != "New-Password-3" {
		t.Fatal("the change before the drop did not take effect")
	}
	c = dial(t, s, true)
	if err := c.Modify(resetReq(dave, quoted(t, "New-Password-4"))); err != nil {
		t.Fatalf("third change, faults used up: %v", err)
	}
}

func TestBindAsUser(t *testing.T) {
	d := Generate(1, 0)
	dave, grace := daveRDN+","+d.BaseDN, graceRDN+","+d.BaseDN
	for _, dn := range []string{dave, grace} {
		if err := d.SetUserPassword(dn, "Known-Password-1"); err != nil {
			t.Fatal(err)
		}
	}
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	cases := []struct {
		name, user, pw string
		ok             bool
		data           string
	}{
		{"right password", dave, "Known-Password-1", true, ""},
		{"wrong password", dave, "nope", false, "data 52e"},
		{"no password set", "CN=Heidi Hall," + OUEngineering + "," + d.BaseDN, "Known-Password-1", false, "data 52e"},
		{"unknown user", "nobody@corp.example.test", "Known-Password-1", false, "data 525"},
		{"disabled, right password", grace, "Known-Password-1", false, "data 533"},
		{"disabled, wrong password", grace, "nope", false, "data 52e"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s, false)
			err := c.Bind(tc.user, tc.pw)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if resultCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), tc.data) {
				t.Fatalf("got %v, want 49 with %q", err, tc.data)
			}
		})
	}
}

func TestGUIDBaseAndTokenGroups(t *testing.T) {
	d := Generate(1, 0)
	dave := daveRDN + "," + d.BaseDN
	if err := d.SetUserPassword(dave, "Known-Password-1"); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	c := dial(t, s, true)
	base := func(b string) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(b, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"sAMAccountName"}, nil))
	}
	res, err := base("<GUID=" + d.GUID(dave) + ">")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].DN != dave {
		t.Fatalf("search by <GUID=>: %v %v", res, err)
	}
	if _, err := base("<GUID=00000000-0000-4000-8000-000000000000>"); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("unknown GUID: %v", err)
	}

	sids := func(c *ldap.Conn) []string {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"tokenGroups"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, raw := range res.Entries[0].GetRawAttributeValues("tokenGroups") {
			sid, err := ad.ParseSIDBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sid.String())
		}
		return out
	}
	anon := strings.Join(sids(dial(t, s, false)), " ")
	if anon != "S-1-1-0 S-1-5-2 S-1-5-7" {
		t.Errorf("anonymous tokenGroups %s", anon)
	}
	uc := dial(t, s, false)
	if err := uc.Bind(dave, "Known-Password-1"); err != nil {
		t.Fatal(err)
	}
	user := strings.Join(sids(uc), " ")
	if !strings.HasSuffix(user, "-513 S-1-1-0 S-1-5-2 S-1-5-11") || !strings.HasPrefix(user, d.SID.String()+"-") {
		t.Errorf("user tokenGroups %s", user)
	}
	// Not among the rootDSE's attributes unless asked for.
	res, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil || len(res.Entries[0].GetAttributeValues("tokenGroups")) != 0 {
		t.Errorf("tokenGroups without asking: %v", err)
	}
}

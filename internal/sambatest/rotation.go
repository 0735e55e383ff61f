package sambatest

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/internal/password"
)

// RotationOU, under the base DN, holds the administrators NewRotationUser
// makes.
const RotationOU = "OU=Rotation Tests"

// RotationUser is an administrator made for one test.
type RotationUser struct {
	DN, Sam, Display string
	// Password is the one it was made with.
	Password string
	// ObjectGUID is the raw objectGUID (sources/ad.GUIDString reads it).
	ObjectGUID []byte
}

// NewRotationUser adds, over c (AdminConn), an enabled member of Domain
// Admins in RotationOU with a known password and a fine-grained password
// policy of its own (minimum length 7, complexity on, the defaults of a
// new domain), so that the shared test domain keeps its relaxed policy.
// Both are deleted when the test ends. Tests that rotate only their own
// administrators can run beside each other, in one binary or several.
func NewRotationUser(t testing.TB, f Facts, c *ldap.Conn) RotationUser {
	t.Helper()
	ou := RotationOU + "," + f.BaseDN
	add := ldap.NewAddRequest(ou, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(add); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		t.Fatal(err)
	}
	removeStaleRotationUsers(c, f.BaseDN)

	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	u := RotationUser{Sam: "rot-" + suffix, Display: "Rotation Admin " + suffix}
	u.DN = "CN=" + u.Sam + "," + ou
	var err error
	if u.Password, err = password.Generate(password.MinLength, u.Sam, u.Display); err != nil {
		t.Fatal(err)
	}
	add = ldap.NewAddRequest(u.DN, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{u.Sam})
	add.Attribute("userPrincipalName", []string{u.Sam + "@corp.example.test"})
	add.Attribute("displayName", []string{u.Display})
	add.Attribute("unicodePwd", []string{UnicodePwd(t, u.Password)})
	add.Attribute("userAccountControl", []string{"512"})
	if err := c.Add(add); err != nil {
		t.Fatalf("add %s: %v", u.DN, err)
	}
	t.Cleanup(func() {
		if err := c.Del(ldap.NewDelRequest(u.DN, nil)); err != nil {
			t.Errorf("delete %s: %v", u.DN, err)
		}
	})
	mod := ldap.NewModifyRequest("CN=Domain Admins,CN=Users,"+f.BaseDN, nil)
	mod.Add("member", []string{u.DN})
	if err := c.Modify(mod); err != nil {
		t.Fatalf("add %s to Domain Admins: %v", u.Sam, err)
	}

	pso := passwordSettingsDN(u.Sam, f.BaseDN)
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
		{"msDS-PSOAppliesTo", u.DN},
	} {
		add.Attribute(a[0], []string{a[1]})
	}
	if err := c.Add(add); err != nil {
		t.Fatalf("add the password policy of %s: %v", u.Sam, err)
	}
	t.Cleanup(func() {
		if err := c.Del(ldap.NewDelRequest(pso, nil)); err != nil {
			t.Errorf("delete %s: %v", pso, err)
		}
	})

	res, err := c.Search(ldap.NewSearchRequest(u.DN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s: %v", u.DN, err)
	}
	u.ObjectGUID = res.Entries[0].GetRawAttributeValue("objectGUID")
	return u
}

func passwordSettingsDN(sam, baseDN string) string {
	return "CN=autoimport-" + sam + ",CN=Password Settings Container,CN=System," + baseDN
}

// removeStaleRotationUsers deletes what an interrupted earlier run left
// behind (older than an hour, so a concurrent run keeps its own).
func removeStaleRotationUsers(c *ldap.Conn, baseDN string) {
	res, err := c.Search(ldap.NewSearchRequest(RotationOU+","+baseDN, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=user)", []string{"whenCreated", "sAMAccountName"}, nil))
	if err != nil {
		return
	}
	for _, e := range res.Entries {
		created, err := time.Parse("20060102150405.0Z", e.GetAttributeValue("whenCreated"))
		if err != nil || time.Since(created) < time.Hour {
			continue
		}
		_ = c.Del(ldap.NewDelRequest(e.DN, nil))
		_ = c.Del(ldap.NewDelRequest(passwordSettingsDN(e.GetAttributeValue("sAMAccountName"), baseDN), nil))
	}
}

package sambatest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/text/encoding/unicode"
)

// AdminConn is a connection to the DC over LDAPS bound as the domain's
// administrator, closed when the test ends.
func AdminConn(t testing.TB, f Facts) *ldap.Conn {
	t.Helper()
	c, err := dial(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(f.BindDN, f.Password); err != nil {
		t.Fatal(err)
	}
	return c
}

// Binds reports whether dn binds to the DC with password over LDAPS:
// false when the DC answers invalid credentials (result 49), an error
// when it cannot tell.
func Binds(f Facts, dn, password string) (bool, error) {
	if password == "" {
		return false, fmt.Errorf("bind as %s: an empty password would be an anonymous bind", dn)
	}
	c, err := dial(f)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return false, nil
		}
		return false, fmt.Errorf("bind as %s: %w", dn, err)
	}
	// Anonymous reads of the domain are refused: reading it proves the bind.
	if _, err := c.Search(ldap.NewSearchRequest(f.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"dn"}, nil)); err != nil {
		return false, fmt.Errorf("read %s bound as %s: %w", f.BaseDN, dn, err)
	}
	return true, nil
}

func dial(f Facts) (*ldap.Conn, error) {
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", f.CA)
	}
	c, err := ldap.DialURL(f.URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		ldap.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(30 * time.Second)
	return c, nil
}

// UnicodePwd is pw as AD's unicodePwd attribute takes it: in double
// quotes, UTF-16LE.
func UnicodePwd(t testing.TB, pw string) string {
	t.Helper()
	v, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(`"` + pw + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

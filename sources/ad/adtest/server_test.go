package adtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources/ad"
)

func dial(t *testing.T, s *Server, bind bool) *ldap.Conn {
	t.Helper()
	var opts []ldap.DialOpt
	if strings.HasPrefix(s.URL(), "ldaps") {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CAPEM())
		opts = append(opts, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	c, err := ldap.DialURL(s.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if bind {
		if err := c.Bind(s.BindDN(), s.Password()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func resultCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

func TestWrongBind(t *testing.T) {
	s := NewServer(t, Options{})
	c := dial(t, s, false)
	err := c.Bind(s.BindDN(), "wrong")
	if resultCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 52e") {
		t.Fatalf("bind error %v, want 49 with data 52e", err)
	}
	if err := c.Bind("CN=nobody,DC=corp,DC=example,DC=test", s.Password()); resultCode(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("unknown user bind: %v", err)
	}
	if st := s.Stats(); st.FailedBinds != 2 {
		t.Errorf("FailedBinds %d", st.FailedBinds)
	}
}

func TestAnonymousMayReadOnlyRootDSE(t *testing.T) {
	s := NewServer(t, Options{})
	c := dial(t, s, false)
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"defaultNamingContext"}, nil))
	if err != nil || res.Entries[0].GetAttributeValue("defaultNamingContext") != s.Directory().BaseDN {
		t.Fatalf("rootDSE: %v %v", res, err)
	}
	_, err = c.Search(ldap.NewSearchRequest(s.Directory().BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", nil, nil))
	if resultCode(err) != ldap.LDAPResultOperationsError {
		t.Fatalf("anonymous search: %v, want operations error", err)
	}
}

func TestUnpagedSearchStopsAtTheLimit(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(1, 1500)})
	c := dial(t, s, true)
	res, err := c.Search(ldap.NewSearchRequest(OUBulk+","+s.Directory().BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"cn"}, nil))
	if resultCode(err) != ldap.LDAPResultSizeLimitExceeded {
		t.Fatalf("err %v, want sizeLimitExceeded", err)
	}
	if len(res.Entries) != DefaultMaxPageSize {
		t.Errorf("%d entries before the limit, want %d", len(res.Entries), DefaultMaxPageSize)
	}
	// A search under the limit is complete.
	res, err = c.Search(ldap.NewSearchRequest(OUSales+","+s.Directory().BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"cn"}, nil))
	if err != nil || len(res.Entries) != 4 { // alice, erin, frank and WS01
		t.Errorf("small unpaged search: %d entries, %v", len(res.Entries), err)
	}
}

func TestPageSizeIsCappedAndCookieHonoured(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(1, 2500)})
	c := dial(t, s, true)
	req := ldap.NewSearchRequest(OUBulk+","+s.Directory().BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"sAMAccountName"}, nil)
	paging := ldap.NewControlPaging(5000)
	req.Controls = []ldap.Control{paging}
	seen := map[string]bool{}
	var sizes []int
	for {
		res, err := c.Search(req)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(res.Entries))
		for _, e := range res.Entries {
			if seen[e.DN] {
				t.Fatalf("%s twice", e.DN)
			}
			seen[e.DN] = true
		}
		pc, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if pc == nil {
			t.Fatal("no paging control in the response")
		}
		if len(pc.Cookie) == 0 {
			break
		}
		paging.SetCookie(pc.Cookie)
	}
	if len(seen) != 2525 || sizes[0] != 1000 || len(sizes) != 3 {
		t.Errorf("read %d in pages %v, want 2525 in 1000, 1000, 525", len(seen), sizes)
	}
	paging.SetCookie([]byte("stale"))
	if _, err := c.Search(req); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("unknown cookie: %v", err)
	}
}

func TestFiltersAndBinaryAttributes(t *testing.T) {
	d := Generate(2, 0)
	s := NewServer(t, Options{Directory: d, LDAPS: true})
	c := dial(t, s, true)
	search := func(filter string, attrs ...string) []*ldap.Entry {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, attrs, nil))
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		return res.Entries
	}
	sams := func(es []*ldap.Entry) string {
		var out []string
		for _, e := range es {
			out = append(out, e.GetAttributeValue("sAMAccountName"))
		}
		return strings.Join(out, ",")
	}
	allStaff := ldap.EscapeFilter(GroupAllStaff + "," + d.BaseDN)
	tests := []struct{ filter, want string }{
		{"(&(objectCategory=person)(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=" + allStaff + "))", "alice,bob,carol,erin,frank"},
		{"(&(objectClass=user)(memberOf=" + allStaff + "))", "bob,carol"},
		{"(&(objectCategory=person)(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2))", "Guest,krbtgt,frank,grace"},
		{"(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.804:=4098))", "Guest,krbtgt,frank,grace,WS01$"},
		{"(&(objectClass=group)(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter("CN=Domain Admins,CN=Users,"+d.BaseDN) + "))", "Tier2 Ops,Tier3 Ops"},
		{"(&(objectClass=user)(primaryGroupID=515))", "WS01$"},
		{"(&(objectClass=user)(sAMAccountName=i*n))", "ivan"},
		{"(&(objectClass=user)(!(objectCategory=person)))", "WS01$"},
	}
	for _, tc := range tests {
		if got := sams(search(tc.filter, "sAMAccountName")); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.filter, got, tc.want)
		}
	}
	// Binary attributes, and SID lookup by escaped bytes.
	es := search("(sAMAccountName=alice)", "objectGUID", "objectSid", "memberOf", "primaryGroupID")
	if len(es[0].GetRawAttributeValue("objectGUID")) != 16 {
		t.Errorf("objectGUID is %d bytes", len(es[0].GetRawAttributeValue("objectGUID")))
	}
	sid, err := ad.ParseSIDBytes(es[0].GetRawAttributeValue("objectSid"))
	if err != nil || !sid.Domain().Equal(d.SID) {
		t.Errorf("objectSid %v %v", sid, err)
	}
	for _, g := range es[0].GetAttributeValues("memberOf") {
		if strings.Contains(g, "Domain Users") {
			t.Errorf("memberOf holds the primary group: %v", es[0].GetAttributeValues("memberOf"))
		}
	}
	da := search("(objectSid=" + ldap.EscapeFilter(string(d.SID.WithRID(512).Bytes())) + ")")
	if len(da) != 1 || !strings.HasPrefix(da[0].DN, "CN=Domain Admins,") {
		t.Errorf("Domain Admins by SID: %v", da)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(42, 300), Generate(42, 300)
	if a.Len() != b.Len() || !a.SID.Equal(b.SID) {
		t.Fatal("different shapes for one seed")
	}
	for _, dn := range []string{"CN=Alice Archer," + OUSales + "," + a.BaseDN, "CN=Domain Admins,CN=Users," + a.BaseDN} {
		if a.GUID(dn) == "" || a.GUID(dn) != b.GUID(dn) {
			t.Errorf("%s: GUID %q vs %q", dn, a.GUID(dn), b.GUID(dn))
		}
	}
	if c := Generate(43, 300); c.SID.Equal(a.SID) {
		t.Error("another seed gave the same domain SID")
	}
}

func TestInjectedFailures(t *testing.T) {
	s := NewServer(t, Options{})
	c := dial(t, s, true)
	s.FailSearches(ldap.LDAPResultBusy)
	req := ldap.NewSearchRequest(s.Directory().BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)
	if _, err := c.Search(req); resultCode(err) != ldap.LDAPResultBusy {
		t.Errorf("injected busy: %v", err)
	}
	if _, err := c.Search(req); err != nil {
		t.Errorf("after the injected failure: %v", err)
	}
	if st := s.Stats(); st.Searches != 2 || st.Binds != 1 {
		t.Errorf("stats %+v", st)
	}
	s.DropConnections()
	if _, err := c.Search(req); err == nil {
		t.Error("search on a dropped connection succeeded")
	}
	c2 := dial(t, s, true)
	if _, err := c2.Search(req); err != nil {
		t.Errorf("new connection after a drop: %v", err)
	}
}

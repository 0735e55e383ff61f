package ad_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/internal/sambatest"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// Incremental reads against Samba's AD DC, which implements DirSync with
// incremental values, highestCommittedUSN and Show Deleted. The bind
// account is the domain's Administrator, who may use DirSync. Each change
// must be seen by the next incremental read exactly as a full read of the
// DC sees it. The test works in an OU and groups of its own, so that other
// runs against the shared test domain change nothing it compares; it is
// not parallel, so this binary's parallel tests do not either.
func TestSambaIncrementalReadSeesEachChange(t *testing.T) {
	f := sambatest.Need(t)
	c := sambatest.AdminConn(t, f)
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	base := f.BaseDN
	ou := "OU=Delta " + tag + "," + base
	team := "CN=Delta Team " + tag + "," + ou
	ops := "CN=Delta Ops " + tag + "," + ou
	var made []string // deleted in reverse order when the test ends
	add := func(dn string, attrs map[string][]string) {
		t.Helper()
		req := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
		made = append(made, dn)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := c.Del(ldap.NewDelRequest(made[i], nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				t.Errorf("delete %s: %v", made[i], err)
			}
		}
	})
	modify := func(dn string, fn func(*ldap.ModifyRequest)) {
		t.Helper()
		req := ldap.NewModifyRequest(dn, nil)
		fn(req)
		if err := c.Modify(req); err != nil {
			t.Fatalf("modify %s: %v", dn, err)
		}
	}
	user := func(name string) string {
		dn := "CN=" + name + " " + tag + "," + ou
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {name + tag}, "givenName": {name},
			"userPrincipalName": {name + tag + "@corp.example.test"}, "unicodePwd": {sambatest.UnicodePwd(t, "Delta-Test-1!")}, "userAccountControl": {"512"}})
		return dn
	}

	add(ou, map[string][]string{"objectClass": {"organizationalUnit"}})
	add(team, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Delta Team " + tag}})
	add(ops, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Delta Ops " + tag}})
	modify("CN=Domain Admins,CN=Users,"+base, func(m *ldap.ModifyRequest) { m.Add("member", []string{ops}) })
	t.Cleanup(func() { // before the groups go (cleanups run last first)
		m := ldap.NewModifyRequest("CN=Domain Admins,CN=Users,"+base, nil)
		m.Delete("member", []string{ops})
		_ = c.Modify(m)
	})
	mover := user("Mover")
	primary := user("Primary")
	admin := user("Admin")

	src := sambaSource(t, f)
	copies := &sourcestest.Copies{}
	sels := []sources.Selection{
		{Groups: []string{team}},
		{OUs: []string{ou}},
		{Groups: []string{team}, OUs: []string{ou}, IncludeDisabled: true},
	}
	if rep := readOnce(t, src, copies, "samba", sels[0], sources.ReadOptions{}); rep.Mode != sources.ReadFull {
		t.Fatalf("first read %+v", rep)
	}
	compareCopy(t, src, copies, "samba", sels, "after the full read")
	if rep := readOnce(t, src, copies, "samba", sels[0], sources.ReadOptions{}); rep.Mode != sources.ReadIncremental || rep.Requests != 1 {
		t.Errorf("read without changes %+v, want one DirSync request", rep)
	}

	guid := func(dn string) string {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectGUID"}, nil))
		if err != nil {
			t.Fatalf("read %s: %v", dn, err)
		}
		id, _ := ad.GUIDString(res.Entries[0].GetRawAttributeValue("objectGUID"))
		return id
	}
	sid := func(dn string) string {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectSid"}, nil))
		if err != nil {
			t.Fatalf("read %s: %v", dn, err)
		}
		s, _ := ad.ParseSIDBytes(res.Entries[0].GetRawAttributeValue("objectSid"))
		rid, _ := s.RID()
		return strconv.FormatUint(uint64(rid), 10)
	}
	var hire string
	steps := []struct {
		name  string
		do    func()
		check func(copy map[string]sources.Account) string // "" when the copy says what the step did
	}{
		{"create a user in a selected group", func() {
			hire = user("Hire")
			modify(team, func(m *ldap.ModifyRequest) { m.Add("member", []string{hire}) })
		}, func(got map[string]sources.Account) string {
			if a := got[guid(hire)]; a.Username != "Hire"+tag || !a.Candidate() || len(a.SelectedBy) == 0 || a.SelectedBy[0] != team {
				return "the new hire is not a candidate of the team"
			}
			return ""
		}},
		{"add a user to a group nested inside Domain Admins", func() {
			modify(ops, func(m *ldap.ModifyRequest) { m.Add("member", []string{admin}) })
		}, func(got map[string]sources.Account) string {
			if a := got[guid(admin)]; a.Type != sources.Admin || a.TypeReason != "member of Domain Admins via Delta Ops "+tag {
				return "not an administrator through the nested group: " + a.TypeReason
			}
			return ""
		}},
		{"change a primary group", func() {
			modify(team, func(m *ldap.ModifyRequest) { m.Add("member", []string{primary}) })
			modify(primary, func(m *ldap.ModifyRequest) { m.Replace("primaryGroupID", []string{sid(team)}) })
		}, func(got map[string]sources.Account) string {
			if a := got[guid(primary)]; len(a.SelectedBy) == 0 || a.SelectedBy[0] != team {
				return "not selected by the team through its primary group"
			}
			return ""
		}},
		{"disable", func() {
			modify(hire, func(m *ldap.ModifyRequest) { m.Replace("userAccountControl", []string{"514"}) })
		}, func(got map[string]sources.Account) string {
			if a := got[guid(hire)]; a.ID == "" || a.Enabled {
				return "still enabled"
			}
			return ""
		}},
		{"move out of a selected OU", func() {
			moved := "CN=Mover " + tag + ",CN=Users," + base
			if err := c.ModifyDN(ldap.NewModifyDNRequest(mover, "CN=Mover "+tag, true, "CN=Users,"+base)); err != nil {
				t.Fatal(err)
			}
			made = append(made, moved)
		}, func(got map[string]sources.Account) string {
			if _, ok := got[guid("CN=Mover "+tag+",CN=Users,"+base)]; ok {
				return "the moved user is still in the OU's selection"
			}
			return ""
		}},
		{"delete", func() {
			if err := c.Del(ldap.NewDelRequest(admin, nil)); err != nil {
				t.Fatal(err)
			}
		}, func(got map[string]sources.Account) string {
			for _, a := range got {
				if a.Username == "Admin"+tag {
					return "the deleted user is still there"
				}
			}
			return ""
		}},
	}
	for _, st := range steps {
		st.do()
		rep := readOnce(t, src, copies, "samba", sels[0], sources.ReadOptions{})
		if rep.Mode != sources.ReadIncremental || rep.Changes == 0 {
			t.Errorf("%s: read %+v, want an incremental read with changes", st.name, rep)
		}
		compareCopy(t, src, copies, "samba", sels, st.name)
		if msg := st.check(drain(src.CopyAccounts(ctx, copies, "samba", sels[2])).accounts); msg != "" {
			t.Errorf("%s: %s", st.name, msg)
		}
	}
}

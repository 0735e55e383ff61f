package adtest

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources/ad"
)

// Protocol details of the fake DC's DirSync, uSNChanged and Show Deleted
// support, checked with a plain LDAP client.

var extDN = ldap.NewControlString("1.2.840.113556.1.4.529", true, "")

// dirSync runs one DirSync request and returns its entries by plain DN
// (the DN after the Extended DN prefixes), the cookie and the more flag.
func dirSync(t *testing.T, c *ldap.Conn, base string, flags int64, cookie []byte, attrs ...string) (map[string]*ldap.Entry, []byte, bool, error) {
	t.Helper()
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(|(objectClass=user)(objectClass=group))", attrs,
		[]ldap.Control{extDN})
	res, err := c.DirSync(req, flags, 0, cookie)
	if err != nil {
		return nil, nil, false, err
	}
	out := map[string]*ldap.Entry{}
	for _, e := range res.Entries {
		out[plainDN(e.DN)] = e
	}
	ctl, ok := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
	if !ok {
		t.Fatal("no DirSync response control")
	}
	return out, ctl.Cookie, ctl.Flags != 0, nil
}

func plainDN(dn string) string {
	for strings.HasPrefix(dn, "<") {
		_, dn, _ = strings.Cut(dn, ">;")
	}
	return dn
}

func attrNames(e *ldap.Entry) []string {
	var out []string
	for _, a := range e.Attributes {
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out
}

func TestDirSyncSendsOnlyWhatChanged(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(1, 20)})
	c := dial(t, s, true)
	d := s.Directory()
	all, cookie, more, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil, "objectClass", "mail", "displayName", "member", "memberOf", "uSNChanged")
	if err != nil || more {
		t.Fatalf("first DirSync: %v more=%v", err, more)
	}
	alice := "CN=Alice Archer," + OUSales + "," + d.BaseDN
	e := all[alice]
	if e == nil || e.GetAttributeValue("mail") == "" || len(e.GetAttributeValues("objectClass")) != 4 {
		t.Fatalf("first read of alice: %+v", e)
	}
	if got := e.GetAttributeValues("memberOf"); len(got) != 0 || e.GetAttributeValue("uSNChanged") != "" {
		t.Errorf("DirSync sent memberOf %v or uSNChanged (neither is replicated)", got)
	}
	if inv := cookie[52:68]; string(cookie[:4]) != "MSDS" || hex.EncodeToString(inv) != invocationHex(d) {
		t.Errorf("cookie %x does not carry the DC's invocationId", cookie)
	}

	none, cookie, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "objectClass", "mail", "displayName", "member")
	if err != nil || len(none) != 0 {
		t.Fatalf("no change: %d entries, %v", len(none), err)
	}
	if err := d.Set(alice, "mail"); err != nil {
		t.Fatal(err)
	}
	if err := d.SetUserPassword(alice, "Irrelevant-1"); err != nil { // not asked for: no entry for it
		t.Fatal(err)
	}
	bob := "CN=Bob Baker," + OUEngineering + "," + d.BaseDN
	if err := d.Set(bob, "displayName", "Robert Baker"); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "objectClass", "mail", "displayName", "member")
	if err != nil || len(got) != 2 {
		t.Fatalf("after two changes: %d entries %v", len(got), err)
	}
	if names := attrNames(got[alice]); !slices.Equal(names, []string{"instanceType", "mail", "objectGUID"}) {
		t.Errorf("alice after her mail was removed: %v, want mail (without values), objectGUID, instanceType", names)
	}
	if v := got[alice].GetAttributeValues("mail"); len(v) != 0 {
		t.Errorf("removed mail came with %v", v)
	}
	if got[bob].GetAttributeValue("displayName") != "Robert Baker" || got[bob].GetAttributeValue("objectClass") != "" {
		t.Errorf("bob: %v", attrNames(got[bob]))
	}
}

// invocationHex is the DC's invocationId as the hex of its bytes.
func invocationHex(d *Directory) string {
	raw, _ := ad.GUIDBytes(d.InvocationID())
	return hex.EncodeToString(raw)
}

func TestDirSyncIncrementalMemberValues(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(2, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	_, cookie, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil, "member")
	if err != nil {
		t.Fatal(err)
	}
	group := GroupTier3Ops + "," + d.BaseDN
	heidi := "CN=Heidi Hall," + OUEngineering + "," + d.BaseDN
	dave := "CN=Dave Dunn," + OUAdmins + "," + d.BaseDN
	if err := d.AddMember(group, heidi); err != nil {
		t.Fatal(err)
	}
	d.RemoveMember(group, dave)
	got, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "member")
	if err != nil || len(got) != 1 {
		t.Fatalf("%d entries, %v; want the group alone (not its members)", len(got), err)
	}
	g := got[group]
	added, removed := g.GetAttributeValues("member;range=1-1"), g.GetAttributeValues("member;range=0-0")
	if len(added) != 1 || plainDN(added[0]) != heidi || len(removed) != 1 || plainDN(removed[0]) != dave {
		t.Fatalf("added %v removed %v", added, removed)
	}
	if !strings.HasPrefix(added[0], "<GUID=") || !strings.Contains(added[0], ">;<SID=") {
		t.Errorf("member value %q is not in the Extended DN form", added[0])
	}
	whole, _, _, err := dirSync(t, c, d.BaseDN, 0, cookie, "member")
	if err != nil || len(whole[group].GetAttributeValues("member")) != 1 {
		t.Errorf("without incremental values: %v %v, want the whole member list", whole[group], err)
	}
}

func TestDirSyncTombstones(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(3, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	_, cookie, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil, "objectClass", "objectCategory", "isDeleted", "sAMAccountName")
	if err != nil {
		t.Fatal(err)
	}
	frank := "CN=Frank Fisher," + OUSales + "," + d.BaseDN
	guid := d.GUID(frank)
	if err := d.Delete(frank); err != nil {
		t.Fatal(err)
	}
	req := ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(|(objectClass=user)(objectClass=group))",
		[]string{"objectClass", "objectCategory", "isDeleted", "sAMAccountName"}, []ldap.Control{extDN})
	res, err := c.DirSync(req, ldap.DirSyncIncrementalValues, 0, cookie)
	if err != nil {
		t.Fatal(err)
	}
	var tomb *ldap.Entry
	for _, e := range res.Entries {
		if e.GetAttributeValue("isDeleted") == "TRUE" {
			tomb = e
		}
	}
	if tomb == nil {
		t.Fatalf("no tombstone among %d entries", len(res.Entries))
	}
	dn := plainDN(tomb.DN)
	if !strings.HasPrefix(dn, `CN=Frank Fisher\0ADEL:`+guid+",CN=Deleted Objects,") {
		t.Errorf("tombstone DN %q", dn)
	}
	if cat, ok := attr(tomb, "objectCategory"); !ok || len(cat) != 0 {
		t.Errorf("objectCategory %v %v, want it stripped (sent without values)", cat, ok)
	}
	// Groups that held the user lost it and say so.
	var group *ldap.Entry
	for _, e := range res.Entries {
		if strings.HasPrefix(plainDN(e.DN), "CN=Sales Team,") {
			group = e
		}
	}
	if group != nil {
		t.Errorf("a group changed without member asked for: %v", attrNames(group))
	}
	// With the object-security flag, a tombstone is a GUID under an
	// empty DN.
	req.Controls = []ldap.Control{extDN}
	res, err = c.DirSync(req, ldap.DirSyncIncrementalValues|ldap.DirSyncObjectSecurity, 0, cookie)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range res.Entries {
		if e.DN == "" && e.GetAttributeValue("isDeleted") == "TRUE" {
			found = true
		}
	}
	if !found {
		t.Error("no empty-DN tombstone with the object-security flag")
	}
}

func attr(e *ldap.Entry, name string) ([]string, bool) {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a.Values, true
		}
	}
	return nil, false
}

func TestDirSyncMoreResults(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(4, 30), MaxPageSize: 7})
	c := dial(t, s, true)
	d := s.Directory()
	var cookie []byte
	seen := map[string]bool{}
	batches := 0
	for more := true; more; batches++ {
		var got map[string]*ldap.Entry
		var err error
		got, cookie, more, err = dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "sAMAccountName")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 7 {
			t.Fatalf("batch of %d entries over the page size 7", len(got))
		}
		for dn := range got {
			seen[dn] = true
		}
	}
	users, _ := d.Find("(|(objectClass=user)(objectClass=group))")
	if len(seen) != len(users) || batches < len(users)/7 {
		t.Errorf("%d objects in %d batches, want %d", len(seen), batches, len(users))
	}
}

func TestDirSyncCookieIsBoundToTheDC(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(5, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	_, cookie, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil, "sAMAccountName")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, []byte("MSDS garbage"), "sAMAccountName"); resultCode(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Errorf("garbled cookie: %v, want 12", err)
	}
	d.RestoreDC()
	if _, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "sAMAccountName"); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("cookie of the DC before its restore: %v, want 53", err)
	}
	_, cookie, _, err = dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil, "sAMAccountName")
	if err != nil {
		t.Fatal(err)
	}
	d.SwitchDC("dc2")
	if _, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, cookie, "sAMAccountName"); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("another DC's cookie: %v, want 53", err)
	}
}

func TestDirSyncNeedsTheRightAndTheRoot(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(6, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	if _, _, _, err := dirSync(t, c, OUCorp+","+d.BaseDN, ldap.DirSyncIncrementalValues, nil); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("DirSync under an OU: %v, want 53", err)
	}
	s.DenyDirSync(true)
	if _, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncIncrementalValues, nil); resultCode(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("without the right: %v, want 50", err)
	}
	if _, _, _, err := dirSync(t, c, d.BaseDN, ldap.DirSyncObjectSecurity, nil); err != nil {
		t.Errorf("with the object-security flag: %v", err)
	}
}

func rootDSE(t *testing.T, c *ldap.Conn) *ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"highestCommittedUSN", "dsServiceName", "dnsHostName"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries[0]
}

func TestUSNPollingFacts(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(7, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	root := rootDSE(t, c)
	usn, _ := strconv.Atoi(root.GetAttributeValue("highestCommittedUSN"))
	if usn == 0 || root.GetAttributeValue("dnsHostName") != "dc1.corp.example.test" {
		t.Fatalf("rootDSE %v", attrNames(root))
	}
	res, err := c.Search(ldap.NewSearchRequest(root.GetAttributeValue("dsServiceName"), ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"invocationId"}, nil))
	if err != nil || hex.EncodeToString(res.Entries[0].GetRawAttributeValue("invocationId")) != invocationHex(d) {
		t.Fatalf("NTDS Settings: %v", err)
	}
	group := GroupAllStaff + "," + d.BaseDN
	heidi := "CN=Heidi Hall," + OUEngineering + "," + d.BaseDN
	if err := d.AddMember(group, heidi); err != nil {
		t.Fatal(err)
	}
	res, err = c.Search(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uSNChanged>="+strconv.Itoa(usn+1)+")", []string{"cn"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].DN != group {
		t.Fatalf("changed since %d: %v %v, want the group alone (a membership stamps the group)", usn, res.Entries, err)
	}
	d.SwitchDC("dc2")
	if root := rootDSE(t, c); root.GetAttributeValue("dnsHostName") != "dc2.corp.example.test" || !strings.Contains(root.GetAttributeValue("dsServiceName"), "CN=DC2,") {
		t.Errorf("after the switch: %s %s", root.GetAttributeValue("dnsHostName"), root.GetAttributeValue("dsServiceName"))
	}
}

func TestShowDeletedAndRestore(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(8, 0)})
	c := dial(t, s, true)
	d := s.Directory()
	erin := "CN=Erin Evans," + OUSales + "," + d.BaseDN
	emea := GroupSalesEMEA + "," + d.BaseDN
	guid := d.GUID(erin)
	if err := d.Delete(erin); err != nil {
		t.Fatal(err)
	}
	if attrs, _ := d.Lookup(emea); len(attrs["member"]) != 0 {
		t.Errorf("the group still holds the deleted user: %v", attrs["member"])
	}
	deleted := "CN=Deleted Objects," + d.BaseDN
	search := func(controls ...ldap.Control) ([]*ldap.Entry, error) {
		res, err := c.Search(ldap.NewSearchRequest(deleted, ldap.ScopeSingleLevel, 0, 0, 0, false, "(isDeleted=TRUE)", []string{"objectGUID", "lastKnownParent"}, controls))
		if err != nil {
			return nil, err
		}
		return res.Entries, nil
	}
	if _, err := search(); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("Deleted Objects without Show Deleted: %v, want 32", err)
	}
	tombs, err := search(ldap.NewControlMicrosoftShowDeleted())
	if err != nil || len(tombs) != 1 || tombs[0].GetAttributeValue("lastKnownParent") != OUSales+","+d.BaseDN {
		t.Fatalf("with Show Deleted: %v %v", tombs, err)
	}
	s.HideDeletedObjects(true)
	if _, err := search(ldap.NewControlMicrosoftShowDeleted()); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("hidden Deleted Objects: %v, want 32", err)
	}
	if err := d.Restore(guid, erin); err != nil {
		t.Fatal(err)
	}
	attrs, ok := d.Lookup(erin)
	if !ok || attrs["sAMAccountName"][0] != "erin" || attrs["userAccountControl"][0] != "512" || len(attrs["memberOf"]) != 0 || len(attrs["isDeleted"]) != 0 {
		t.Errorf("restored: %v", attrs)
	}
}

func TestRangeRetrieval(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(9, 40), MaxValRange: 3})
	c := dial(t, s, true)
	d := s.Directory()
	group := GroupBulkStaff + "," + d.BaseDN // 4 members
	for _, u := range []string{"CN=Alice Archer," + OUSales, "CN=Heidi Hall," + OUEngineering, "CN=Bob Baker," + OUEngineering} {
		if err := d.AddMember(group, u+","+d.BaseDN); err != nil {
			t.Fatal(err)
		}
	}
	read := func(attr string) *ldap.EntryAttribute {
		res, err := c.Search(ldap.NewSearchRequest(group, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
		if err != nil || len(res.Entries[0].Attributes) != 1 {
			t.Fatalf("%s: %v %v", attr, res, err)
		}
		return res.Entries[0].Attributes[0]
	}
	var all []string
	for _, want := range []string{"member;range=0-2", "member;range=3-5", "member;range=6-*"} {
		a := read("member;range=" + strings.TrimPrefix(want, "member;range=")[:1] + "-*")
		if a.Name != want {
			t.Fatalf("got %s, want %s", a.Name, want)
		}
		all = append(all, a.Values...)
	}
	if len(all) != 7 || read("member").Name != "member;range=0-2" {
		t.Errorf("ranges gave %d values", len(all))
	}
}

func TestRenameMovesTheSubtreeAndTheLinks(t *testing.T) {
	s := NewServer(t, Options{Directory: Generate(10, 0)})
	d := s.Directory()
	staff := OUStaff + "," + d.BaseDN
	emea := GroupSalesEMEA + "," + d.BaseDN
	before, _ := d.Lookup(emea)
	if err := d.Rename(staff, "OU=People,"+OUCorp+","+d.BaseDN); err != nil {
		t.Fatal(err)
	}
	erin := "CN=Erin Evans,OU=Sales,OU=People," + OUCorp + "," + d.BaseDN
	attrs, ok := d.Lookup(erin)
	if !ok || attrs["distinguishedName"][0] != erin {
		t.Fatalf("erin not moved with her OU: %v", attrs)
	}
	after, _ := d.Lookup(emea)
	if !slices.Equal(after["member"], []string{erin}) || !slices.Equal(after["uSNChanged"], before["uSNChanged"]) {
		t.Errorf("group member %v uSNChanged %v -> %v: want the new DN and no new USN", after["member"], before["uSNChanged"], after["uSNChanged"])
	}
	if err := d.Rename(OUCorp+","+d.BaseDN, "OU=X,"+staff); err == nil {
		t.Error("moved an OU below itself")
	}
}

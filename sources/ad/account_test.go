package ad

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// testPlan is a plan over a tiny graph: Domain Admins (RID 512) holding
// Tier2 Ops (RID 1200), for unit tests of account().
func testPlan() *plan {
	dom, _ := ParseSID("S-1-5-21-1-2-3")
	info := Info{BaseDN: "DC=x", RootDN: "DC=x", NetBIOS: "X", SID: dom, RootSID: dom}
	g := &graph{info: info, groups: map[string]*group{}, byRID: map[uint32]string{}}
	da := ldap.NewEntry("CN=Domain Admins,CN=Users,DC=x", map[string][]string{"cn": {"Domain Admins"}, "objectSid": {string(dom.WithRID(512).Bytes())}})
	t2 := ldap.NewEntry("CN=Tier2 Ops,DC=x", map[string][]string{"cn": {"Tier2 Ops"}, "objectSid": {string(dom.WithRID(1200).Bytes())},
		"memberOf": {"CN=Domain Admins,CN=Users,DC=x"}})
	daG := g.add(da, "Domain Admins")
	g.add(t2, "")
	p := &plan{info: info, graph: g, priv: []privRoot{{root: root{key: dnKey(daG.dn), label: "Domain Admins"}, g: daG}}}
	p.priv[0].setMembers(g, daG.dn)
	return p
}

var goodGUID = string([]byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})

func userEntry(mod map[string][]string) *ldap.Entry {
	attrs := map[string][]string{
		"objectGUID": {goodGUID}, "objectClass": {"top", "person", "organizationalPerson", "user"},
		"objectCategory": {"CN=Person,CN=Schema,CN=Configuration,DC=x"}, "sAMAccountName": {"jdoe"},
		"userPrincipalName": {"jdoe@x.example"}, "displayName": {"Jane Doe"}, "givenName": {"Jane"}, "sn": {"Doe"},
		"mail": {"jane@x.example"}, "userAccountControl": {"512"}, "primaryGroupID": {"513"},
	}
	for k, v := range mod {
		if v == nil {
			delete(attrs, k)
			continue
		}
		attrs[k] = v
	}
	return ldap.NewEntry("CN=Jane Doe,OU=Staff,DC=x", attrs)
}

func TestAccountFromEntry(t *testing.T) {
	tests := []struct {
		name       string
		mod        map[string][]string
		entryErr   string // substring of EntryError.Reason
		skip       string
		typ        sources.AccountType
		typeReason string
	}{
		{name: "ordinary user", typ: sources.EndUser, typeReason: "no privileged group membership"},
		{name: "disabled", mod: map[string][]string{"userAccountControl": {"514"}}, typ: sources.EndUser, skip: "disabled (userAccountControl 514)"},
		{name: "disabled with never-expiring password", mod: map[string][]string{"userAccountControl": {"66050"}}, skip: "disabled (userAccountControl 66050)", typ: sources.EndUser},
		{name: "direct domain admin", mod: map[string][]string{"memberOf": {"CN=Domain Admins,CN=Users,DC=x"}}, typ: sources.Admin, typeReason: "member of Domain Admins"},
		{name: "nested admin", mod: map[string][]string{"memberOf": {"cn=tier2 ops,dc=x"}}, typ: sources.Admin, typeReason: "member of Domain Admins via Tier2 Ops"},
		{name: "primary group Domain Admins", mod: map[string][]string{"primaryGroupID": {"512"}}, typ: sources.Admin, typeReason: "member of Domain Admins (primary group)"},
		{name: "primary group nested in Domain Admins", mod: map[string][]string{"primaryGroupID": {"1200"}}, typ: sources.Admin, typeReason: "member of Domain Admins via Tier2 Ops (primary group)"},
		{name: "computer by class", mod: map[string][]string{"objectClass": {"top", "user", "computer"}, "sAMAccountName": {"PC1$"}, "userAccountControl": {"4096"}}, skip: "computer account"},
		{name: "computer by userAccountControl", mod: map[string][]string{"userAccountControl": {"4096"}}, skip: "computer account (userAccountControl 4096)"},
		{name: "trust account", mod: map[string][]string{"userAccountControl": {"2080"}}, skip: "trust account"},
		{name: "gMSA", mod: map[string][]string{"objectClass": {"top", "user", "computer", "msDS-GroupManagedServiceAccount"}}, skip: "group-managed service account"},
		{name: "contact without account attributes", mod: map[string][]string{"objectClass": {"top", "contact"}, "sAMAccountName": nil, "userAccountControl": nil}, skip: "contact"},
		{name: "not a person", mod: map[string][]string{"objectCategory": {"CN=Foreign-Security-Principal,CN=Schema,DC=x"}}, skip: "not a person"},
		{name: "missing sAMAccountName", mod: map[string][]string{"sAMAccountName": nil}, entryErr: "no sAMAccountName"},
		{name: "short GUID", mod: map[string][]string{"objectGUID": {"short"}}, entryErr: "bad objectGUID"},
		{name: "no GUID", mod: map[string][]string{"objectGUID": nil}, entryErr: "no objectGUID"},
		{name: "invalid UTF-8", mod: map[string][]string{"displayName": {"Jane \xff Doe"}}, entryErr: "displayName is not valid UTF-8"},
		{name: "odd userAccountControl", mod: map[string][]string{"userAccountControl": {"lots"}}, entryErr: "userAccountControl \"lots\" is not an integer"},
		{name: "missing userAccountControl", mod: map[string][]string{"userAccountControl": nil}, entryErr: "userAccountControl"},
		{name: "odd primaryGroupID", mod: map[string][]string{"primaryGroupID": {"x"}}, entryErr: "primaryGroupID"},
	}
	p := testPlan()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acc, eerr := p.account(userEntry(tc.mod))
			if tc.entryErr != "" {
				if eerr == nil || !strings.Contains(eerr.Reason, tc.entryErr) {
					t.Fatalf("EntryError %v, want reason containing %q", eerr, tc.entryErr)
				}
				if eerr.Entry != "CN=Jane Doe,OU=Staff,DC=x" {
					t.Errorf("EntryError names %q", eerr.Entry)
				}
				return
			}
			if eerr != nil {
				t.Fatalf("EntryError %v", eerr)
			}
			if acc.SkipReason != tc.skip && !(tc.skip != "" && strings.HasPrefix(acc.SkipReason, tc.skip)) {
				t.Errorf("SkipReason %q, want %q", acc.SkipReason, tc.skip)
			}
			if tc.typ != "" && acc.Type != tc.typ {
				t.Errorf("Type %s, want %s", acc.Type, tc.typ)
			}
			if tc.typeReason != "" && acc.TypeReason != tc.typeReason {
				t.Errorf("TypeReason %q, want %q", acc.TypeReason, tc.typeReason)
			}
			if acc.ID != "00112233-4455-6677-8899-aabbccddeeff" || acc.ImmutableID != "MyIRAFVEd2aImaq7zN3u/w==" {
				t.Errorf("ID %q ImmutableID %q", acc.ID, acc.ImmutableID)
			}
		})
	}
}

func TestAccountFields(t *testing.T) {
	acc, eerr := testPlan().account(userEntry(map[string][]string{"whenChanged": {"20240102030405.0Z"}}))
	if eerr != nil {
		t.Fatal(eerr)
	}
	want := sources.Account{Source: sources.KindAD, ID: "00112233-4455-6677-8899-aabbccddeeff", Username: "jdoe", UPN: "jdoe@x.example",
		DisplayName: "Jane Doe", GivenName: "Jane", Surname: "Doe", Email: "jane@x.example", Enabled: true, Domain: "X",
		DN: "CN=Jane Doe,OU=Staff,DC=x", Type: sources.EndUser, TypeReason: "no privileged group membership",
		ImmutableID: "MyIRAFVEd2aImaq7zN3u/w==", Changed: "20240102030405.0Z"}
	acc.SelectedBy = nil
	if acc.Source != want.Source || acc.ID != want.ID || acc.Username != want.Username || acc.UPN != want.UPN ||
		acc.DisplayName != want.DisplayName || acc.GivenName != want.GivenName || acc.Surname != want.Surname ||
		acc.Email != want.Email || acc.Enabled != want.Enabled || acc.Domain != want.Domain || acc.DN != want.DN ||
		acc.Type != want.Type || acc.TypeReason != want.TypeReason || acc.ImmutableID != want.ImmutableID || acc.Changed != want.Changed {
		t.Errorf("account\n got %+v\nwant %+v", acc, want)
	}
	cg := string([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	acc, _ = testPlan().account(userEntry(map[string][]string{"mS-DS-ConsistencyGuid": {cg}}))
	if acc.ImmutableID != "AQIDBAUGBwgJCgsMDQ4PEA==" {
		t.Errorf("ImmutableID with mS-DS-ConsistencyGuid = %q", acc.ImmutableID)
	}
}

// FuzzAccountEntry feeds arbitrary attribute values through the entry
// decoder: it must never panic, and must either report an EntryError
// naming the DN or yield an account with a canonical ID.
func FuzzAccountEntry(f *testing.F) {
	f.Add(goodGUID, "jdoe", "512", "513", "CN=Domain Admins,CN=Users,DC=x", "Jane")
	f.Add("x", "", "abc", "-1", "", "\xff")
	f.Add(goodGUID, "pc$", "4096", "515", "cn=tier2 ops,dc=x", "")
	p := testPlan()
	f.Fuzz(func(t *testing.T, guid, sam, uac, pgid, memberOf, given string) {
		e := userEntry(map[string][]string{"objectGUID": {guid}, "sAMAccountName": {sam}, "userAccountControl": {uac},
			"primaryGroupID": {pgid}, "memberOf": {memberOf}, "givenName": {given}})
		acc, eerr := p.account(e)
		if eerr != nil {
			if eerr.Entry != e.DN || eerr.Reason == "" {
				t.Fatalf("EntryError %+v", eerr)
			}
			return
		}
		if _, err := GUIDBytes(acc.ID); err != nil {
			t.Fatalf("ID %q: %v", acc.ID, err)
		}
		if !utf8.ValidString(acc.Username) || !utf8.ValidString(acc.GivenName) {
			t.Fatalf("invalid UTF-8 passed through: %q %q", acc.Username, acc.GivenName)
		}
		if acc.Type == sources.Admin && !strings.HasPrefix(acc.TypeReason, "member of ") {
			t.Fatalf("admin without reason: %+v", acc)
		}
	})
}

// BenchmarkClassifyEntry measures this package's own cost per user, apart
// from LDAP transport: decoding and classifying one decoded entry.
func BenchmarkClassifyEntry(b *testing.B) {
	p := testPlan()
	e := userEntry(map[string][]string{"memberOf": {"cn=tier2 ops,dc=x", "CN=Staff,DC=x"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, eerr := p.account(e); eerr != nil {
			b.Fatal(eerr)
		}
	}
}

// path answers a question asked before as it did then, and answers anew
// once a group joins the graph: a group added later can be a shorter way,
// or the only one.
func TestPathRemembersUntilAGroupIsAdded(t *testing.T) {
	p := testPlan()
	g := p.graph
	da, t2 := dnKey("CN=Domain Admins,CN=Users,DC=x"), dnKey("CN=Tier2 Ops,DC=x")
	t3 := dnKey("CN=Tier3 Ops,DC=x")
	chain, ok := g.path([]string{t2}, da)
	if !ok || len(chain) != 1 || chain[0] != t2 {
		t.Fatalf("Tier2 Ops to Domain Admins: %v %v", chain, ok)
	}
	if again, ok := g.path([]string{t2}, da); !ok || len(again) != 1 || &again[0] != &chain[0] {
		t.Fatalf("asked again: %v %v, not the answer remembered", again, ok)
	}
	if _, ok := g.path([]string{t3}, da); ok {
		t.Fatal("a group the graph does not hold reaches Domain Admins")
	}
	g.add(ldap.NewEntry("CN=Tier3 Ops,DC=x", map[string][]string{"cn": {"Tier3 Ops"}, "memberOf": {"CN=Tier2 Ops,DC=x"}}), "")
	if chain, ok := g.path([]string{t3}, da); !ok || strings.Join(chain, ">") != t3+">"+t2 {
		t.Fatalf("after Tier3 Ops joined: %v %v", chain, ok)
	}
	// Start groups are told apart however their names read.
	if _, ok := g.path([]string{t2 + "\x00" + t3}, da); ok {
		t.Fatal("a group the graph does not hold reaches Domain Admins")
	}
	if _, ok := g.path([]string{t2, t3}, da); !ok {
		t.Fatal("Tier2 Ops and Tier3 Ops: taken for the one group whose name joins theirs")
	}
	for i := range maxPaths + 10 {
		g.path([]string{t2, fmt.Sprint("cn=other", i)}, da)
	}
	if len(g.paths) > maxPaths {
		t.Fatalf("%d answers remembered, at most %d", len(g.paths), maxPaths)
	}
}

package adtest

import (
	"fmt"
	"strings"
)

// The fixture every generated directory holds, the same one
// internal/sambatest/fixtures.ldif plants in a real Samba AD, so the same
// classification cases run against both. DNs are relative to BaseDN.
const (
	OUCorp        = "OU=Corp"
	OUStaff       = "OU=Staff,OU=Corp"
	OUSales       = "OU=Sales,OU=Staff,OU=Corp"
	OUEngineering = "OU=Engineering,OU=Staff,OU=Corp"
	OUAdmins      = "OU=Admins,OU=Corp"
	OUGroups      = "OU=Groups,OU=Corp"
	// OUBulk holds the generated filler users (and, in the fake, computers).
	OUBulk = "OU=Bulk"

	GroupAllStaff  = "CN=All Staff,OU=Groups,OU=Corp"
	GroupSalesTeam = "CN=Sales Team,OU=Groups,OU=Corp" // member of All Staff
	GroupSalesEMEA = "CN=Sales EMEA,OU=Groups,OU=Corp" // member of Sales Team
	GroupTier2Ops  = "CN=Tier2 Ops,OU=Groups,OU=Corp"  // member of Domain Admins
	GroupTier3Ops  = "CN=Tier3 Ops,OU=Groups,OU=Corp"  // member of Tier2 Ops
	GroupBulkStaff = "CN=Bulk Staff,OU=Groups,OU=Corp" // every 10th bulk user
)

// FixtureUser is one named user of the fixture.
type FixtureUser struct {
	SAM, Given, Surname, OU string
	Disabled                bool
	// Groups are DNs relative to BaseDN (well-known ones under CN=Users or
	// CN=Builtin).
	Groups []string
}

// FixtureUsers are the named users of the fixture:
//
//	alice  Sales        in Sales Team (nested in All Staff)
//	bob    Engineering  in All Staff and directly in Domain Admins
//	carol  Engineering  in All Staff and in Tier2 Ops (in Domain Admins)
//	dave   Admins       in Tier3 Ops (in Tier2 Ops, in Domain Admins)
//	erin   Sales        in Sales EMEA (in Sales Team, in All Staff): three deep
//	frank  Sales        in Sales Team, disabled
//	grace  Admins       in Domain Admins, disabled
//	heidi  Engineering  in no group: Domain Users only through primaryGroupID
//	ivan   Admins       in Backup Operators
var FixtureUsers = []FixtureUser{
	{SAM: "alice", Given: "Alice", Surname: "Archer", OU: OUSales, Groups: []string{GroupSalesTeam}},
	{SAM: "bob", Given: "Bob", Surname: "Baker", OU: OUEngineering, Groups: []string{GroupAllStaff, "CN=Domain Admins,CN=Users"}},
	{SAM: "carol", Given: "Carol", Surname: "Chen", OU: OUEngineering, Groups: []string{GroupAllStaff, GroupTier2Ops}},
	{SAM: "dave", Given: "Dave", Surname: "Dunn", OU: OUAdmins, Groups: []string{GroupTier3Ops}},
	{SAM: "erin", Given: "Erin", Surname: "Evans", OU: OUSales, Groups: []string{GroupSalesEMEA}},
	{SAM: "frank", Given: "Frank", Surname: "Fisher", OU: OUSales, Disabled: true, Groups: []string{GroupSalesTeam}},
	{SAM: "grace", Given: "Grace", Surname: "Green", OU: OUAdmins, Disabled: true, Groups: []string{"CN=Domain Admins,CN=Users"}},
	{SAM: "heidi", Given: "Heidi", Surname: "Hall", OU: OUEngineering},
	{SAM: "ivan", Given: "Ivan", Surname: "Ivanov", OU: OUAdmins, Groups: []string{"CN=Backup Operators,CN=Builtin"}},
}

// FixtureComputer is a computer account inside OUSales.
const FixtureComputer = "WS01"

// FixtureContact is a mail contact inside OUSales.
const FixtureContact = "Victor Vendor"

var firstNames = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
	"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Chris", "Lisa",
	"Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Ashley", "Priya", "Wei", "Olga", "Mateo", "Aisha",
	"Kenji", "Fatima", "Lars", "Chloe", "Noah"}

var lastNames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez",
	"Thompson", "White", "Harris", "Sanchez", "Clark", "Lewis", "Robinson", "Walker", "Nakamura", "Schmidt", "Kowalski",
	"Novak", "Rossi", "Dubois", "Okafor", "Singh", "Kim", "Larsen"}

// Generate makes a directory "corp.example.test" (NetBIOS CORP) with the
// fixture plus n filler users in OUBulk. The filler is deterministic for a
// seed: realistic names, unique sAMAccountNames, every 20th user disabled
// (userAccountControl 514), every 10th in Bulk Staff (a group outside All
// Staff, so the fixture cases stay exact), every 1,000th in Tier3 Ops (an
// administrator through three levels of nesting), and one computer account
// per 100 users.
func Generate(seed uint64, n int) *Directory {
	d := NewDirectory("corp.example.test", "CORP", seed)
	b := d.BaseDN
	rel := func(x string) string { return x + "," + b }
	for _, ou := range []string{OUCorp, OUStaff, OUSales, OUEngineering, OUAdmins, OUGroups, OUBulk} {
		d.AddOU(rel(ou))
	}
	for _, g := range []string{GroupAllStaff, GroupSalesTeam, GroupSalesEMEA, GroupTier2Ops, GroupTier3Ops, GroupBulkStaff} {
		d.AddGroup(rel(g))
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(d.AddMember(rel(GroupAllStaff), rel(GroupSalesTeam)))
	must(d.AddMember(rel(GroupSalesTeam), rel(GroupSalesEMEA)))
	must(d.AddMember(rel("CN=Domain Admins,CN=Users"), rel(GroupTier2Ops)))
	must(d.AddMember(rel(GroupTier2Ops), rel(GroupTier3Ops)))
	for _, u := range FixtureUsers {
		uac := 512
		if u.Disabled {
			uac = 514
		}
		e := d.AddUser(User{Parent: rel(u.OU), SAM: u.SAM, GivenName: u.Given, Surname: u.Surname,
			Mail: strings.ToLower(u.Given+"."+u.Surname) + "@example.test", UAC: uac})
		for _, g := range u.Groups {
			must(d.AddMember(rel(g), e.DN))
		}
	}
	d.AddComputer(rel(OUSales), FixtureComputer)
	d.AddContact(rel(OUSales), FixtureContact, "victor@vendor.example")

	for i := range n {
		first := firstNames[d.rng.IntN(len(firstNames))]
		last := lastNames[d.rng.IntN(len(lastNames))]
		sam := strings.ToLower(fmt.Sprintf("%c%s%05d", first[0], last, i))
		uac := 512
		if i%20 == 19 {
			uac = 514
		}
		e := d.AddUser(User{Parent: rel(OUBulk), SAM: sam, CN: fmt.Sprintf("%s %s %05d", first, last, i), GivenName: first, Surname: last,
			DisplayName: first + " " + last, Mail: strings.ToLower(first+"."+last) + fmt.Sprintf(".%05d@example.test", i), UAC: uac})
		if i%10 == 9 {
			must(d.AddMember(rel(GroupBulkStaff), e.DN))
		}
		if i%1000 == 999 {
			must(d.AddMember(rel(GroupTier3Ops), e.DN))
		}
		if i%100 == 99 {
			d.AddComputer(rel(OUBulk), fmt.Sprintf("PC%05d", i))
		}
	}
	return d
}

package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// A profile is one kind of customer the sandbox simulates; customers take
// them in turn so that every small sandbox holds each of them.
type profile int

const (
	// hybrid: on-prem AD selected by a nested group, Entra twins linked
	// (m365_sync), Global Administrators from M365; IT Glue and
	// ConnectWise; the default policies.
	hybrid profile = iota
	// cloud: Microsoft 365 only, selected by group; Hudu and Autotask;
	// a policy that sends the welcome email.
	cloud
	// onPrem: AD only, selected as Domain Users (privileged members
	// excluded); no documentation vault, so end users go to the
	// Technician Vault; HaloPSA; customer-specific options.
	onPrem
	profiles
)

func (p profile) String() string {
	return [...]string{"hybrid AD + M365", "M365 only", "AD only"}[p]
}

// customer is one simulated customer and what was seeded for it.
type customer struct {
	idx     int
	id      string
	name    string
	profile profile
	slug    string
	// AD
	dir    *adtest.Directory
	ad     *adtest.Server
	caFile string
	// M365
	tenantID string
	allStaff string // the "All Staff" group of a cloud-only tenant
	// Sinks
	itglueOrg   int
	huduCompany int
	psaKind     string
	psaID       int
	techVault   []techvault.Entry
}

var companyNames = []string{"Acme Dental", "Bluebird Logistics", "Cedar Law", "Delta Veterinary", "Evergreen Realty",
	"Foxglove Bakery", "Granite Engineering", "Harbor Accounting", "Ironwood Clinics", "Juniper Schools",
	"Kestrel Aviation", "Lumen Architects", "Maple Insurance", "Northwind Freight", "Orchid Spa", "Pinnacle Builders",
	"Quarry Brewing", "Redwood Pediatrics", "Summit Credit Union", "Tidewater Marine", "Upland Farms",
	"Vanguard Security", "Willow Hospice", "Zephyr Travel"}

var givenNames = []string{"Maria", "James", "Aisha", "Wei", "Olga", "Mateo", "Priya", "Liam", "Fatima", "Kenji", "Chloe",
	"Noah", "Sofia", "Lars", "Amara", "Diego", "Hannah", "Tomasz", "Yuki", "Elena", "Omar", "Grace", "Ravi", "Ines",
	"Lucas", "Zara", "Felix", "Nadia", "Hugo", "Leila", "Oscar", "Mira", "Jonas", "Ayla", "Rafael", "Keiko", "Samuel",
	"Aoife", "Dmitri", "Lucia", "Kwame", "Freya", "Arjun", "Nora", "Tariq", "Ingrid", "Mei", "Pablo"}

var surnames = []string{"Garcia", "Smith", "Okafor", "Zhang", "Petrova", "Rossi", "Sharma", "Murphy", "Haddad", "Tanaka",
	"Dubois", "Cohen", "Novak", "Larsen", "Mensah", "Alvarez", "Becker", "Kowalski", "Sato", "Ionescu", "Farouk", "Walsh",
	"Iyer", "Moreau", "Lindqvist", "Osei", "Fernandes", "Kaur", "Nakamura", "Brennan", "Horvat", "Yilmaz", "Costa",
	"Dalton", "Eriksen", "Ferreira", "Gallagher", "Hoffmann", "Jansen", "Khan", "Lombardi", "Mwangi", "Nilsson",
	"Ortega", "Popescu", "Quinn", "Reyes", "Svoboda"}

func (c *customer) vaultName() string {
	switch {
	case c.itglueOrg != 0:
		return ITGlue
	case c.huduCompany != 0:
		return Hudu
	}
	return "Technician Vault"
}

func (c *customer) psaName() string {
	return map[string]string{"connectwise": ConnectWise, "autotask": Autotask, "halopsa": HaloPSA}[c.psaKind]
}

// plan decides the customers: ids, profiles and sink mappings.
func plan(o Options) []*customer {
	out := make([]*customer, o.Customers)
	for i := range out {
		name := companyNames[i%len(companyNames)]
		if n := i / len(companyNames); n > 0 {
			name = fmt.Sprintf("%s %d", name, n+1)
		}
		slug := strings.ToLower(strings.ReplaceAll(name, " ", "-"))
		c := &customer{idx: i, id: slug, name: name, slug: slug, profile: profile(i % int(profiles))}
		switch c.profile {
		case hybrid:
			c.itglueOrg, c.psaKind, c.psaID = 2800+i, "connectwise", 1900+i
		case cloud:
			c.huduCompany, c.psaKind, c.psaID = 70+i, "autotask", 29000+i
		case onPrem:
			c.psaKind, c.psaID = "halopsa", 12+i
		}
		out[i] = c
	}
	return out
}

// person is one generated directory user, as the sinks are seeded with.
type person struct {
	given, sur, display string
	username            string // sAMAccountName or userPrincipalName
	upn, mail           string
	enabled, admin      bool
	source              string // ad or m365
}

// seed starts the customer's directories and seeds every sink.
func (e *Env) seed(c *customer) error {
	o := e.opts
	r := rand.New(rand.NewPCG(o.Seed, uint64(c.idx)+1))
	var people []person
	switch c.profile {
	case hybrid, onPrem:
		var err error
		if people, err = e.seedAD(c, r); err != nil {
			return err
		}
	case cloud:
		people = e.seedCloud(c)
	}
	e.seedVault(c, people, r)
	e.seedPSA(c, people)
	return nil
}

// seedAD builds the customer's domain and starts its controller. For the
// hybrid profile it also creates the Entra twins.
func (e *Env) seedAD(c *customer, r *rand.Rand) ([]person, error) {
	n := e.opts.Accounts
	dns := c.slug + ".example.test"
	netbios := strings.ToUpper(strings.ReplaceAll(c.slug, "-", ""))
	if len(netbios) > 15 {
		netbios = netbios[:15]
	}
	d := adtest.NewDirectory(dns, netbios, e.opts.Seed*1000+uint64(c.idx))
	base := d.BaseDN
	dn := func(rel string) string { return rel + "," + base }
	for _, ou := range []string{"OU=Corp", "OU=Staff,OU=Corp", "OU=Sales,OU=Staff,OU=Corp", "OU=Engineering,OU=Staff,OU=Corp",
		"OU=Support,OU=Staff,OU=Corp", "OU=Admins,OU=Corp", "OU=Groups,OU=Corp", "OU=Service Accounts,OU=Corp"} {
		d.AddOU(dn(ou))
	}
	groups := map[string]string{}
	for _, g := range []string{"All Staff", "Sales", "Sales EMEA", "Engineering", "Support", "Tier2 Ops", "Tier3 Ops"} {
		groups[g] = dn("CN=" + g + ",OU=Groups,OU=Corp")
		d.AddGroup(groups[g])
	}
	must := func(err error) {
		if err != nil {
			panic(err) // the groups above exist: a failure is a bug here
		}
	}
	// Nesting: Sales EMEA in Sales in All Staff; Tier3 Ops in Tier2 Ops in
	// Domain Admins.
	must(d.AddMember(groups["All Staff"], groups["Sales"]))
	must(d.AddMember(groups["Sales"], groups["Sales EMEA"]))
	must(d.AddMember(groups["All Staff"], groups["Engineering"]))
	must(d.AddMember(groups["All Staff"], groups["Support"]))
	domainAdmins := dn("CN=Domain Admins,CN=Users")
	must(d.AddMember(domainAdmins, groups["Tier2 Ops"]))
	must(d.AddMember(groups["Tier2 Ops"], groups["Tier3 Ops"]))
	d.AddComputer(dn("OU=Staff,OU=Corp"), "WS-"+netbios[:min(len(netbios), 8)])
	d.AddGMSA(dn("OU=Service Accounts,OU=Corp"), "gmsa-backup")
	d.AddContact(dn("OU=Staff,OU=Corp"), "Outside Counsel", "counsel@partner.example")

	depts := []struct{ ou, group string }{
		{"OU=Sales,OU=Staff,OU=Corp", "Sales EMEA"}, {"OU=Sales,OU=Staff,OU=Corp", "Sales"},
		{"OU=Engineering,OU=Staff,OU=Corp", "Engineering"}, {"OU=Support,OU=Staff,OU=Corp", "Support"},
	}
	mailDomain := c.slug + ".example"
	names := newNamer(r)
	people := make([]person, 0, n)
	var twins []person
	var twinIDs []string
	for i := range n {
		p := names.next()
		p.source = "ad"
		admin := i%25 == 3
		disabled := !admin && i%15 == 7
		if admin {
			p.username = "adm-" + p.username
			if len(p.username) > 20 {
				p.username = p.username[:20]
			}
		}
		p.upn = p.username + "@" + dns
		if i%12 != 11 {
			p.mail = p.username + "@" + mailDomain
		}
		p.enabled, p.admin = !disabled, admin
		u := adtest.User{SAM: p.username, GivenName: p.given, Surname: p.sur, DisplayName: p.display, CN: p.display + " " + fmt.Sprint(i),
			Mail: p.mail, UPN: p.upn}
		if disabled {
			u.UAC = 514
		}
		var group string
		switch {
		case admin:
			u.Parent = dn("OU=Admins,OU=Corp")
			group = groups["Tier3 Ops"]
			if i%2 == 0 {
				group = domainAdmins
			}
		case i%9 == 8:
			u.Parent = dn("OU=Staff,OU=Corp") // in no group: Domain Users only
		default:
			dep := depts[i%len(depts)]
			u.Parent, group = dn(dep.ou), groups[dep.group]
		}
		ent := d.AddUser(u)
		if group != "" {
			must(d.AddMember(group, ent.DN))
		}
		people = append(people, p)
		if c.profile == hybrid && p.enabled && !admin && i%2 == 0 {
			twins = append(twins, p)
			twinIDs = append(twinIDs, base64.StdEncoding.EncodeToString([]byte(ent.First("objectGUID"))))
		}
	}
	s, err := e.startAD(c.id, d)
	if err != nil {
		return nil, err
	}
	c.dir, c.ad = d, s
	c.caFile = filepath.Join(e.Dir, "ad-"+c.id+"-ca.pem")
	if err := os.WriteFile(c.caFile, s.CAPEM(), 0o644); err != nil {
		return nil, err
	}
	if c.profile == hybrid {
		c.tenantID = tenantID(e.opts.Seed, c.idx)
		t := e.Graph.Tenant(c.tenantID)
		sync := true
		lic := []string{"c7df2760-2c81-4ef7-b578-5b5392b571df"} // Office 365 E5
		for i, p := range twins {
			t.AddUser(m365test.User{UserPrincipalName: p.upn, DisplayName: p.display, GivenName: p.given, Surname: p.sur, Mail: p.mail,
				OnPremisesSyncEnabled: &sync, OnPremisesImmutableID: twinIDs[i], OnPremisesSamAccountName: p.username, Licenses: lic})
		}
		onms := c.slug + ".onmicrosoft.com"
		admin := t.AddUser(m365test.User{UserPrincipalName: "it.admin@" + onms, DisplayName: "IT Admin", GivenName: "IT", Surname: "Admin",
			Mail: "it.admin@" + mailDomain, Licenses: lic})
		role := t.ActivateRole(m365test.GlobalAdministrator, "")
		t.AssignRole(role, admin)
		t.AddUser(m365test.User{UserPrincipalName: "partner_vendor.example#EXT#@" + onms, DisplayName: "Vendor Partner", Guest: true, Mail: "partner@vendor.example"})
		people = append(people, person{given: "IT", sur: "Admin", display: "IT Admin", username: "it.admin@" + onms, upn: "it.admin@" + onms,
			mail: "it.admin@" + mailDomain, enabled: true, admin: true, source: "m365"})
	}
	return people, nil
}

// seedCloud fills the customer's Entra tenant.
func (e *Env) seedCloud(c *customer) []person {
	n := e.opts.Accounts
	c.tenantID = tenantID(e.opts.Seed, c.idx)
	t := e.Graph.Tenant(c.tenantID)
	disabled := max(1, n/15)
	guests := max(1, n/20)
	users := max(3, n-disabled-guests)
	g := t.Generate(m365test.GenOptions{Seed: e.opts.Seed*1000 + uint64(c.idx), Users: users, Guests: guests, Disabled: disabled,
		Unlicensed: 1, Groups: 3, Admins: 2, Domain: c.slug + ".onmicrosoft.com"})
	c.allStaff = g.AllStaff
	admins := map[string]bool{}
	for _, id := range g.Admins {
		admins[id] = true
	}
	people := make([]person, 0, len(g.Users))
	for _, id := range g.Users {
		u, _ := t.User(id)
		people = append(people, person{given: u.GivenName, sur: u.Surname, display: u.DisplayName, username: u.UserPrincipalName,
			upn: u.UserPrincipalName, mail: u.Mail, enabled: !u.Disabled, admin: admins[id], source: "m365"})
	}
	return people
}

// seedVault plants entries in the customer's vault: about one in five
// enabled users has an entry with the right category (matched), one has
// an entry with its username but no category (a possible duplicate), one
// has two entries that fit (ambiguous: a technician must choose), and
// unrelated entries fill the rest. Administrators' passwords live in the
// Technician Vault, where the first administrator has an entry already.
func (e *Env) seedVault(c *customer, people []person, r *rand.Rand) {
	seed := e.opts.Seed*1000 + uint64(c.idx)
	categoryOf := map[string]string{"ad": "Active Directory", "m365": "Office 365"}
	dup, amb := false, false
	adminSeeded := false
	for j, p := range people {
		if !p.enabled {
			continue
		}
		if p.admin {
			if !adminSeeded {
				adminSeeded = true
				c.techVault = append(c.techVault, techvault.Entry{ID: entryID(e.opts.Seed, c.idx, j), Customer: c.id,
					Name: p.display + " (admin)", Username: p.username, Category: categoryOf[p.source], CreatedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)})
			}
			continue
		}
		category, copies := "", 1
		switch {
		case !amb && j%5 == 3 && j%9 != 8: // (j%9 == 8 is in no selected group)
			amb, copies = true, 2 // two entries fit: ambiguous
			category = categoryOf[p.source]
		case j%5 == 1:
			category = categoryOf[p.source]
			if p.source == "m365" && r.IntN(2) == 0 {
				category = "Microsoft 365"
			}
		case !dup && j%5 == 2:
			dup = true // no category: not matched, reported
		default:
			continue
		}
		for k := range copies {
			name := p.display
			if k > 0 {
				name += " (old)"
			}
			switch {
			case c.itglueOrg != 0:
				e.ITGlue.AddPassword(itgluetest.Password{OrganizationID: c.itglueOrg, Name: name, Username: p.username}, category)
			case c.huduCompany != 0:
				e.Hudu.AddPassword(hudutest.AssetPassword{CompanyID: c.huduCompany, Name: name, Username: p.username, PasswordType: category})
			default:
				c.techVault = append(c.techVault, techvault.Entry{ID: entryID(e.opts.Seed, c.idx, j+k*len(people)), Customer: c.id,
					Name: name, Username: p.username, Category: category, CreatedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)})
			}
		}
	}
	noise := max(5, e.opts.Accounts/2)
	switch {
	case c.itglueOrg != 0:
		e.ITGlue.AddOrganization(c.itglueOrg, c.name)
		e.ITGlue.Generate(c.itglueOrg, noise, seed)
	case c.huduCompany != 0:
		e.Hudu.AddCompany(c.huduCompany, c.name)
		e.Hudu.Generate(c.huduCompany, noise, seed)
	default:
		c.techVault = append(c.techVault, techvault.GenerateEntries(c.id, noise, seed)...)
	}
}

// seedPSA plants contacts in the customer's PSA company: one in three
// enabled users already has a contact with its email, and unrelated
// contacts fill the rest.
func (e *Env) seedPSA(c *customer, people []person) {
	seed := e.opts.Seed*1000 + uint64(c.idx)
	noise := max(5, e.opts.Accounts/2)
	switch c.psaKind {
	case "connectwise":
		e.ConnectWise.AddCompany(c.psaID, strings.ToUpper(c.slug), c.name)
	case "autotask":
		e.Autotask.AddCompany(int64(c.psaID), c.name)
	case "halopsa":
		e.HaloPSA.AddClient(c.psaID, c.name)
	}
	for j, p := range people {
		if !p.enabled || p.admin || p.mail == "" || j%3 != 0 {
			continue
		}
		switch c.psaKind {
		case "connectwise":
			e.ConnectWise.AddContact(cwtest.Contact{CompanyID: c.psaID, FirstName: p.given, LastName: p.sur, Email: p.mail})
		case "autotask":
			e.Autotask.AddContact(autotasktest.Contact{CompanyID: int64(c.psaID), FirstName: p.given, LastName: p.sur, EmailAddress: p.mail, IsActive: true})
		case "halopsa":
			e.HaloPSA.AddUser(halopsatest.User{ClientID: c.psaID, FirstName: p.given, Surname: p.sur, EmailAddress: p.mail, NetworkLogin: p.username})
		}
	}
	switch c.psaKind {
	case "connectwise":
		e.ConnectWise.Generate(c.psaID, noise, seed)
	case "autotask":
		e.Autotask.Generate(int64(c.psaID), noise, seed)
	case "halopsa":
		e.HaloPSA.Generate(c.psaID, noise, seed)
	}
}

// entryID is a Technician Vault entry id (16 bytes, hex, like the ones the
// vault makes), stable for a seed.
func entryID(seed uint64, customer, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "sandbox entry %d %d %d", seed, customer, n))
	return hex.EncodeToString(sum[:16])
}

// tenantID is a customer's Entra tenant id, stable for a seed.
func tenantID(seed uint64, idx int) string {
	r := rand.New(rand.NewPCG(seed, uint64(idx)+0x7e4a))
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// namer makes realistic, unique names and sAMAccountNames.
type namer struct {
	r    *rand.Rand
	used map[string]int
}

func newNamer(r *rand.Rand) *namer { return &namer{r: r, used: map[string]int{}} }

func (n *namer) next() person {
	g, s := givenNames[n.r.IntN(len(givenNames))], surnames[n.r.IntN(len(surnames))]
	if n.r.IntN(2) == 0 {
		// Double-barrelled surnames keep namesakes rare in big directories,
		// as they are among real people.
		s += "-" + surnames[n.r.IntN(len(surnames))]
	}
	sam := strings.ToLower(g + "." + s)
	if len(sam) > 17 {
		sam = sam[:17]
	}
	n.used[sam]++
	if k := n.used[sam]; k > 1 {
		sam = fmt.Sprintf("%s%d", sam, k)
	}
	return person{given: g, sur: s, display: g + " " + s, username: sam}
}

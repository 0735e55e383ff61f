// Package adtest is an in-process Active Directory stand-in for tests,
// benchmarks and the sandbox: an LDAP server (github.com/jimlambrt/gldap)
// over a deterministic, generated directory that behaves like a domain
// controller where autoimport depends on it — simple paged results with a
// server page limit of 1,000 (sizeLimitExceeded for unpaged searches over
// it), LDAP_MATCHING_RULE_IN_CHAIN, the bitwise matching rules, binary
// objectGUID/objectSid, primaryGroupID, memberOf without the primary group,
// result 49 "data 52e" for a wrong bind, password resets (unicodePwd)
// taken only over TLS and checked against the domain's password policy
// (see password.go), and what incremental readers need (changes.go,
// dirsync.go, views.go): DirSync with incremental values and cookies bound
// to the DC, uSNChanged and highestCommittedUSN with the DC's invocationId,
// tombstones under CN=Deleted Objects seen with Show Deleted, the Extended
// DN control, range retrieval past MaxValRange, renames and moves of whole
// subtrees, and controls to switch or restore the DC.
package adtest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/msp-tools/autoimport/sources/ad"
)

// Attribute is one attribute of an entry. Values hold raw bytes for
// binary attributes (objectGUID, objectSid).
type Attribute struct {
	Name   string
	Values []string
}

// Entry is one directory object.
type Entry struct {
	DN    string
	key   string // lower-cased DN
	attrs map[string]*Attribute
	order []string // lower-cased names in insertion order
	// changes tracks what DirSync and uSNChanged polling report (see
	// changes.go).
	changes
}

// Get returns the values of an attribute (case-insensitive name).
func (e *Entry) Get(name string) []string {
	if a, ok := e.attrs[strings.ToLower(name)]; ok {
		return a.Values
	}
	return nil
}

// First returns the first value of an attribute, or "".
func (e *Entry) First(name string) string {
	if v := e.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (e *Entry) set(name string, values ...string) {
	k := strings.ToLower(name)
	if len(values) == 0 {
		if _, ok := e.attrs[k]; ok {
			delete(e.attrs, k)
			for i, n := range e.order {
				if n == k {
					e.order = append(e.order[:i:i], e.order[i+1:]...)
					break
				}
			}
		}
		return
	}
	if a, ok := e.attrs[k]; ok {
		a.Values = values
		return
	}
	e.attrs[k] = &Attribute{Name: name, Values: values}
	e.order = append(e.order, k)
}

func (e *Entry) add(name string, value string) {
	k := strings.ToLower(name)
	if a, ok := e.attrs[k]; ok {
		for _, v := range a.Values {
			if strings.EqualFold(v, value) {
				return
			}
		}
		a.Values = append(a.Values, value)
		return
	}
	e.set(name, value)
}

func (e *Entry) remove(name string, value string) {
	a, ok := e.attrs[strings.ToLower(name)]
	if !ok {
		return
	}
	for i, v := range a.Values {
		if strings.EqualFold(v, value) {
			a.Values = append(a.Values[:i:i], a.Values[i+1:]...)
			break
		}
	}
	if len(a.Values) == 0 {
		e.set(name)
	}
}

// Directory is a domain's objects in a stable order. It is safe for
// concurrent use; the server reads it while tests seed it.
type Directory struct {
	mu sync.RWMutex
	// BaseDN is the domain naming context, e.g. DC=corp,DC=example,DC=test.
	BaseDN string
	// DNSName is the domain's DNS name, e.g. corp.example.test.
	DNSName string
	// NetBIOS is the domain's NetBIOS name, e.g. CORP.
	NetBIOS string
	// SID is the domain SID.
	SID ad.SID

	entries []*Entry
	byDN    map[string]*Entry
	nextRID uint32
	rng     *rand.Rand
	version uint64
	usn     int
	// pw holds the accounts' passwords and the password policy.
	pw passwordState
	// guids finds an entry's DN key by its raw objectGUID, built on first
	// use and extended as entries are added (none is ever removed).
	guidMu sync.Mutex
	guids  map[string]string
	guided int // how many of entries guids holds
	// dc is the domain controller answering (see SwitchDC).
	dc dcIdentity
	// changeLog lists the entries in the order of their USNs (see
	// logChange).
	changeLog []logged
}

// Well-known containers and groups of every generated directory, relative
// to BaseDN.
const (
	UsersContainer     = "CN=Users"
	BuiltinContainer   = "CN=Builtin"
	ComputersContainer = "CN=Computers"
)

// NewDirectory makes an empty domain with the containers, built-in and
// well-known groups (Administrators, Domain Admins, Domain Users, ...) and
// the Administrator, Guest and krbtgt accounts that every AD domain has.
// dnsName is e.g. "corp.example.test"; seed makes GUIDs and SIDs
// deterministic.
func NewDirectory(dnsName, netbios string, seed uint64) *Directory {
	labels := strings.Split(dnsName, ".")
	dcs := make([]string, len(labels))
	for i, l := range labels {
		dcs[i] = "DC=" + l
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := &Directory{
		BaseDN:  strings.Join(dcs, ","),
		DNSName: dnsName,
		NetBIOS: netbios,
		SID:     ad.SID{Revision: 1, Authority: 5, Sub: []uint32{21, rng.Uint32() >> 1, rng.Uint32() >> 1, rng.Uint32() >> 1}},
		byDN:    map[string]*Entry{},
		nextRID: 1103,
		rng:     rng,
	}
	base := d.BaseDN
	head := d.put(base, "domainDNS", "")
	head.set("objectSid", string(d.SID.Bytes()))
	head.set("objectCategory", "CN=Domain-DNS,CN=Schema,CN=Configuration,"+base)
	for _, c := range []string{UsersContainer, BuiltinContainer, ComputersContainer} {
		d.put(c+","+base, "container", "")
	}
	conf := "CN=Configuration," + base
	d.put(conf, "configuration", "")
	d.put("CN=Partitions,"+conf, "crossRefContainer", "")
	xref := d.put("CN="+netbios+",CN=Partitions,"+conf, "crossRef", "")
	xref.set("nCName", base)
	xref.set("nETBIOSName", netbios)
	xref.set("dnsRoot", dnsName)

	builtinSID := func(rid uint32) ad.SID { return ad.SID{Revision: 1, Authority: 5, Sub: []uint32{32, rid}} }
	for _, b := range []struct {
		name string
		rid  uint32
	}{
		{"Administrators", 544}, {"Users", 545}, {"Guests", 546}, {"Account Operators", 548},
		{"Server Operators", 549}, {"Print Operators", 550}, {"Backup Operators", 551}, {"Remote Desktop Users", 555},
	} {
		d.addGroupSID("CN="+b.name+","+BuiltinContainer+","+base, b.name, builtinSID(b.rid), -2147483643)
	}
	for _, g := range []struct {
		name string
		rid  uint32
	}{
		{"Domain Admins", 512}, {"Domain Users", 513}, {"Domain Guests", 514}, {"Domain Computers", 515},
		{"Schema Admins", 518}, {"Enterprise Admins", 519}, {"Group Policy Creator Owners", 520},
	} {
		d.addGroupSID("CN="+g.name+","+UsersContainer+","+base, g.name, d.SID.WithRID(g.rid), -2147483646)
	}
	users := UsersContainer + "," + base
	builtin := BuiltinContainer + "," + base
	d.mustMember("CN=Administrators,"+builtin, "CN=Domain Admins,"+users)
	d.mustMember("CN=Administrators,"+builtin, "CN=Enterprise Admins,"+users)
	d.mustMember("CN=Users,"+builtin, "CN=Domain Users,"+users)
	d.mustMember("CN=Guests,"+builtin, "CN=Domain Guests,"+users)

	admin := d.addUserRID(User{Parent: users, SAM: "Administrator", GivenName: "", Surname: "", UAC: 66048}, 500)
	for _, g := range []string{"Domain Admins", "Schema Admins", "Enterprise Admins", "Group Policy Creator Owners"} {
		d.mustMember("CN="+g+","+users, admin.DN)
	}
	d.mustMember("CN=Administrators,"+builtin, admin.DN)
	guest := d.addUserRID(User{Parent: users, SAM: "Guest", UAC: 66082, PrimaryGroupID: 514}, 501)
	d.mustMember("CN=Guests,"+builtin, guest.DN)
	d.addUserRID(User{Parent: users, SAM: "krbtgt", UAC: 514}, 502)
	d.addDeletedObjects()
	d.dc = d.newDC("dc1")
	return d
}

// put adds an entry with objectClass top + class and a GUID.
func (d *Directory) put(dn, class, category string) *Entry {
	key := strings.ToLower(dn)
	if _, ok := d.byDN[key]; ok {
		panic(fmt.Sprintf("adtest: entry %q exists", dn))
	}
	e := &Entry{DN: dn, key: key, attrs: map[string]*Attribute{}}
	classes := []string{"top"}
	switch class {
	case "user":
		classes = append(classes, "person", "organizationalPerson", "user")
	case "computer":
		classes = append(classes, "person", "organizationalPerson", "user", "computer")
	case "gmsa":
		classes = append(classes, "person", "organizationalPerson", "user", "computer", "msDS-GroupManagedServiceAccount")
	case "contact":
		classes = append(classes, "person", "organizationalPerson", "contact")
	default:
		classes = append(classes, class)
	}
	e.set("objectClass", classes...)
	if rdn, _, ok := strings.Cut(dn, ","); ok {
		if _, v, ok := strings.Cut(rdn, "="); ok {
			e.set(strings.ToLower(strings.SplitN(rdn, "=", 2)[0]), v)
			e.set("name", v)
		}
	}
	e.set("distinguishedName", dn)
	var g [16]byte
	binary.LittleEndian.PutUint64(g[:8], d.rng.Uint64())
	binary.LittleEndian.PutUint64(g[8:], d.rng.Uint64())
	g[7] = g[7]&0x0f | 0x40 // version 4 in the mixed-endian layout
	g[8] = g[8]&0x3f | 0x80
	e.set("objectGUID", string(g[:]))
	e.id = string(g[:])
	if category != "" {
		e.set("objectCategory", "CN="+category+",CN=Schema,CN=Configuration,"+d.BaseDN)
	}
	d.usn++
	e.created, e.usn = d.usn, d.usn
	e.set("uSNChanged", strconv.Itoa(d.usn))
	e.set("whenChanged", changeTime(d.usn))
	d.logChange(e)
	d.entries = append(d.entries, e)
	d.byDN[key] = e
	d.version++
	return e
}

func (d *Directory) addGroupSID(dn, name string, sid ad.SID, groupType int) *Entry {
	e := d.put(dn, "group", "Group")
	e.set("sAMAccountName", name)
	e.set("objectSid", string(sid.Bytes()))
	e.set("groupType", strconv.Itoa(groupType))
	return e
}

// User describes a user to add. Zero fields get defaults.
type User struct {
	// Parent is the DN of the OU or container.
	Parent string
	// SAM is the sAMAccountName; the CN defaults to the display name.
	SAM         string
	CN          string
	GivenName   string
	Surname     string
	DisplayName string
	Mail        string
	UPN         string
	// UAC is userAccountControl (default 512, enabled normal account).
	UAC int
	// PrimaryGroupID defaults to 513 (Domain Users).
	PrimaryGroupID uint32
}

func (d *Directory) addUserRID(u User, rid uint32) *Entry {
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.GivenName + " " + u.Surname)
	}
	if u.CN == "" {
		u.CN = u.DisplayName
		if u.CN == "" {
			u.CN = u.SAM
		}
	}
	if u.UAC == 0 {
		u.UAC = 512
	}
	if u.PrimaryGroupID == 0 {
		u.PrimaryGroupID = 513
	}
	e := d.put("CN="+escapeRDN(u.CN)+","+u.Parent, "user", "Person")
	e.set("sAMAccountName", u.SAM)
	e.set("sAMAccountType", "805306368")
	if u.UPN == "" && u.SAM != "" {
		u.UPN = u.SAM + "@" + d.DNSName
	}
	e.set("userPrincipalName", u.UPN)
	if u.GivenName != "" {
		e.set("givenName", u.GivenName)
	}
	if u.Surname != "" {
		e.set("sn", u.Surname)
	}
	if u.DisplayName != "" {
		e.set("displayName", u.DisplayName)
	}
	if u.Mail != "" {
		e.set("mail", u.Mail)
	}
	e.set("userAccountControl", strconv.Itoa(u.UAC))
	e.set("primaryGroupID", strconv.FormatUint(uint64(u.PrimaryGroupID), 10))
	e.set("objectSid", string(d.SID.WithRID(rid).Bytes()))
	return e
}

// rdnEscaper escapes the characters an RDN value must not hold raw.
var rdnEscaper = strings.NewReplacer(",", `\,`, "+", `\+`, `"`, `\"`, `\`, `\\`, "<", `\<`, ">", `\>`, ";", `\;`, "=", `\=`)

func escapeRDN(v string) string { return rdnEscaper.Replace(v) }

// AddOU adds an organizational unit (its parent must exist or be BaseDN).
func (d *Directory) AddOU(dn string) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.put(dn, "organizationalUnit", "Organizational-Unit")
}

// AddGroup adds a global security group with the next RID.
func (d *Directory) AddGroup(dn string) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	rid := d.nextRID
	d.nextRID++
	name, _, _ := strings.Cut(strings.TrimPrefix(dn, "CN="), ",")
	return d.addGroupSID(dn, name, d.SID.WithRID(rid), -2147483646)
}

// AddUser adds a user with the next RID.
func (d *Directory) AddUser(u User) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	rid := d.nextRID
	d.nextRID++
	return d.addUserRID(u, rid)
}

// AddComputer adds a computer account (sAMAccountName ends in $,
// userAccountControl 4096, primary group Domain Computers).
func (d *Directory) AddComputer(parent, name string) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	rid := d.nextRID
	d.nextRID++
	e := d.put("CN="+name+","+parent, "computer", "Computer")
	e.set("sAMAccountName", name+"$")
	e.set("sAMAccountType", "805306369")
	e.set("userAccountControl", "4096")
	e.set("primaryGroupID", "515")
	e.set("dNSHostName", strings.ToLower(name)+"."+d.DNSName)
	e.set("objectSid", string(d.SID.WithRID(rid).Bytes()))
	return e
}

// AddGMSA adds a group-managed service account.
func (d *Directory) AddGMSA(parent, name string) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	rid := d.nextRID
	d.nextRID++
	e := d.put("CN="+name+","+parent, "gmsa", "ms-DS-Group-Managed-Service-Account")
	e.set("sAMAccountName", name+"$")
	e.set("userAccountControl", "4096")
	e.set("primaryGroupID", "515")
	e.set("objectSid", string(d.SID.WithRID(rid).Bytes()))
	return e
}

// AddContact adds a mail contact (no account, no SID).
func (d *Directory) AddContact(parent, name, mail string) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.put("CN="+escapeRDN(name)+","+parent, "contact", "Person")
	e.set("displayName", name)
	e.set("mail", mail)
	return e
}

// AddMember adds member to group, maintaining the memberOf back-link as AD
// does (the primary group is never in member/memberOf).
func (d *Directory) AddMember(groupDN, memberDN string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addMember(groupDN, memberDN)
}

func (d *Directory) mustMember(groupDN, memberDN string) {
	if err := d.addMember(groupDN, memberDN); err != nil {
		panic(err)
	}
}

func (d *Directory) addMember(groupDN, memberDN string) error {
	g, ok := d.byDN[strings.ToLower(groupDN)]
	if !ok {
		return fmt.Errorf("adtest: no group %q", groupDN)
	}
	m, ok := d.byDN[strings.ToLower(memberDN)]
	if !ok {
		return fmt.Errorf("adtest: no entry %q", memberDN)
	}
	if g.deleted || m.deleted {
		return fmt.Errorf("adtest: %q or %q is deleted", groupDN, memberDN)
	}
	if l := g.links[m]; l != nil && l.active {
		return nil
	}
	g.add("member", m.DN)
	m.add("memberOf", g.DN)
	d.stampLink(g, m, true)
	return nil
}

// RemoveMember undoes AddMember.
func (d *Directory) RemoveMember(groupDN, memberDN string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, gok := d.byDN[strings.ToLower(groupDN)]
	m, mok := d.byDN[strings.ToLower(memberDN)]
	if gok {
		g.remove("member", memberDN)
	}
	if mok {
		m.remove("memberOf", groupDN)
	}
	if gok && mok {
		if l := g.links[m]; l != nil && l.active {
			d.stampLink(g, m, false)
		}
	}
	d.version++
}

// Set replaces (or with no values, deletes) an attribute of an entry, as
// an LDAP modify does (disabling an account, changing its primary group),
// and plants malformed values (bad GUIDs, invalid UTF-8, odd
// userAccountControl) for tests. The change gets the next USN. Renames and
// moves go through Rename.
func (d *Directory) Set(dn, attr string, values ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok {
		return fmt.Errorf("adtest: no entry %q", dn)
	}
	e.set(attr, values...)
	d.stamp(e, attr)
	return nil
}

// Lookup returns a copy of an entry's attributes, or false.
func (d *Directory) Lookup(dn string) (map[string][]string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok {
		return nil, false
	}
	out := make(map[string][]string, len(e.order))
	for _, k := range e.order {
		a := e.attrs[k]
		out[a.Name] = append([]string(nil), a.Values...)
	}
	return out, true
}

// GUID returns the canonical objectGUID string of an entry.
func (d *Directory) GUID(dn string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok {
		return ""
	}
	s, _ := ad.GUIDString([]byte(e.First("objectGUID")))
	return s
}

// Len is the number of entries.
func (d *Directory) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.entries)
}

// DN helpers relative to BaseDN.

// Users returns "CN=Users,<base>".
func (d *Directory) Users() string { return UsersContainer + "," + d.BaseDN }

// Builtin returns "CN=Builtin,<base>".
func (d *Directory) Builtin() string { return BuiltinContainer + "," + d.BaseDN }

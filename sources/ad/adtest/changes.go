package adtest

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sources/ad"
)

// Changes, as a domain controller records them for replication and for the
// clients that read incrementally (DirSync, uSNChanged polling).
//
// Every change takes the next update sequence number (USN) of the DC and
// stamps the entry's uSNChanged. Like AD's replPropertyMetaData, each
// replicated attribute remembers the USN of its last change (a removal
// too), and each member link of a group remembers when it was added or
// removed (link value replication): DirSync answers with exactly the
// attributes and link values changed after a cookie's USN. Back-links
// (memberOf), uSNChanged and whenChanged are not replicated and never
// reported. A membership change stamps the group, never the member.
//
// Deleting an object leaves a tombstone, as AD does without the recycle
// bin: isDeleted TRUE, the DN mangled into CN=Deleted Objects
// ("CN=name\0ADEL:guid,CN=Deleted Objects,<base>"), most attributes
// (objectCategory among them) and every membership stripped. Tombstones are
// seen only with the Show Deleted control, and by DirSync. Restoring one
// brings its attributes back with new USNs, without its memberships.

// changes is an entry's replication metadata.
type changes struct {
	// id is the objectGUID the entry was created with: the identity a DC
	// keeps whatever a test plants in the objectGUID attribute.
	id string
	// created is the USN of the entry's creation; attributes without a
	// later change in meta were set then. usn is its uSNChanged.
	created, usn int
	// meta holds, per lower-cased attribute name, the USN of its last
	// change after the creation (removals included), and names the name
	// it was changed under, for reporting a removal.
	meta  map[string]int
	names map[string]string
	// links are a group's member links, removed ones included.
	links map[*Entry]*link
	// deleted marks a tombstone; stripped holds what the deletion took
	// away, for a restore.
	deleted  bool
	stripped []*Attribute
}

// link is one member link of a group.
type link struct {
	usn    int
	active bool
}

// notReplicated are the attributes a DC never sends to DirSync.
var notReplicated = map[string]bool{"memberof": true, "usnchanged": true, "whenchanged": true, "distinguishedname": true, "usncreated": true}

// tombstoneKeeps are the attributes a tombstone keeps.
var tombstoneKeeps = map[string]bool{"objectclass": true, "objectguid": true, "objectsid": true, "samaccountname": true,
	"distinguishedname": true, "usnchanged": true, "whenchanged": true, "name": true, "cn": true, "ou": true}

// changeTime is whenChanged for a change with that USN: a fixed clock, so
// generated directories are the same on every run.
func changeTime(usn int) string {
	return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(usn) * time.Second).Format("20060102150405.0Z")
}

// stamp gives a change of e's attributes the next USN. Caller holds d.mu.
func (d *Directory) stamp(e *Entry, attrs ...string) int {
	d.usn++
	if e.meta == nil {
		e.meta, e.names = map[string]int{}, map[string]string{}
	}
	for _, a := range attrs {
		e.meta[strings.ToLower(a)] = d.usn
		e.names[strings.ToLower(a)] = a
	}
	e.usn = d.usn
	e.set("uSNChanged", strconv.Itoa(d.usn))
	e.set("whenChanged", changeTime(d.usn))
	d.logChange(e)
	d.version++
	return d.usn
}

// logged is an entry as it was at one USN.
type logged struct {
	usn int
	e   *Entry
}

// logChange records that e changed at its current USN. The log is in USN
// order, so DirSync finds what changed after a cookie without sorting the
// directory; an entry changed again is skipped at its older places.
// Caller holds d.mu.
func (d *Directory) logChange(e *Entry) {
	d.changeLog = append(d.changeLog, logged{usn: e.usn, e: e})
}

// stampLink records that member m of group g was added or removed. Caller
// holds d.mu.
func (d *Directory) stampLink(g, m *Entry, active bool) {
	usn := d.stamp(g)
	if g.links == nil {
		g.links = map[*Entry]*link{}
	}
	g.links[m] = &link{usn: usn, active: active}
}

// attrChanged reports the USN of the last change of an attribute (lower
// case) and whether it is known: present attributes date from their
// creation at the latest, absent ones only when they were removed.
func (e *Entry) attrChanged(name string) (int, bool) {
	if usn, ok := e.meta[name]; ok {
		return usn, true
	}
	if _, ok := e.attrs[name]; ok {
		return e.created, true
	}
	return 0, false
}

// deletedObjects is the DN of the domain's Deleted Objects container.
func (d *Directory) deletedObjects() string { return "CN=Deleted Objects," + d.BaseDN }

// addDeletedObjects adds the Deleted Objects container, itself deleted so
// that only Show Deleted finds it. Its objectGUID is derived from the
// domain, so adding it leaves the generated directory's other GUIDs as
// they were.
func (d *Directory) addDeletedObjects() {
	e := &Entry{DN: d.deletedObjects(), key: strings.ToLower(d.deletedObjects()), attrs: map[string]*Attribute{}}
	e.set("objectClass", "top", "container")
	e.set("cn", "Deleted Objects")
	e.set("name", "Deleted Objects")
	e.set("isDeleted", "TRUE")
	e.set("distinguishedName", e.DN)
	sum := sha256.Sum256([]byte("deleted objects " + d.BaseDN))
	e.id = string(sum[:16])
	e.set("objectGUID", e.id)
	d.usn++
	e.created, e.usn = d.usn, d.usn
	e.set("uSNChanged", strconv.Itoa(d.usn))
	e.set("whenChanged", changeTime(d.usn))
	d.logChange(e)
	e.deleted = true
	d.entries = append(d.entries, e)
	d.byDN[e.key] = e
}

// parentDN is the DN of the entry's parent ("" for the naming context).
func parentDN(dn string) string {
	p, err := ldapParent(dn)
	if err != nil {
		return ""
	}
	return p
}

// rdn splits a DN's first RDN into its attribute and (escaped) value.
func rdn(dn string) (attr, value string) {
	first := dn
	for i := 0; i < len(dn); i++ {
		if dn[i] == '\\' {
			i++
			continue
		}
		if dn[i] == ',' {
			first = dn[:i]
			break
		}
	}
	attr, value, _ = strings.Cut(first, "=")
	return attr, value
}

// ldapParent returns the DN without its first RDN, honouring escaped
// commas.
func ldapParent(dn string) (string, error) {
	for i := 0; i < len(dn); i++ {
		if dn[i] == '\\' {
			i++
			continue
		}
		if dn[i] == ',' {
			return dn[i+1:], nil
		}
	}
	return "", fmt.Errorf("DN %q has no parent", dn)
}

// unescapeRDN undoes escapeRDN for the values the fake writes.
func unescapeRDN(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Rename gives an entry a new DN: a rename (new RDN), a move (new parent)
// or both, as a modify DN request does. The entries below it move with it,
// and every member and memberOf value naming one of them follows (links
// are by object, not by name). Only the entry itself is stamped: its name
// and RDN attribute change, not its memberships nor its children.
func (d *Directory) Rename(dn, newDN string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok || e.deleted {
		return fmt.Errorf("adtest: no entry %q", dn)
	}
	if _, taken := d.byDN[strings.ToLower(newDN)]; taken {
		return fmt.Errorf("adtest: entry %q exists", newDN)
	}
	parent := parentDN(newDN)
	if p, ok := d.byDN[strings.ToLower(parent)]; !ok || p.deleted || p == e || strings.HasSuffix(p.key, ","+e.key) {
		return fmt.Errorf("adtest: no parent %q for %q", parent, newDN)
	}
	oldKey := e.key
	moved := []*Entry{e}
	for _, x := range d.entries {
		if !x.deleted && strings.HasSuffix(x.key, ","+oldKey) {
			moved = append(moved, x)
		}
	}
	to := make([]string, len(moved))
	for i, x := range moved {
		to[i] = x.DN[:len(x.DN)-len(e.DN)] + newDN
	}
	for i, x := range moved {
		d.moveEntry(x, to[i])
	}
	attr, value := rdn(newDN)
	e.set(attr, unescapeRDN(value))
	e.set("name", unescapeRDN(value))
	d.stamp(e, "name", attr)
	return nil
}

// moveEntry changes x's DN to to and rewrites the member and memberOf
// values that name x. Caller holds d.mu.
func (d *Directory) moveEntry(x *Entry, to string) {
	old := x.DN
	delete(d.byDN, x.key)
	x.DN, x.key = to, strings.ToLower(to)
	d.byDN[x.key] = x
	x.set("distinguishedName", to)
	for _, gdn := range x.Get("memberOf") {
		if g, ok := d.byDN[strings.ToLower(gdn)]; ok {
			replaceValue(g, "member", old, to)
		}
	}
	for _, mdn := range x.Get("member") {
		if m, ok := d.byDN[strings.ToLower(mdn)]; ok {
			replaceValue(m, "memberOf", old, to)
		}
	}
	d.guidMu.Lock()
	d.guids, d.guided = nil, 0
	d.guidMu.Unlock()
	d.version++
}

func replaceValue(e *Entry, attr, from, to string) {
	a, ok := e.attrs[strings.ToLower(attr)]
	if !ok {
		return
	}
	for i, v := range a.Values {
		if strings.EqualFold(v, from) {
			a.Values[i] = to
		}
	}
}

// Delete deletes an entry, leaving a tombstone: its memberships are
// removed (each group holding it, and each member of a deleted group, is
// stamped), most attributes are stripped and its DN moves into CN=Deleted
// Objects. A container with live entries below it cannot be deleted.
func (d *Directory) Delete(dn string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok || e.deleted {
		return fmt.Errorf("adtest: no entry %q", dn)
	}
	for _, x := range d.entries {
		if !x.deleted && strings.HasSuffix(x.key, ","+e.key) {
			return fmt.Errorf("adtest: %q is not a leaf (%q is below it)", dn, x.DN)
		}
	}
	for _, gdn := range append([]string(nil), e.Get("memberOf")...) {
		if g, ok := d.byDN[strings.ToLower(gdn)]; ok {
			g.remove("member", e.DN)
			d.stampLink(g, e, false)
		}
	}
	e.set("memberOf")
	for _, mdn := range append([]string(nil), e.Get("member")...) {
		if m, ok := d.byDN[strings.ToLower(mdn)]; ok {
			m.remove("memberOf", e.DN)
			d.stampLink(e, m, false)
		}
	}
	var stripped []string
	e.stripped = nil
	for _, k := range append([]string(nil), e.order...) {
		if tombstoneKeeps[k] || k == "member" {
			continue
		}
		a := e.attrs[k]
		e.stripped = append(e.stripped, &Attribute{Name: a.Name, Values: append([]string(nil), a.Values...)})
		stripped = append(stripped, k)
		e.set(k)
	}
	e.set("member")
	guid, _ := ad.GUIDString([]byte(e.id))
	attr, value := rdn(e.DN)
	name := unescapeRDN(value) + "\nDEL:" + guid
	e.set("lastKnownParent", parentDN(e.DN))
	e.set("isDeleted", "TRUE")
	e.set("name", name)
	e.set(attr, name)
	e.deleted = true
	d.moveEntry(e, attr+"="+escapeRDN(unescapeRDN(value))+`\0ADEL:`+guid+","+d.deletedObjects())
	d.stamp(e, append(stripped, "isDeleted", "lastKnownParent", "name", attr)...)
	return nil
}

// Restore brings a deleted object (by its objectGUID in text form) back
// under dn, as reanimating a tombstone does: the stripped attributes
// return, with new USNs; the memberships do not.
func (d *Directory) Restore(guid, dn string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	raw, err := ad.GUIDBytes(guid)
	if err != nil {
		return err
	}
	var e *Entry
	for _, x := range d.entries {
		if x.deleted && x.id == string(raw) && x.key != strings.ToLower(d.deletedObjects()) {
			e = x
		}
	}
	if e == nil {
		return fmt.Errorf("adtest: no deleted object %s", guid)
	}
	if _, taken := d.byDN[strings.ToLower(dn)]; taken {
		return fmt.Errorf("adtest: entry %q exists", dn)
	}
	if p, ok := d.byDN[strings.ToLower(parentDN(dn))]; !ok || p.deleted {
		return fmt.Errorf("adtest: no parent for %q", dn)
	}
	attrs := []string{"isDeleted", "lastKnownParent", "name"}
	for _, a := range e.stripped {
		e.set(a.Name, a.Values...)
		attrs = append(attrs, a.Name)
	}
	e.stripped = nil
	e.set("isDeleted")
	e.set("lastKnownParent")
	oldAttr, _ := rdn(e.DN)
	e.set(oldAttr)
	attr, value := rdn(dn)
	e.set(attr, unescapeRDN(value))
	e.set("name", unescapeRDN(value))
	e.deleted = false
	d.moveEntry(e, dn)
	d.stamp(e, append(attrs, attr)...)
	return nil
}

// DeletedGUID returns the objectGUID (text form) of the deleted object last
// known under dn, for Restore; "" when there is none.
func (d *Directory) DeletedGUID(dn string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, value := rdn(dn)
	want := strings.ToLower(unescapeRDN(value))
	parent := strings.ToLower(parentDN(dn))
	for i := len(d.entries) - 1; i >= 0; i-- {
		x := d.entries[i]
		if !x.deleted || !strings.EqualFold(x.First("lastKnownParent"), parent) {
			continue
		}
		name, _, _ := strings.Cut(x.First("name"), "\nDEL:")
		if strings.ToLower(name) == want {
			s, _ := ad.GUIDString([]byte(x.id))
			return s
		}
	}
	return ""
}

// HighestUSN is the DC's highestCommittedUSN.
func (d *Directory) HighestUSN() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.usn
}

// dcIdentity is the domain controller a Directory is served by: its host
// name and its invocationId, which a restore of its database changes.
type dcIdentity struct {
	name       string // e.g. "DC1"
	invocation string // 16 raw bytes
}

// newDC names a DC and gives it an invocationId.
func (d *Directory) newDC(name string) dcIdentity {
	return dcIdentity{name: strings.ToUpper(name), invocation: d.newInvocation(name)}
}

// newInvocation derives an invocationId from the domain, a tag and the
// USN, so directories stay deterministic.
func (d *Directory) newInvocation(tag string) string {
	sum := sha256.Sum256([]byte("invocation " + d.BaseDN + " " + tag + " " + strconv.Itoa(d.usn)))
	return string(sum[:16])
}

// SwitchDC makes another domain controller answer, as when the DNS name
// clients use points at another DC: a new dnsHostName, dsServiceName and
// invocationId. Its USNs are its own: the DC's counter jumps, so positions
// kept for the old DC mean nothing here.
func (d *Directory) SwitchDC(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.usn += 100000
	d.dc = d.newDC(name)
}

// RestoreDC gives the DC a new invocationId, as restoring its database
// from a backup does.
func (d *Directory) RestoreDC() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dc.invocation = d.newInvocation(d.dc.name + " restored")
}

// DCHostName is the answering DC's dnsHostName.
func (d *Directory) DCHostName() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.dcHostName()
}

func (d *Directory) dcHostName() string { return strings.ToLower(d.dc.name) + "." + d.DNSName }

// dsServiceName is the DN of the answering DC's NTDS Settings object.
func (d *Directory) dsServiceName() string {
	return "CN=NTDS Settings,CN=" + d.dc.name + ",CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration," + d.BaseDN
}

// InvocationID is the answering DC's invocationId in text form.
func (d *Directory) InvocationID() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	s, _ := ad.GUIDString([]byte(d.dc.invocation))
	return s
}

// Find returns the DNs of the live entries an LDAP filter matches, in the
// directory's order: for tests that pick what to change.
func (d *Directory) Find(filter string) ([]string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	match, err := d.compileFilter(filter)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range d.entries {
		if !e.deleted && match(e) {
			out = append(out, e.DN)
		}
	}
	return out, nil
}

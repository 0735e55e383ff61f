package ad

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// The local copy of a directory (see Read) keeps, per object, its DN and
// the attributes classification reads, with values as the DC sent them
// (invalid UTF-8 and bad GUIDs included, so that CopyAccounts reports a
// broken entry exactly as Accounts does). Memberships are kept as links,
// not as memberOf values.

// copyAttrs are the attributes the local copy keeps.
var copyAttrs = []string{
	"objectGUID", "objectClass", "objectCategory", "sAMAccountName", "userPrincipalName",
	"displayName", "givenName", "sn", "mail", "userAccountControl", "primaryGroupID",
	"whenChanged", "mS-DS-ConsistencyGuid", "objectSid",
}

// copyAttrNames maps lower-cased names to the spelling classification
// reads.
var copyAttrNames = func() map[string]string {
	m := make(map[string]string, len(copyAttrs))
	for _, a := range copyAttrs {
		m[strings.ToLower(a)] = a
	}
	return m
}()

// copyFilter matches what the local copy holds: users (computers and
// managed service accounts are users too), contacts, groups, and the
// containers they live in (for renames and moves of whole subtrees, and to
// tell a missing OU from an empty one).
const copyFilter = "(|(objectClass=user)(objectClass=contact)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container)(objectClass=builtinDomain)(objectClass=domainDNS))"

// The kinds of object in the local copy.
const (
	kindAccount   = "account"   // user, computer, managed service account, contact
	kindGroup     = "group"     // group
	kindContainer = "container" // OU, container, the domain head
	kindOther     = "other"     // not (yet) known: no objectClass seen
	// kindProblem records an entry a read could not take into the copy;
	// CopyAccounts reports it as an entry error.
	kindProblem = "problem"
)

// copyObject is one object of the local copy.
type copyObject struct {
	dn    string
	attrs map[string][][]byte // by the names of copyAttrs
}

func newCopyObject(dn string) *copyObject { return &copyObject{dn: dn, attrs: map[string][][]byte{}} }

// set replaces an attribute's values; no values removes it.
func (o *copyObject) set(name string, vals [][]byte) {
	if len(vals) == 0 {
		delete(o.attrs, name)
		return
	}
	o.attrs[name] = vals
}

func (o *copyObject) first(name string) string {
	if v := o.attrs[name]; len(v) > 0 {
		return string(v[0])
	}
	return ""
}

func (o *copyObject) classes() []string {
	out := make([]string, len(o.attrs["objectClass"]))
	for i, v := range o.attrs["objectClass"] {
		out[i] = string(v)
	}
	return out
}

// kind tells what the object is from its classes.
func (o *copyObject) kind() string {
	c := o.classes()
	switch {
	case hasValueFold(c, "group"):
		return kindGroup
	case hasValueFold(c, "user") || hasValueFold(c, "contact"):
		return kindAccount
	case hasValueFold(c, "organizationalUnit") || hasValueFold(c, "container") || hasValueFold(c, "builtinDomain") || hasValueFold(c, "domainDNS"):
		return kindContainer
	}
	return kindOther
}

// entry turns the object into the entry classification reads, with the
// given memberOf values.
func (o *copyObject) entry(memberOf []string) *ldap.Entry {
	var buf [16]docAttr // the attributes of copyAttrs, on the stack
	attrs := buf[:0]
	for name, vals := range o.attrs {
		attrs = append(attrs, docAttr{name, vals})
	}
	slices.SortFunc(attrs, func(a, b docAttr) int { return strings.Compare(a.name, b.name) })
	return entryOf(o.dn, attrs, memberOf)
}

// copyEntry decodes a stored object straight into the entry
// classification reads, as decodeCopyObject and entry would: every account
// of a domain goes through it at each selection, so it builds no map.
func copyEntry(b []byte, memberOf []string) (*ldap.Entry, error) {
	var buf [16]docAttr
	dn, attrs, err := readCopyDoc(b, buf[:0])
	if err != nil {
		return nil, err
	}
	// encode writes the attributes in order, each once; a document that
	// does not is read as the map of decodeCopyObject holds it: the last
	// of one name wins.
	slices.SortStableFunc(attrs, func(a, b docAttr) int { return strings.Compare(a.name, b.name) })
	kept := attrs[:0]
	for i, a := range attrs {
		if i+1 < len(attrs) && attrs[i+1].name == a.name {
			continue
		}
		kept = append(kept, a)
	}
	return entryOf(dn, kept, memberOf), nil
}

// entryOf builds an entry of attrs (in order) and memberOf, its attributes
// and their values' slices allocated together.
func entryOf(dn string, attrs []docAttr, memberOf []string) *ldap.Entry {
	values := 0
	for _, a := range attrs {
		values += len(a.vals)
	}
	n := len(attrs)
	if len(memberOf) > 0 {
		n++
	}
	eas := make([]ldap.EntryAttribute, len(attrs))
	ptrs := make([]*ldap.EntryAttribute, n)
	strs := make([]string, values)
	for i, a := range attrs {
		vals := strs[:len(a.vals):len(a.vals)]
		strs = strs[len(a.vals):]
		for j, v := range a.vals {
			vals[j] = string(v)
		}
		eas[i] = ldap.EntryAttribute{Name: a.name, Values: vals, ByteValues: a.vals}
		ptrs[i] = &eas[i]
	}
	if len(memberOf) > 0 {
		ptrs[n-1] = ldap.NewEntryAttribute("memberOf", memberOf)
	}
	return &ldap.Entry{DN: dn, Attributes: ptrs}
}

// Versions of an encoded object, its first byte. Version 1 named each
// attribute in full; version 2, written since, names the attributes of
// copyAttrs by their place in it (one byte), so that a domain's copy, and
// what a full read holds and stages of it, is about half the size. Both
// decode.
const (
	copyDocV1      = 1
	copyDocVersion = 2
)

// copyAttrCodes maps an attribute of copyAttrs to its code in version 2:
// its place in copyAttrs plus one. Code 0 is followed by the name.
var copyAttrCodes = func() map[string]byte {
	m := make(map[string]byte, len(copyAttrs))
	for i, a := range copyAttrs {
		m[a] = byte(i + 1)
	}
	return m
}()

// encode serialises the object: the version byte, then the DN and each
// attribute (its code, or 0 and its name, then its values) as
// length-prefixed strings, into a slice of exactly its size.
func (o *copyObject) encode() []byte {
	names := make([]string, 0, len(o.attrs))
	size := 1 + uvarintLen(len(o.dn)) + len(o.dn) + uvarintLen(len(o.attrs))
	for n, vs := range o.attrs {
		names = append(names, n)
		size++
		if copyAttrCodes[n] == 0 {
			size += uvarintLen(len(n)) + len(n)
		}
		size += uvarintLen(len(vs))
		for _, v := range vs {
			size += uvarintLen(len(v)) + len(v)
		}
	}
	sort.Strings(names)
	b := make([]byte, 0, size)
	b = append(b, copyDocVersion)
	b = appendString(b, o.dn)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		code := copyAttrCodes[n]
		b = append(b, code)
		if code == 0 {
			b = appendString(b, n)
		}
		b = binary.AppendUvarint(b, uint64(len(o.attrs[n])))
		for _, v := range o.attrs[n] {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadDoc reports a stored object that does not decode.
var errBadDoc = errors.New("stored object does not decode")

// decodeCopyObject reads what encode wrote.
func decodeCopyObject(b []byte) (*copyObject, error) {
	var buf [16]docAttr
	dn, attrs, err := readCopyDoc(b, buf[:0])
	if err != nil {
		return nil, err
	}
	o := &copyObject{dn: dn, attrs: make(map[string][][]byte, len(attrs))}
	for _, a := range attrs {
		o.attrs[a.name] = a.vals
	}
	return o, nil
}

// docAttr is an attribute of an encoded object, its values slices of the
// document.
type docAttr struct {
	name string
	vals [][]byte
}

// readCopyDoc reads what encode wrote: the DN, and the attributes in the
// document's order, appended to attrs. The values' slices share one
// array, sized for an object whose attributes have a value each but
// objectClass.
func readCopyDoc(b []byte, attrs []docAttr) (string, []docAttr, error) {
	if len(b) == 0 || (b[0] != copyDocVersion && b[0] != copyDocV1) {
		return "", nil, fmt.Errorf("%w: unknown version", errBadDoc)
	}
	version := b[0]
	r := docReader{b: b[1:]}
	dn := r.bytes().str()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errBadDoc
		n = 0
	}
	slab := make([][]byte, 0, n+4)
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := r.name(version)
		nv := r.uvarint()
		if nv > uint64(len(r.b)) {
			r.err = errBadDoc
			break
		}
		var vals [][]byte
		if l := uint64(len(slab)); uint64(cap(slab))-l >= nv {
			vals, slab = slab[l:l:l+nv], slab[:l+nv]
		} else {
			vals = make([][]byte, 0, nv)
		}
		for j := uint64(0); j < nv && r.err == nil; j++ {
			vals = append(vals, r.bytes())
		}
		attrs = append(attrs, docAttr{name, vals})
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadDoc
	}
	if r.err != nil {
		return "", nil, fmt.Errorf("%w: truncated or trailing bytes", errBadDoc)
	}
	return dn, attrs, nil
}

type docReader struct {
	b   []byte
	err error
}

type docBytes []byte

func (d docBytes) str() string { return string(d) }

func (r *docReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadDoc
		return 0
	}
	r.b = r.b[n:]
	return v
}

// name reads an attribute's name: in version 2 its code, or 0 and the
// name.
func (r *docReader) name(version byte) string {
	if version == copyDocV1 {
		return r.bytes().str()
	}
	if r.err != nil || len(r.b) == 0 {
		r.err = errBadDoc
		return ""
	}
	code := r.b[0]
	r.b = r.b[1:]
	switch {
	case code == 0:
		return r.bytes().str()
	case int(code) <= len(copyAttrs):
		return copyAttrs[code-1]
	}
	r.err = errBadDoc
	return ""
}

func (r *docReader) bytes() docBytes {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBadDoc
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return docBytes(v)
}

// rdnValue is the value of a DN's first RDN ("" when the DN does not
// parse): a group's cn.
func rdnValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return ""
	}
	return parsed.RDNs[0].Attributes[0].Value
}

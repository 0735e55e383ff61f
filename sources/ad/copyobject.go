package ad

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	e := &ldap.Entry{DN: o.dn}
	names := make([]string, 0, len(o.attrs))
	for n := range o.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		raw := o.attrs[n]
		vals := make([]string, len(raw))
		for i, v := range raw {
			vals[i] = string(v)
		}
		e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: n, Values: vals, ByteValues: raw})
	}
	if len(memberOf) > 0 {
		e.Attributes = append(e.Attributes, ldap.NewEntryAttribute("memberOf", memberOf))
	}
	return e
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
	if len(b) == 0 || (b[0] != copyDocVersion && b[0] != copyDocV1) {
		return nil, fmt.Errorf("%w: unknown version", errBadDoc)
	}
	version := b[0]
	r := docReader{b: b[1:]}
	o := newCopyObject(r.bytes().str())
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := r.name(version)
		nv := r.uvarint()
		if nv > uint64(len(r.b)) {
			r.err = errBadDoc
			break
		}
		vals := make([][]byte, 0, nv)
		for j := uint64(0); j < nv && r.err == nil; j++ {
			vals = append(vals, r.bytes())
		}
		o.attrs[name] = vals
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadDoc
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: truncated or trailing bytes", errBadDoc)
	}
	return o, nil
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

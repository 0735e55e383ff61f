package ad

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// dirEntry is one object as an incremental read saw it: from DirSync
// (only what changed) or from a search (the whole object).
type dirEntry struct {
	// id is the object's identity in the copy (see objectID).
	id string
	// dn is the plain DN; a tombstone's may be mangled or empty.
	dn      string
	deleted bool
	// attrs holds the copy's attributes the entry carried, by the names
	// of copyAttrs; a DirSync entry's removed attribute has no values.
	attrs map[string][][]byte
	// members is what the entry said of a group's member attribute, nil
	// when nothing.
	members *memberChange
	// problems are values that could not be read (an unreadable member
	// value): the entry is kept without them.
	problems []string
}

// memberChange is what an entry says of a group's members, by object id.
type memberChange struct {
	// added and removed are DirSync's incremental values
	// (member;range=1-1 and member;range=0-0).
	added, removed []string
	// all is a whole member list (a search, or DirSync without
	// incremental values) when whole is true; next > 0 says that range
	// retrieval must go on from that index.
	all   []string
	whole bool
	next  int
}

// objectID is the copy's key of an object: the objectGUID in text form
// (from the Extended DN, else from the attribute). An object whose GUID
// cannot be read, which a DC never sends, is kept under a key made from
// the raw value or the DN, so that CopyAccounts reports it as Accounts
// would.
func objectID(guid []byte, dn string) (string, error) {
	switch {
	case len(guid) == 16:
		return GUIDString(guid)
	case len(guid) > 0:
		sum := sha256.Sum256(guid)
		return "guid:" + hex.EncodeToString(sum[:16]), nil
	case dn != "":
		sum := sha256.Sum256([]byte(dnKey(dn)))
		return "dn:" + hex.EncodeToString(sum[:16]), nil
	}
	return "", fmt.Errorf("no objectGUID and no DN")
}

// decodeEntry reads an entry of a DirSync answer (dirSync true) or of a
// search with the Extended DN control. An entry that cannot be identified
// is an *sources.EntryError; an unreadable member value is a problem of
// an entry that is otherwise kept.
func decodeEntry(e *ldap.Entry, dirSync bool) (dirEntry, *sources.EntryError) {
	bad := func(format string, a ...any) (dirEntry, *sources.EntryError) {
		return dirEntry{}, &sources.EntryError{Source: sources.KindAD, Entry: e.DN, Reason: fmt.Sprintf(format, a...)}
	}
	x, err := parseExtendedDN(e.DN)
	if err != nil {
		return bad("%v", err)
	}
	guid := x.guid
	if guid == nil {
		guid = e.GetEqualFoldRawAttributeValue("objectGUID")
	}
	id, err := objectID(guid, x.dn)
	if err != nil {
		return bad("%v", err)
	}
	d := dirEntry{id: id, dn: x.dn, attrs: map[string][][]byte{}}
	for _, a := range e.Attributes {
		name, opts, _ := strings.Cut(a.Name, ";")
		lower := strings.ToLower(name)
		switch {
		case lower == "isdeleted":
			d.deleted = len(a.Values) > 0 && strings.EqualFold(a.Values[0], "TRUE")
		case lower == "member":
			if err := d.member(opts, a.Values, dirSync); err != nil {
				return bad("%v", err)
			}
		case copyAttrNames[lower] != "" && opts != "":
			d.problems = append(d.problems, fmt.Sprintf("%s came with options %q (more values than the DC's MaxValRange?)", name, opts))
		case copyAttrNames[lower] != "":
			canon := copyAttrNames[lower]
			vals := make([][]byte, len(a.ByteValues))
			for i, v := range a.ByteValues {
				vals[i] = append([]byte(nil), v...)
			}
			if canon == "objectCategory" {
				vals = d.plainDNs(vals)
			}
			d.attrs[canon] = vals
		}
	}
	return d, nil
}

// plainDNs strips the Extended DN prefixes off DN values (objectCategory).
func (d *dirEntry) plainDNs(vals [][]byte) [][]byte {
	for i, v := range vals {
		x, err := parseExtendedDN(string(v))
		if err != nil {
			d.problems = append(d.problems, fmt.Sprintf("objectCategory %q: %v", v, err))
			continue
		}
		vals[i] = []byte(x.dn)
	}
	return vals
}

// member reads a member attribute: DirSync's incremental values, a whole
// list, or one part of a range retrieval.
func (d *dirEntry) member(opts string, values []string, dirSync bool) error {
	if d.members == nil {
		d.members = &memberChange{}
	}
	ids := func() []string {
		out := make([]string, 0, len(values))
		for _, v := range values {
			x, err := parseExtendedDN(v)
			if err == nil && len(x.guid) == 0 {
				err = fmt.Errorf("no <GUID=...>")
			}
			var id string
			if err == nil {
				id, err = objectID(x.guid, x.dn)
			}
			if err != nil {
				d.problems = append(d.problems, fmt.Sprintf("member value %q: %v", v, err))
				continue
			}
			out = append(out, id)
		}
		return out
	}
	if opts == "" {
		d.members.all, d.members.whole = append(d.members.all, ids()...), true
		return nil
	}
	low, high, ok := rangeOption(opts)
	switch {
	case !ok:
		return fmt.Errorf("member attribute with options %q", opts)
	case dirSync && low == 1 && high == 1:
		d.members.added = append(d.members.added, ids()...)
	case dirSync && low == 0 && high == 0:
		d.members.removed = append(d.members.removed, ids()...)
	case dirSync:
		return fmt.Errorf("DirSync member values with range=%d-%d", low, high)
	default:
		if low != len(d.members.all) {
			return fmt.Errorf("member range %d-%d after %d values", low, high, len(d.members.all))
		}
		d.members.all, d.members.whole = append(d.members.all, ids()...), true
		d.members.next = 0
		if high >= 0 {
			d.members.next = high + 1
		}
	}
	return nil
}

// rangeOption reads "range=low-high" (high -1 for "*").
func rangeOption(opts string) (low, high int, ok bool) {
	spec, found := strings.CutPrefix(strings.ToLower(opts), "range=")
	if !found {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	low, err := strconv.Atoi(lo)
	if err != nil || low < 0 {
		return 0, 0, false
	}
	if hi == "*" {
		return low, -1, true
	}
	high, err = strconv.Atoi(hi)
	if err != nil || high < low {
		return 0, 0, false
	}
	return low, high, true
}

// cookieInvocation reads the invocationId of the DC that made a DirSync
// cookie: the cookie is MS-ADTS's Cookie structure ("MSDS", version,
// creation time, reserved, vector size, the USN vector, then the source
// DSA's invocationId at byte 52).
func cookieInvocation(c []byte) (string, bool) {
	if len(c) < 68 || string(c[:4]) != "MSDS" {
		return "", false
	}
	s, err := GUIDString(c[52:68])
	return s, err == nil
}

package adtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/msp-tools/autoimport/sources/ad"
)

// DirSync (LDAP_SERVER_DIRSYNC_OID, MS-ADTS 3.1.1.3.4.1.3), as a DC answers
// it:
//
//   - the request's base must be the naming context's root; the scope is
//     always the whole subtree; the filter is applied to the objects as
//     they are now (tombstones keep objectClass, not objectCategory);
//   - the bind account needs "Replicating Directory Changes" unless the
//     request sets the object-security flag (DenyDirSync withholds it:
//     50 insufficientAccessRights);
//   - without a cookie every object comes with every requested attribute;
//     with one, only the objects changed after the cookie's USN, with only
//     their changed attributes (a removed attribute as one without
//     values), objectGUID and instanceType; the RDN attribute,
//     back-links (memberOf), uSNChanged and whenChanged never;
//   - with the incremental-values flag, member changes come as
//     member;range=1-1 (added) and member;range=0-0 (removed) values;
//     without it, a changed member attribute comes whole;
//   - deleted objects come as tombstones: isDeleted TRUE, the DN mangled
//     into CN=Deleted Objects, stripped attributes without values; with
//     the object-security flag, only objectGUID and isDeleted under an
//     empty DN;
//   - at most MaxPageSize objects per answer, the response control's flag
//     saying more follow; the cookie is the documented structure (MS-ADTS
//     "Cookie": "MSDS", version 3, the USN vector, the DC's invocationId),
//     so a cookie is bound to the DC that made it: another DC's (or an
//     earlier invocation's) is refused with 53 unwillingToPerform, a
//     garbled one with 12 unavailableCriticalExtension, as Samba does.

// The DirSync request flags the fake reads.
const (
	dirSyncObjectSecurity    = 0x00000001
	dirSyncIncrementalValues = 0x80000000
)

// AD's diagnostics for refused DirSync requests.
const (
	diagDirSyncRights   = "00000005: SecErr: DSID-03152857, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n\x00"
	diagDirSyncBase     = "00002024: SvcErr: DSID-03100D0F, problem 5003 (WILL_NOT_PERFORM), data 0: DirSync needs the naming context's root as base\n\x00"
	diagDirSyncGarbled  = "0000202C: Unable to unmarshall cookie as a ldapControlDirSyncCookie structure"
	diagDirSyncOtherDSA = "00002024: SvcErr: DSID-03100D0F, problem 5003 (WILL_NOT_PERFORM), data 0: the cookie comes from another DC or an earlier invocation of this one\n\x00"
)

// cookieHeader is the size of the Cookie structure before its up-to-date
// vector.
const cookieHeader = 68

// dirSyncCookie is a cookie's content.
type dirSyncCookie struct {
	// objUSN is how far the objects were read (usnHighObjUpdate);
	// propUSN the USN whose later attribute changes are reported
	// (usnHighPropUpdate). They differ while an answer says more follow.
	objUSN, propUSN int
	invocation      string
}

func (c dirSyncCookie) encode(now time.Time) []byte {
	b := make([]byte, cookieHeader)
	copy(b, "MSDS")
	binary.LittleEndian.PutUint32(b[4:], 3)
	binary.LittleEndian.PutUint64(b[8:], uint64(ad.TimeToFiletime(now)))
	binary.LittleEndian.PutUint32(b[24:], 0) // no up-to-date vector
	binary.LittleEndian.PutUint64(b[28:], uint64(c.objUSN))
	binary.LittleEndian.PutUint64(b[44:], uint64(c.propUSN))
	copy(b[52:], c.invocation)
	return b
}

func parseCookie(b []byte) (dirSyncCookie, error) {
	if len(b) < cookieHeader || string(b[:4]) != "MSDS" || binary.LittleEndian.Uint32(b[4:]) != 3 {
		return dirSyncCookie{}, errors.New("not a DirSync cookie")
	}
	if utd := binary.LittleEndian.Uint32(b[24:]); int64(utd) != int64(len(b)-cookieHeader) {
		return dirSyncCookie{}, errors.New("cookie length does not match its vector")
	}
	obj, prop := binary.LittleEndian.Uint64(b[28:]), binary.LittleEndian.Uint64(b[44:])
	if obj > 1<<62 || prop > 1<<62 {
		return dirSyncCookie{}, errors.New("cookie USN out of range")
	}
	return dirSyncCookie{objUSN: int(obj), propUSN: int(prop), invocation: string(b[52:68])}, nil
}

// dirSyncRequest decodes the request control's value: SEQUENCE { flags
// INTEGER, maxAttrCount INTEGER, cookie OCTET STRING }.
func dirSyncRequest(c gldap.Control) (flags int64, cookie []byte, err error) {
	cs, ok := c.(*gldap.ControlString)
	if !ok {
		return 0, nil, fmt.Errorf("DirSync control of type %T", c)
	}
	p, err := ber.DecodePacketErr([]byte(cs.ControlValue))
	if err != nil {
		return 0, nil, fmt.Errorf("DirSync control value: %w", err)
	}
	if len(p.Children) != 3 {
		return 0, nil, fmt.Errorf("DirSync control value has %d fields, want 3", len(p.Children))
	}
	flags, err = ber.ParseInt64(p.Children[0].Data.Bytes())
	if err != nil {
		return 0, nil, fmt.Errorf("DirSync flags: %w", err)
	}
	return flags & 0xffffffff, p.Children[2].Data.Bytes(), nil
}

// HideDeletedObjects makes CN=Deleted Objects unreadable to the bind
// account (true), as it is to every account but administrators by
// default: a search there answers 32 noSuchObject even with Show Deleted.
func (s *Server) HideDeletedObjects(hide bool) { s.deletedHidden.Store(hide) }

// DenyDirSync withholds (true) or grants (false) the bind account's
// "Replicating Directory Changes" right: DirSync without the
// object-security flag then fails with 50 insufficientAccessRights.
func (s *Server) DenyDirSync(deny bool) { s.dirSyncDenied.Store(deny) }

func (s *Server) dirSync(w *gldap.ResponseWriter, r *gldap.Request, m *gldap.SearchMessage, ctl gldap.Control) {
	s.dirSyncs.Add(1)
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	fail := func(code int, diag string) {
		done.SetResultCode(code)
		done.SetDiagnosticMessage(diag)
		_ = w.Write(done)
	}
	flags, rawCookie, err := dirSyncRequest(ctl)
	if err != nil {
		fail(gldap.ResultProtocolError, err.Error())
		return
	}
	if flags&dirSyncObjectSecurity == 0 && s.dirSyncDenied.Load() {
		fail(gldap.ResultInsufficientAccessRights, diagDirSyncRights)
		return
	}
	d := s.dir
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !strings.EqualFold(strings.TrimSpace(m.BaseDN), d.BaseDN) {
		fail(gldap.ResultUnwillingToPerform, diagDirSyncBase)
		return
	}
	var from dirSyncCookie
	if len(rawCookie) > 0 {
		if from, err = parseCookie(rawCookie); err != nil {
			fail(gldap.ResultUnavailableCriticalExtension, diagDirSyncGarbled)
			return
		}
		if from.invocation != d.dc.invocation {
			fail(gldap.ResultUnwillingToPerform, diagDirSyncOtherDSA)
			return
		}
	}
	match, err := d.compileFilter(m.Filter)
	if err != nil {
		fail(gldap.ResultProtocolError, err.Error())
		return
	}
	v := searchView(m.Controls)
	sent, more := 0, false
	next := dirSyncCookie{objUSN: d.usn, propUSN: d.usn, invocation: d.dc.invocation}
	last := from.objUSN // the USN of the last object looked at
	for i := sort.Search(len(d.changeLog), func(i int) bool { return d.changeLog[i].usn > from.objUSN }); i < len(d.changeLog); i++ {
		l := d.changeLog[i]
		if l.usn != l.e.usn || !match(l.e) {
			continue // changed again later, or not asked for
		}
		if sent == s.opts.MaxPageSize {
			more = true
			next = dirSyncCookie{objUSN: last, propUSN: from.propUSN, invocation: d.dc.invocation}
			break
		}
		last = l.usn
		dn, attrs := d.dirSyncEntry(l.e, m.Attributes, from.propUSN, flags, v)
		if attrs == nil {
			continue
		}
		if err := w.Write(r.NewSearchResponseEntry(dn, gldap.WithAttributes(attrs))); err != nil {
			return
		}
		sent++
	}
	s.entries.Add(int64(sent))
	var moreFlag int64
	if more {
		moreFlag = 1
	}
	done.SetControls(ldap.NewRequestControlDirSync(moreFlag, 0, next.encode(d.clock())))
	_ = w.Write(done)
}

// dirSyncEntry is what DirSync reports of e when changes after propUSN
// matter: its DN and attributes, or nil attributes when none of the
// requested ones changed. Caller holds d.mu.
func (d *Directory) dirSyncEntry(e *Entry, want []string, propUSN int, flags int64, v view) (string, map[string][]string) {
	if e.deleted && flags&dirSyncObjectSecurity != 0 {
		return "", map[string][]string{"objectGUID": {e.id}, "isDeleted": {"TRUE"}}
	}
	all := len(want) == 0
	names := map[string]string{} // lower -> as requested
	for _, w := range want {
		if w == "*" {
			all = true
			continue
		}
		names[strings.ToLower(w)] = w
	}
	if all {
		for _, k := range e.order {
			names[k] = e.attrs[k].Name
		}
		for k, n := range e.names {
			if _, ok := names[k]; !ok {
				names[k] = n
			}
		}
		names["member"] = "member"
	}
	rdnAttr, _ := rdn(e.DN)
	out := map[string][]string{}
	for k, asked := range names {
		switch {
		case k == "objectguid" || k == "instancetype" || notReplicated[k] || k == strings.ToLower(rdnAttr):
			continue
		case k == "member":
			d.dirSyncMembers(e, propUSN, flags, v, out)
			continue
		}
		usn, known := e.attrChanged(k)
		if !known || usn <= propUSN {
			continue
		}
		a, ok := e.attrs[k]
		if !ok {
			if propUSN > 0 { // a first read reports what is, not what was removed
				out[asked] = []string{}
			}
			continue
		}
		vals := a.Values
		if v.extendedDN && dnSyntax[k] {
			vals = d.extendValues(a.Name, vals)
		}
		out[a.Name] = vals
	}
	if len(out) == 0 {
		return "", nil
	}
	if g := e.First("objectGUID"); g != "" {
		out["objectGUID"] = []string{g}
	}
	out["instanceType"] = []string{"4"}
	if v.extendedDN {
		return extendedDN(e), out
	}
	return e.DN, out
}

// dirSyncMembers adds a group's member changes after propUSN to out.
// Caller holds d.mu.
func (d *Directory) dirSyncMembers(e *Entry, propUSN int, flags int64, v view, out map[string][]string) {
	name := func(m *Entry) string {
		if v.extendedDN {
			return extendedDN(m)
		}
		return m.DN
	}
	changed := false
	var added, removed []*Entry
	for m, l := range e.links {
		if l.usn <= propUSN {
			continue
		}
		changed = true
		if l.active {
			added = append(added, m)
		} else {
			removed = append(removed, m)
		}
	}
	if !changed {
		return
	}
	byUSN := func(list []*Entry) []string {
		sort.Slice(list, func(i, j int) bool { return e.links[list[i]].usn < e.links[list[j]].usn })
		vals := make([]string, len(list))
		for i, m := range list {
			vals[i] = name(m)
		}
		return vals
	}
	if flags&dirSyncIncrementalValues == 0 {
		vals := e.Get("member")
		if v.extendedDN {
			vals = d.extendValues("member", vals)
		}
		out["member"] = vals
		return
	}
	if len(added) > 0 {
		out["member;range=1-1"] = byUSN(added)
	}
	if len(removed) > 0 {
		out["member;range=0-0"] = byUSN(removed)
	}
}

package ad

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// uSNChanged polling, where the bind account may not use DirSync.
//
// Every change on a DC raises its update sequence number; the rootDSE's
// highestCommittedUSN, read before the search, bounds what the search
// sees. USNs are the DC's own, so the position holds the DC (dsServiceName)
// and its invocationId, and any other answers with a full read. Changed
// objects come whole; a membership change raises the group's uSNChanged,
// not the member's, so a changed group's whole member list is read (range
// retrieval past MaxValRange) and diffed against the copy. Deleted objects
// are found in CN=Deleted Objects with the Show Deleted control; where the
// bind account cannot read that container, by listing the GUIDs of every
// object and dropping the ones gone.

// dcInfo is what a DC says of itself.
type dcInfo struct {
	usn                       int64
	service, host, invocation string
}

// dcState reads the DC's highestCommittedUSN, dsServiceName and
// dnsHostName from the rootDSE and its invocationId from its NTDS Settings
// object.
func (ss *session) dcState(ctx context.Context) (dcInfo, error) {
	root, err := ss.baseEntry(ctx, "rootDSE", "", "highestCommittedUSN", "dsServiceName", "dnsHostName")
	if err != nil {
		return dcInfo{}, err
	}
	dc := dcInfo{service: root.GetAttributeValue("dsServiceName"), host: root.GetAttributeValue("dnsHostName")}
	if dc.usn, err = strconv.ParseInt(root.GetAttributeValue("highestCommittedUSN"), 10, 64); err != nil || dc.service == "" {
		return dcInfo{}, ss.src.errorf(fmt.Errorf("rootDSE without highestCommittedUSN or dsServiceName"), "read the DC's update sequence number")
	}
	ntds, err := ss.baseEntry(ctx, "the DC's NTDS Settings", dc.service, "invocationId")
	if err != nil {
		return dcInfo{}, err
	}
	if dc.invocation, err = GUIDString(ntds.GetRawAttributeValue("invocationId")); err != nil {
		return dcInfo{}, ss.src.errorf(err, "read the invocationId of %q", dc.service)
	}
	return dc, nil
}

// dcChanged says why a position kept for one DC is no good on dc.
func dcChanged(tok syncToken, dc dcInfo) string {
	switch {
	case !strings.EqualFold(dc.service, tok.Service):
		return fmt.Sprintf("another DC answered (%s, was %s)", firstNonEmpty(dc.host, dc.service), firstNonEmpty(tok.DC, tok.Service))
	case dc.invocation != tok.InvocationID:
		return fmt.Sprintf("the DC's invocationId changed (restored from a backup?): %s, was %s", dc.invocation, tok.InvocationID)
	}
	return ""
}

// usnChanges reads what changed on the DC since tok.USN.
func (ss *session) usnChanges(ctx context.Context, copies sources.CopyStore, customer string, tok syncToken) (*changeSet, syncToken, string, error) {
	next := tok
	dc, err := ss.dcState(ctx)
	if err != nil {
		return nil, next, "", err
	}
	if reason := dcChanged(tok, dc); reason != "" {
		return nil, next, reason, nil
	}
	base := tok.Domain.BaseDN
	cs := newChangeSet(false)
	if err := ss.searchChanged(ctx, base, tok.USN, cs); err != nil {
		return nil, next, "", err
	}
	if tok.DeletedHidden {
		err = ss.dropMissing(ctx, copies, customer, base, cs)
	} else {
		err = ss.searchDeleted(ctx, base, tok.USN, cs)
		if le, ok := serverRefusal(err); ok && ctx.Err() == nil {
			return nil, next, fmt.Sprintf("CN=Deleted Objects is no longer readable (LDAP result %d)", le.ResultCode), nil
		}
	}
	if err != nil {
		return nil, next, "", err
	}
	next.USN = dc.usn
	return cs, next, "", nil
}

// searchAttrs are the attributes a uSNChanged search reads.
var searchAttrs = append(append([]string{}, copyAttrs...), "member")

// searchChanged reads every object with a uSNChanged above usn (every
// object for 0), whole, with the whole member list of each group.
func (ss *session) searchChanged(ctx context.Context, base string, usn int64, cs *changeSet) error {
	filter := copyFilter
	if usn > 0 {
		filter = "(&" + copyFilter + "(uSNChanged>=" + strconv.FormatInt(usn+1, 10) + "))"
	}
	var ranged []dirEntry
	err := ss.search(ctx, searchSpec{what: "changed objects", base: base, scope: ldap.ScopeWholeSubtree, filter: filter, attrs: searchAttrs,
		controls: []ldap.Control{ldap.NewControlString(controlExtendedDN, true, "")}}, func(e *ldap.Entry) bool {
		d, eerr := decodeEntry(e, false)
		if eerr != nil {
			cs.problems = append(cs.problems, problem{entry: eerr.Entry, reason: eerr.Reason})
			return true
		}
		if d.members != nil && d.members.next > 0 {
			ranged = append(ranged, d)
			return true
		}
		cs.add(d, true)
		return true
	})
	if err != nil {
		return err
	}
	for _, d := range ranged {
		if err := ss.moreMembers(ctx, &d); err != nil {
			return err
		}
		cs.add(d, true)
	}
	return nil
}

// moreMembers reads the rest of a group's member list by range retrieval.
func (ss *session) moreMembers(ctx context.Context, d *dirEntry) error {
	for d.members.next > 0 {
		at := d.members.next
		var got bool
		err := ss.search(ctx, searchSpec{what: "group members", base: d.dn, scope: ldap.ScopeBaseObject, filter: "(objectClass=*)",
			attrs: []string{"member;range=" + strconv.Itoa(at) + "-*"}, controls: []ldap.Control{ldap.NewControlString(controlExtendedDN, true, "")}},
			func(e *ldap.Entry) bool {
				for _, a := range e.Attributes {
					name, opts, _ := strings.Cut(a.Name, ";")
					if !strings.EqualFold(name, "member") {
						continue
					}
					got = true
					if err := d.member(opts, a.Values, false); err != nil {
						d.problems = append(d.problems, err.Error())
						d.members.next = 0
					}
				}
				return false
			})
		if err != nil {
			return err
		}
		if !got || d.members.next == at {
			d.members.next = 0 // the list shrank meanwhile: what came is all
		}
	}
	return nil
}

// deletedObjects is the DN of the domain's Deleted Objects container.
func deletedObjects(base string) string { return "CN=Deleted Objects," + base }

// searchDeleted reads the tombstones with a uSNChanged above usn.
func (ss *session) searchDeleted(ctx context.Context, base string, usn int64, cs *changeSet) error {
	filter := "(&(isDeleted=TRUE)(uSNChanged>=" + strconv.FormatInt(usn+1, 10) + "))"
	return ss.search(ctx, searchSpec{what: "deleted objects", base: deletedObjects(base), scope: ldap.ScopeSingleLevel, filter: filter,
		attrs: []string{"objectGUID", "isDeleted"}, controls: []ldap.Control{ldap.NewControlMicrosoftShowDeleted(), ldap.NewControlString(controlExtendedDN, true, "")}},
		func(e *ldap.Entry) bool {
			d, eerr := decodeEntry(e, false)
			if eerr == nil && d.deleted {
				cs.add(d, true)
			}
			return true
		})
}

// deletedHidden reports whether the bind account cannot read CN=Deleted
// Objects (by default only administrators can).
func (ss *session) deletedHidden(ctx context.Context, base string) (bool, error) {
	found := false
	err := ss.search(ctx, searchSpec{what: "the Deleted Objects container", base: deletedObjects(base), scope: ldap.ScopeBaseObject,
		filter: "(objectClass=*)", attrs: []string{"objectGUID"}, controls: []ldap.Control{ldap.NewControlMicrosoftShowDeleted()}},
		func(*ldap.Entry) bool { found = true; return false })
	if _, refused := serverRefusal(err); refused && ctx.Err() == nil {
		return true, nil
	}
	return !found, err
}

// dropMissing lists the GUIDs of every object and marks the stored ones
// no longer there as deleted.
func (ss *session) dropMissing(ctx context.Context, copies sources.CopyStore, customer, base string, cs *changeSet) error {
	live := map[string]bool{}
	err := ss.search(ctx, searchSpec{what: "object GUIDs", base: base, scope: ldap.ScopeWholeSubtree, filter: copyFilter,
		attrs: []string{"objectGUID"}, controls: []ldap.Control{ldap.NewControlString(controlExtendedDN, true, "")}},
		func(e *ldap.Entry) bool {
			if d, eerr := decodeEntry(e, false); eerr == nil {
				live[d.id] = true
			}
			return true
		})
	if err != nil {
		return err
	}
	for o, err := range copies.CopyObjects(ctx, customer, copySource) {
		if err != nil {
			return ss.src.errorf(err, "read the local copy")
		}
		if _, seen := cs.objs[o.ID]; !seen && !live[o.ID] && o.Kind != kindProblem {
			cs.add(dirEntry{id: o.ID, deleted: true}, true)
		}
	}
	return nil
}

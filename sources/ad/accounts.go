package ad

import (
	"context"
	"encoding/base64"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// userAccountControl bits that matter here.
const (
	uacDisabled         = 0x0002
	uacInterdomainTrust = 0x0800
	uacWorkstationTrust = 0x1000
	uacServerTrust      = 0x2000
)

// selectedByAdminsName is the SelectedBy entry for Selection.Admins.
const selectedByAdminsName = "privileged groups"

// userAttrs are read for every candidate.
var userAttrs = []string{
	"objectGUID", "objectClass", "objectCategory", "sAMAccountName", "userPrincipalName",
	"displayName", "givenName", "sn", "mail", "userAccountControl", "memberOf",
	"primaryGroupID", "whenChanged", "mS-DS-ConsistencyGuid",
}

// entryFilter lets through everything a selection can hold that a report
// should mention: users (and their subclasses computer and gMSA, which are
// then skipped with a reason) and contacts.
const entryFilter = "(|(objectClass=user)(objectClass=contact))"

// plan is a selection resolved against one directory.
type plan struct {
	info  Info
	graph *graph
	// priv are the privileged groups found, in preference order.
	priv []privRoot
	// sel are the selection's groups and built-ins.
	sel []selRoot
	// ous are the selected OUs, nested ones dropped (a subtree search of
	// the parent already covers them).
	ous []string
	// allOUs keeps every selected OU for SelectedBy.
	allOUs []string
	admins bool
	// members is the server filter matching the transitive members of
	// every selected group and built-in (and of the privileged groups when
	// admins are selected); empty when only OUs are selected.
	members         string
	includeDisabled bool
}

type privRoot struct {
	root
	g *group
}

type selRoot struct {
	root
	g *group
}

// Accounts streams the accounts of sel: for each, the classification
// (administrator when a transitive member of a privileged group, found by
// SID; end user otherwise) and, for non-candidates, a SkipReason. An
// account several selections match is yielded once, with all of them in
// SelectedBy (group and OU DNs and built-in names as given, and
// "privileged groups" for Selection.Admins). Administrators are always
// yielded as Type admin, whichever selection matched them.
//
// A malformed entry is yielded as a *sources.EntryError and the stream goes
// on; any other error ends it.
func (s *Source) Accounts(ctx context.Context, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		if sel.Empty() {
			return
		}
		ss, err := s.open(ctx)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		defer ss.close()
		p, err := ss.plan(ctx, sel)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		stopped := false
		emit := func(e *ldap.Entry) bool {
			acc, eerr := p.account(e)
			if eerr != nil {
				eerr.Source = sources.KindAD
				if !yield(sources.Account{Source: sources.KindAD, DN: e.DN}, eerr) {
					stopped = true
				}
				return !stopped
			}
			if !yield(acc, nil) {
				stopped = true
			}
			return !stopped
		}
		if p.members != "" {
			err := ss.search(ctx, searchSpec{what: "members of the selected groups", base: p.info.BaseDN, scope: ldap.ScopeWholeSubtree,
				filter: "(&" + entryFilter + "(|" + p.members + "))", attrs: userAttrs}, emit)
			if err != nil {
				yield(sources.Account{}, err)
				return
			}
			if stopped {
				return
			}
		}
		for _, ou := range p.ous {
			filter := entryFilter
			if p.members != "" {
				// Members of the selected groups were yielded above.
				filter = "(&" + entryFilter + "(!(|" + p.members + ")))"
			}
			err := ss.search(ctx, searchSpec{what: "accounts of the selected OU", base: ou, scope: ldap.ScopeWholeSubtree, filter: filter, attrs: userAttrs}, emit)
			if err != nil {
				yield(sources.Account{}, err)
				return
			}
			if stopped {
				return
			}
		}
	}
}

// plan discovers the domain, finds the privileged and selected groups and
// the groups nested in them.
func (ss *session) plan(ctx context.Context, sel sources.Selection) (*plan, error) {
	info, err := ss.discover(ctx)
	if err != nil {
		return nil, err
	}
	return buildPlan(ctx, ss.src, ss, info, sel)
}

// selectedGroup reads a group the selection names by DN.
func (ss *session) selectedGroup(ctx context.Context, dn string) (*ldap.Entry, error) {
	return ss.baseEntry(ctx, "selected group", dn, groupAttrs...)
}

// groupByName finds the one group whose sAMAccountName is name.
func (ss *session) groupByName(ctx context.Context, base, name string) (*ldap.Entry, error) {
	var found []*ldap.Entry
	err := ss.search(ctx, searchSpec{what: "group by name", base: base, scope: ldap.ScopeWholeSubtree,
		filter: "(&(objectClass=group)(sAMAccountName=" + ldap.EscapeFilter(name) + "))", attrs: groupAttrs},
		func(e *ldap.Entry) bool { found = append(found, e); return len(found) < 2 })
	switch {
	case err != nil:
		return nil, err
	case len(found) == 0:
		return nil, fmt.Errorf("no group with sAMAccountName %q under %q", name, base)
	case len(found) > 1:
		return nil, fmt.Errorf("several groups named %q: give the DN", name)
	}
	return found[0], nil
}

// findSID finds one group by its SID text (a Selection.Builtin given as SID).
func (ss *session) findSID(ctx context.Context, g *graph, sid SID, label string) (*group, error) {
	var gr *group
	err := ss.search(ctx, searchSpec{what: "group by SID", base: g.info.BaseDN, scope: ldap.ScopeWholeSubtree,
		filter: "(&(objectClass=group)(objectSid=" + ldap.EscapeFilter(string(sid.Bytes())) + "))", attrs: groupAttrs},
		func(e *ldap.Entry) bool { gr = g.add(e, label); return false })
	return gr, err
}

// dnUnder reports whether dn equals base or lies below it.
func dnUnder(dn, base string) bool {
	d, b := strings.TrimSpace(dn), strings.TrimSpace(base)
	if ascii(d) && ascii(b) { // as below, without lower-casing copies
		switch {
		case len(d) == len(b):
			return strings.EqualFold(d, b)
		case len(d) > len(b):
			return d[len(d)-len(b)-1] == ',' && strings.EqualFold(d[len(d)-len(b):], b)
		}
		return false
	}
	d, b = strings.ToLower(d), strings.ToLower(b)
	return d == b || strings.HasSuffix(d, ","+b)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasValueFold(values []string, want string) bool {
	for _, v := range values {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

// account classifies one entry.
func (p *plan) account(e *ldap.Entry) (sources.Account, *sources.EntryError) {
	bad := func(format string, a ...any) (sources.Account, *sources.EntryError) {
		return sources.Account{}, &sources.EntryError{Source: sources.KindAD, Entry: e.DN, Reason: fmt.Sprintf(format, a...)}
	}
	if !utf8.ValidString(e.DN) {
		return bad("DN is not valid UTF-8")
	}
	rawGUID := e.GetRawAttributeValue("objectGUID")
	if len(rawGUID) == 0 {
		return bad("no objectGUID")
	}
	id, err := GUIDString(rawGUID)
	if err != nil {
		return bad("bad objectGUID: %v", err)
	}
	str := func(name string) (string, bool) {
		v := e.GetAttributeValue(name)
		return v, utf8.ValidString(v)
	}
	acc := sources.Account{Source: sources.KindAD, ID: id, DN: e.DN, Domain: p.info.NetBIOS, Type: sources.EndUser}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"sAMAccountName", &acc.Username}, {"userPrincipalName", &acc.UPN}, {"displayName", &acc.DisplayName},
		{"givenName", &acc.GivenName}, {"sn", &acc.Surname}, {"mail", &acc.Email}, {"whenChanged", &acc.Changed},
	} {
		v, ok := str(f.name)
		if !ok {
			return bad("%s is not valid UTF-8", f.name)
		}
		*f.dst = v
	}
	acc.ImmutableID = base64.StdEncoding.EncodeToString(rawGUID)
	if cg := e.GetRawAttributeValue("mS-DS-ConsistencyGuid"); len(cg) == 16 {
		// Entra Connect anchors on mS-DS-ConsistencyGuid when it is set.
		acc.ImmutableID = base64.StdEncoding.EncodeToString(cg)
	}
	classes := e.GetAttributeValues("objectClass")
	start, primaryKey, groupsErr := p.directGroups(e)
	acc.SelectedBy = p.selectedBy(e, start, groupsErr == nil)

	// Non-people first: they carry a skip reason even without the
	// attributes a user must have.
	switch {
	case hasValueFold(classes, "contact"):
		acc.SkipReason = "contact"
		return acc, nil
	case hasValueFold(classes, "msDS-GroupManagedServiceAccount"):
		acc.SkipReason = "group-managed service account"
		return acc, nil
	case hasValueFold(classes, "msDS-ManagedServiceAccount"):
		acc.SkipReason = "managed service account"
		return acc, nil
	case hasValueFold(classes, "computer"):
		acc.SkipReason = "computer account"
		return acc, nil
	}
	uacText := e.GetAttributeValue("userAccountControl")
	uac, err := parseUAC(uacText)
	if err != nil {
		return bad("userAccountControl %q is not an integer", uacText)
	}
	switch {
	case uac&(uacWorkstationTrust|uacServerTrust) != 0:
		acc.SkipReason = fmt.Sprintf("computer account (userAccountControl %d)", uac)
		return acc, nil
	case uac&uacInterdomainTrust != 0:
		acc.SkipReason = fmt.Sprintf("trust account (userAccountControl %d)", uac)
		return acc, nil
	}
	if cat := e.GetAttributeValue("objectCategory"); cat != "" && !isPersonCategory(cat) {
		acc.SkipReason = fmt.Sprintf("not a person (objectCategory %s)", cat)
		return acc, nil
	}
	if acc.Username == "" {
		return bad("no sAMAccountName")
	}
	acc.Enabled = uac&uacDisabled == 0
	if groupsErr != nil {
		return bad("%v", groupsErr)
	}
	acc.TypeReason = "no privileged group membership"
	for _, pr := range p.priv {
		if chain, ok := p.graph.path(start, pr.key); ok {
			direct := start
			if primaryKey != "" {
				direct = start[:len(start)-1]
			}
			acc.Type = sources.Admin
			acc.TypeReason = p.graph.reason(pr.label, chain, viaPrimary(direct, chain, pr.key, primaryKey))
			break
		}
	}
	if !acc.Enabled && !p.includeDisabled {
		acc.SkipReason = fmt.Sprintf("disabled (userAccountControl %d)", uac)
	}
	return acc, nil
}

// directGroups returns the entry's direct groups (memberOf plus the primary
// group when it is in the graph) as lower-cased DNs, and the primary
// group's key.
func (p *plan) directGroups(e *ldap.Entry) ([]string, string, error) {
	start := memberKeys(e)
	primaryKey := ""
	if v := e.GetAttributeValue("primaryGroupID"); v != "" {
		rid, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("primaryGroupID %q is not an integer", v)
		}
		if key, ok := p.graph.byRID[uint32(rid)]; ok {
			primaryKey = key
			start = append(start, key)
		}
	}
	return start, primaryKey, nil
}

// memberKeys returns the entry's memberOf values as lower-cased DNs in
// order, so that of two equally short membership paths the same one wins
// whatever order the DC (or the local copy) lists them in.
func memberKeys(e *ldap.Entry) []string {
	mo := e.GetAttributeValues("memberOf")
	keys := make([]string, 0, len(mo)+1)
	for _, m := range mo {
		keys = append(keys, dnKey(m))
	}
	slices.Sort(keys)
	return keys
}

// viaPrimary reports whether the membership path to target starts at the
// primary group rather than at a memberOf value.
func viaPrimary(memberOf []string, chain []string, target, primaryKey string) bool {
	if primaryKey == "" {
		return false
	}
	first := target
	if len(chain) > 0 {
		first = chain[0]
	}
	if first != primaryKey {
		return false
	}
	for _, m := range memberOf {
		if m == primaryKey {
			return false
		}
	}
	return true
}

// selectedBy lists the selection items that hold the entry, whose direct
// groups are start (known says they could be read: else only its OUs
// count).
func (p *plan) selectedBy(e *ldap.Entry, start []string, known bool) []string {
	var out []string
	if known {
		for _, sr := range p.sel {
			if _, ok := p.graph.path(start, sr.key); ok {
				out = append(out, sr.label)
			}
		}
		if p.admins {
			for _, pr := range p.priv {
				if _, ok := p.graph.path(start, pr.key); ok {
					out = append(out, selectedByAdminsName)
					break
				}
			}
		}
	}
	for _, ou := range p.allOUs {
		if dnUnder(e.DN, ou) {
			out = append(out, ou)
		}
	}
	return out
}

// isPersonCategory accepts objectCategory given as a DN (CN=Person,CN=Schema,...)
// or as the short name.
func isPersonCategory(cat string) bool {
	first := cat
	if i := strings.IndexByte(cat, ','); i >= 0 {
		first = cat[:i]
	}
	first = strings.TrimPrefix(strings.TrimPrefix(first, "CN="), "cn=")
	return strings.EqualFold(first, "person")
}

package ad

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// groupLookup finds the groups a selection names: a session asks the DC,
// a copyGroups looks in the local copy of the directory.
type groupLookup interface {
	// findBySID adds the well-known groups found under base to g, by
	// objectSid, never by name.
	findBySID(ctx context.Context, g *graph, base string, wk []wellKnown) (map[string]*group, error)
	// selectedGroup returns the entry a selection names by DN (groupAttrs).
	selectedGroup(ctx context.Context, dn string) (*ldap.Entry, error)
	// groupByName finds the one group under base whose sAMAccountName is
	// name.
	groupByName(ctx context.Context, base, name string) (*ldap.Entry, error)
	// findSID adds the group with that SID to g.
	findSID(ctx context.Context, g *graph, sid SID, label string) (*group, error)
	// descendants adds every group nested in the roots to g.
	descendants(ctx context.Context, g *graph, roots []*group) error
}

// buildPlan resolves a selection against the domain: it finds the
// privileged groups by SID, the selected groups and built-ins, and every
// group nested in them, through groups: the DC (Accounts) or the local
// copy (CopyAccounts).
func buildPlan(ctx context.Context, src *Source, groups groupLookup, info Info, sel sources.Selection) (*plan, error) {
	g := &graph{info: info, groups: map[string]*group{}, byRID: map[uint32]string{}}
	p := &plan{info: info, graph: g, admins: sel.Admins, includeDisabled: sel.IncludeDisabled}

	// Privileged groups, by SID.
	var domainWK, forestWK []wellKnown
	for _, w := range privileged {
		if w.forest && !strings.EqualFold(info.RootDN, info.BaseDN) {
			forestWK = append(forestWK, w)
		} else {
			domainWK = append(domainWK, w)
		}
	}
	found, err := groups.findBySID(ctx, g, info.BaseDN, domainWK)
	if err != nil {
		return nil, err
	}
	if len(forestWK) > 0 {
		more, err := groups.findBySID(ctx, g, info.RootDN, forestWK)
		if err != nil {
			return nil, err
		}
		for k, v := range more {
			found[k] = v
		}
	}
	var roots []*group
	for _, w := range privileged {
		if gr, ok := found[w.name]; ok {
			p.priv = append(p.priv, privRoot{root: root{key: dnKey(gr.dn), label: w.name}, g: gr})
			roots = append(roots, gr)
		}
	}
	if len(p.priv) == 0 {
		return nil, src.errorf(fmt.Errorf("none of the privileged built-in groups (Domain Admins, Administrators, ...) is readable by %q", src.cfg.BindDN),
			"find privileged groups under %q (check base_dn and the bind account's read rights)", info.BaseDN)
	}

	// Selected groups, by DN (or by sAMAccountName when not a DN).
	for _, dn := range sel.Groups {
		var e *ldap.Entry
		var err error
		if strings.Contains(dn, "=") {
			e, err = groups.selectedGroup(ctx, dn)
		} else {
			e, err = groups.groupByName(ctx, info.BaseDN, dn)
		}
		if err != nil {
			return nil, src.errorf(err, "selected group %q (check the selection)", dn)
		}
		if !hasValueFold(e.GetAttributeValues("objectClass"), "group") {
			return nil, src.errorf(fmt.Errorf("not a group"), "selected group %q (check the selection)", dn)
		}
		gr := g.add(e, "")
		p.sel = append(p.sel, selRoot{root: root{key: dnKey(gr.dn), label: dn}, g: gr})
		roots = append(roots, gr)
	}
	// Built-in groups, by SID.
	for _, name := range sel.Builtin {
		w, sid, err := resolveBuiltin(name)
		if err != nil {
			return nil, src.errorf(err, "selection")
		}
		var gr *group
		if sid.Revision == 0 {
			base := info.BaseDN
			if w.forest {
				base = info.RootDN
			}
			m, err := groups.findBySID(ctx, g, base, []wellKnown{w})
			if err != nil {
				return nil, err
			}
			gr = m[w.name]
		} else {
			gr, err = groups.findSID(ctx, g, sid, name)
			if err != nil {
				return nil, err
			}
		}
		if gr == nil {
			return nil, src.errorf(fmt.Errorf("no group with that SID under %q", info.BaseDN), "selected built-in group %q", name)
		}
		p.sel = append(p.sel, selRoot{root: root{key: dnKey(gr.dn), label: name}, g: gr})
		roots = append(roots, gr)
	}
	if err := groups.descendants(ctx, g, roots); err != nil {
		return nil, err
	}
	var members strings.Builder
	seen := map[string]bool{}
	addTerms := func(terms []string) {
		for _, t := range terms {
			if !seen[t] {
				seen[t] = true
				members.WriteString(t)
			}
		}
	}
	for i := range p.priv {
		p.priv[i].setMembers(g, p.priv[i].g.dn)
		if sel.Admins {
			addTerms(p.priv[i].members)
		}
	}
	for i := range p.sel {
		p.sel[i].setMembers(g, p.sel[i].g.dn)
		addTerms(p.sel[i].members)
	}
	p.members = members.String()

	// OUs: drop duplicates and OUs inside another selected OU.
	p.allOUs = sel.OUs
	for i, ou := range sel.OUs {
		inside := false
		for j, other := range sel.OUs {
			if i == j {
				continue
			}
			if dnUnder(ou, other) && (!strings.EqualFold(ou, other) || j < i) {
				inside = true
				break
			}
		}
		if !inside {
			p.ous = append(p.ous, ou)
		}
	}
	return p, nil
}

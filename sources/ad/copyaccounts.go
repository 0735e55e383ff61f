package ad

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// CopyAccounts yields, from the local copy Read keeps, exactly what
// Accounts yields for sel from the DC: the same accounts with the same
// classification, reasons, SelectedBy and skip reasons, the same entry
// errors for broken entries, and the same selection errors. It sends no
// request to the DC. Accounts come in the copy's order, not the DC's; an
// account's Changed is the whenChanged the copy last read (DirSync does
// not carry it).
//
// Entries a read could not take into the copy come first, as entry errors.
func (s *Source) CopyAccounts(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		if sel.Empty() {
			return
		}
		fail := func(err error) { yield(sources.Account{}, err) }
		state, err := copies.CopyState(ctx, customer, copySource)
		if err != nil {
			fail(s.errorf(err, "read the local copy's position"))
			return
		}
		if state.Zero() {
			fail(s.errorf(errors.New("there is none yet: read the directory first"), "local copy of the directory"))
			return
		}
		tok, err := decodeToken(state.Token)
		if err != nil {
			fail(s.errorf(err, "local copy of the directory: its position is unreadable: the next read is full"))
			return
		}
		info, _ := tok.Domain.info()
		cg, problems, err := s.loadCopyGroups(ctx, copies, customer, info)
		if err != nil {
			fail(err)
			return
		}
		for _, p := range problems {
			if !yield(sources.Account{Source: sources.KindAD, DN: p.entry}, &sources.EntryError{Source: sources.KindAD, Entry: p.entry, Reason: p.reason}) {
				return
			}
		}
		p, err := buildPlan(ctx, s, cg, info, sel)
		if err != nil {
			fail(err)
			return
		}
		memberOf, err := cg.memberships(ctx, copies, customer, p.graph)
		if err != nil {
			fail(err)
			return
		}
		// Accounts searches the selected OUs in turn and stops at the
		// first that does not exist.
		var ous []string
		missing := ""
		for _, ou := range p.ous {
			found, err := cg.exists(ctx, ou)
			if err != nil {
				fail(err)
				return
			}
			if !found {
				missing = ou
				break
			}
			ous = append(ous, ou)
		}
		for o, err := range copies.CopyObjects(ctx, customer, copySource, kindAccount) {
			if err != nil {
				fail(s.errorf(err, "read the local copy"))
				return
			}
			e, err := copyEntry(o.Doc, memberOf[keyOf(o.ID)])
			if err != nil {
				if !yield(sources.Account{Source: sources.KindAD, ID: o.ID}, &sources.EntryError{Source: sources.KindAD, Entry: o.ID, Reason: "the local copy holds it unreadable: the next full read replaces it"}) {
					return
				}
				continue
			}
			if !p.selects(e) && !underAny(e.DN, ous) {
				continue
			}
			acc, eerr := p.account(e)
			if eerr != nil {
				eerr.Source = sources.KindAD
				if !yield(sources.Account{Source: sources.KindAD, DN: e.DN}, eerr) {
					return
				}
				continue
			}
			if !yield(acc, nil) {
				return
			}
		}
		if missing != "" {
			fail(s.errorf(errors.New("no such object in the local copy of the directory: check base_dn and the selected OUs and groups"),
				"accounts of the selected OU %q", missing))
		}
	}
}

func underAny(dn string, ous []string) bool {
	for _, ou := range ous {
		if dnUnder(dn, ou) {
			return true
		}
	}
	return false
}

// selects reports whether an entry is a transitive member of a selected
// group or built-in, or, with Selection.Admins, of a privileged group:
// what the member filter of Accounts asks the DC (memberOf one of the
// groups nested in them, or primaryGroupID one of their RIDs).
func (p *plan) selects(e *ldap.Entry) bool {
	start, _, err := p.directGroups(e)
	if err != nil { // an unreadable primaryGroupID: its memberOf alone
		start = memberKeys(e)
	}
	for _, sr := range p.sel {
		if _, ok := p.graph.path(start, sr.key); ok {
			return true
		}
	}
	if p.admins {
		for _, pr := range p.priv {
			if _, ok := p.graph.path(start, pr.key); ok {
				return true
			}
		}
	}
	return false
}

// copyGroups is the local copy's groups, for buildPlan: the groupLookup
// of CopyAccounts.
type copyGroups struct {
	src  *Source
	info Info
	// groups by id, ids by DN key, and the group-in-group links.
	groups   map[string]*copyObject
	byKey    map[string]string
	parents  map[string][]string
	children map[string][]string
	// containers are the DN keys of the OUs and containers, which a
	// selection's OUs normally are.
	containers map[string]bool
	// copies and customer are where to look for anything else a selection
	// names (a group DN that is not a group, an OU that is not one).
	ctx      context.Context
	copies   sources.CopyStore
	customer string
}

// loadCopyGroups reads the copy's groups and their nesting, the DNs of
// its containers, and the problems a read recorded.
func (s *Source) loadCopyGroups(ctx context.Context, copies sources.CopyStore, customer string, info Info) (*copyGroups, []problem, error) {
	cg := &copyGroups{src: s, info: info, groups: map[string]*copyObject{}, byKey: map[string]string{}, parents: map[string][]string{},
		children: map[string][]string{}, containers: map[string]bool{}, ctx: ctx, copies: copies, customer: customer}
	var problems []problem
	for o, err := range copies.CopyObjects(ctx, customer, copySource, kindGroup, kindProblem, kindContainer) {
		if err != nil {
			return nil, nil, s.errorf(err, "read the local copy")
		}
		obj, err := decodeCopyObject(o.Doc)
		if err != nil {
			problems = append(problems, problem{entry: o.ID, reason: "the local copy holds it unreadable: the next full read replaces it"})
			continue
		}
		switch o.Kind {
		case kindProblem:
			problems = append(problems, problem{entry: obj.dn, reason: obj.first("reason")})
		case kindGroup:
			cg.groups[o.ID] = obj
			cg.byKey[dnKey(obj.dn)] = o.ID
		case kindContainer:
			cg.containers[dnKey(obj.dn)] = true
		}
	}
	for l, err := range copies.CopyLinks(ctx, customer, copySource) {
		if err != nil {
			return nil, nil, s.errorf(err, "read the local copy's memberships")
		}
		if cg.groups[l.Group] != nil && cg.groups[l.Member] != nil {
			cg.children[l.Group] = append(cg.children[l.Group], l.Member)
			cg.parents[l.Member] = append(cg.parents[l.Member], l.Group)
		}
	}
	return cg, problems, nil
}

// exists reports whether the copy holds an object with that DN: an OU or
// container, else (rarely) anything else a search could start from.
func (cg *copyGroups) exists(ctx context.Context, dn string) (bool, error) {
	if cg.containers[dnKey(dn)] || cg.byKey[dnKey(dn)] != "" {
		return true, nil
	}
	obj, err := cg.find(ctx, dn)
	return obj != nil, err
}

// find looks for any object with that DN, reading the whole copy.
func (cg *copyGroups) find(ctx context.Context, dn string) (*copyObject, error) {
	key := dnKey(dn)
	for o, err := range cg.copies.CopyObjects(ctx, cg.customer, copySource) {
		if err != nil {
			return nil, cg.src.errorf(err, "read the local copy")
		}
		if o.Kind == kindProblem {
			continue
		}
		if obj, err := decodeCopyObject(o.Doc); err == nil && dnKey(obj.dn) == key {
			return obj, nil
		}
	}
	return nil, nil
}

// entry is a group as classification reads it: its memberOf from the
// links, its cn from its DN.
func (cg *copyGroups) entry(id string) *ldap.Entry {
	obj := cg.groups[id]
	var memberOf []string
	for _, p := range cg.parents[id] {
		memberOf = append(memberOf, cg.groups[p].dn)
	}
	e := obj.entry(memberOf)
	if cn := rdnValue(obj.dn); cn != "" {
		e.Attributes = append(e.Attributes, ldap.NewEntryAttribute("cn", []string{cn}))
	}
	return e
}

func (cg *copyGroups) sid(id string) (SID, bool) {
	v := cg.groups[id].attrs["objectSid"]
	if len(v) == 0 {
		return SID{}, false
	}
	sid, err := ParseSIDBytes(v[0])
	return sid, err == nil
}

func (cg *copyGroups) findBySID(_ context.Context, g *graph, base string, wk []wellKnown) (map[string]*group, error) {
	want := map[string]wellKnown{}
	for _, w := range wk {
		want[w.sid(g.info).String()] = w
	}
	found := map[string]*group{}
	for _, id := range cg.sortedIDs() {
		if !dnUnder(cg.groups[id].dn, base) {
			continue
		}
		sid, ok := cg.sid(id)
		if !ok {
			continue
		}
		if w, ok := want[sid.String()]; ok {
			found[w.name] = g.add(cg.entry(id), w.name)
		}
	}
	return found, nil
}

func (cg *copyGroups) selectedGroup(ctx context.Context, dn string) (*ldap.Entry, error) {
	if id, ok := cg.byKey[dnKey(dn)]; ok {
		return cg.entry(id), nil
	}
	obj, err := cg.find(ctx, dn) // not a group: say what it is
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, cg.src.errorf(errors.New("not in the local copy of the directory"), "read selected group %q", dn)
	}
	return obj.entry(nil), nil
}

func (cg *copyGroups) groupByName(_ context.Context, base, name string) (*ldap.Entry, error) {
	var found []string
	for _, id := range cg.sortedIDs() {
		obj := cg.groups[id]
		if dnUnder(obj.dn, base) && strings.EqualFold(obj.first("sAMAccountName"), name) {
			found = append(found, id)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("no group with sAMAccountName %q under %q", name, base)
	case len(found) > 1:
		return nil, fmt.Errorf("several groups named %q: give the DN", name)
	}
	return cg.entry(found[0]), nil
}

func (cg *copyGroups) findSID(_ context.Context, g *graph, sid SID, label string) (*group, error) {
	for _, id := range cg.sortedIDs() {
		if s, ok := cg.sid(id); ok && s.Equal(sid) && dnUnder(cg.groups[id].dn, g.info.BaseDN) {
			return g.add(cg.entry(id), label), nil
		}
	}
	return nil, nil
}

// descendants adds every group nested in the roots, as the in-chain rule
// finds them.
func (cg *copyGroups) descendants(_ context.Context, g *graph, roots []*group) error {
	seen := map[string]bool{}
	var queue []string
	for _, r := range roots {
		if id, ok := cg.byKey[dnKey(r.dn)]; ok {
			queue = append(queue, id)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, c := range cg.children[id] {
			if !seen[c] {
				seen[c] = true
				g.add(cg.entry(c), "")
				queue = append(queue, c)
			}
		}
	}
	return nil
}

func (cg *copyGroups) sortedIDs() []string {
	ids := make([]string, 0, len(cg.groups))
	for id := range cg.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// memberships returns, for each non-group member of a group of the graph
// (by its key: at 100,000 users the ids would be most of the map), the
// DNs of those of its groups.
func (cg *copyGroups) memberships(ctx context.Context, copies sources.CopyStore, customer string, g *graph) (map[objectKey][]string, error) {
	inGraph := map[string]string{} // group id -> DN
	for key := range g.groups {
		if id, ok := cg.byKey[key]; ok {
			inGraph[id] = cg.groups[id].dn
		}
	}
	out := map[objectKey][]string{}
	for l, err := range copies.CopyLinks(ctx, customer, copySource) {
		if err != nil {
			return nil, cg.src.errorf(err, "read the local copy's memberships")
		}
		if dn, ok := inGraph[l.Group]; ok && cg.groups[l.Member] == nil {
			k := keyOf(l.Member)
			out[k] = append(out[k], dn)
		}
	}
	return out, nil
}

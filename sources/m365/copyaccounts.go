package m365

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/msp-tools/autoimport/sources"
)

// CopyAccounts streams the accounts of the selection as Accounts would
// read them from the tenant, computed from the customer's local copy
// (kept by Read) without a request to Graph: the same users, each once,
// with the same classification, skip reasons, SelectedBy and TypeReason.
// Group members are counted transitively through nested groups; holders
// of a privileged role are administrators, also through a role-assignable
// group. Users come in the copy's order.
//
// Memory stays proportional to the copy's memberships and ids, never to
// its users' documents, which are read one at a time.
func (s *Source) CopyAccounts(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		if customer != s.cfg.Customer {
			yield(sources.Account{}, fmt.Errorf("Microsoft 365: customer %s: accounts of the copy of customer %q refused: a source reads only its own customer's copy", s.cfg.Customer, customer))
			return
		}
		st, err := copies.CopyState(ctx, customer, copySource)
		if err != nil {
			yield(sources.Account{}, fmt.Errorf("Microsoft 365: customer %s: read the local copy's position: %w", customer, err))
			return
		}
		if st.Zero() {
			yield(sources.Account{}, fmt.Errorf("Microsoft 365: customer %s: there is no local copy of the tenant yet: read it first", customer))
			return
		}
		dir, err := s.loadDirectory(ctx, copies, customer)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		s.logADNotions(sel)
		roles := dir.roleHolders(s, sel)
		groups, inGroup, err := dir.selectedGroups(ctx, s, sel)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		for o, err := range copies.CopyObjects(ctx, customer, copySource, kindUser) {
			if err != nil {
				yield(sources.Account{}, fmt.Errorf("Microsoft 365: customer %s: read the local copy: %w", customer, err))
				return
			}
			var by []string
			if sel.Empty() {
				by = []string{ReasonAllUsers}
			} else {
				if i, ok := dir.index[o.ID]; ok {
					for k, g := range groups {
						if inGroup[k].has(i) && !slices.Contains(by, g.DisplayName) {
							by = append(by, g.DisplayName)
						}
					}
				}
				by = append(by, roles.selectedHeld(o.ID)...)
				if len(by) == 0 {
					continue
				}
			}
			var u userFacts
			if err := json.Unmarshal(o.Doc, &u); err != nil {
				err = &sources.EntryError{Source: sources.KindM365, Entry: o.ID, Reason: "unreadable in the local copy: " + err.Error()}
				if !yield(sources.Account{}, err) {
					return
				}
				continue
			}
			u.ID = o.ID
			if err := needUPN(u.ID, u.UPN); err != nil {
				if !yield(sources.Account{}, err) {
					return
				}
				continue
			}
			if !yield(s.classify(u, sel, roles.held[o.ID], by, ""), nil) {
				return
			}
		}
	}
}

// directory is the copy's shape without its users: its groups and roles
// and their direct members, each by a small index, and the groups' and
// roles' names. A member that is not a group or role counts as a user:
// only the copy's users are ever looked up in it, so a member the copy
// does not hold (a device, a contact) is never reported.
type directory struct {
	s       *Source
	index   map[string]int32
	ids     []string
	kinds   []byte // by index: 'u' user, 'g' group, 'r' role
	names   map[int32]string
	tmpl    map[int32]string
	members map[int32][]int32
	groups  []int32 // in the copy's order
	roles   []int32
	// seen and epoch mark the objects one walk has visited.
	seen  []uint32
	epoch uint32
}

func (s *Source) loadDirectory(ctx context.Context, copies sources.CopyStore, customer string) (*directory, error) {
	d := &directory{s: s, index: map[string]int32{}, names: map[int32]string{}, tmpl: map[int32]string{}, members: map[int32][]int32{}}
	broken := func(o sources.CopyObject, err error) error {
		return fmt.Errorf("Microsoft 365: customer %s: local copy: %s %s unreadable (a full read rewrites it): %w", customer, o.Kind, o.ID, err)
	}
	for o, err := range copies.CopyObjects(ctx, customer, copySource, kindGroup, kindRole) {
		if err != nil {
			return nil, fmt.Errorf("Microsoft 365: customer %s: read the local copy: %w", customer, err)
		}
		i := int32(len(d.ids))
		switch o.Kind {
		case kindGroup:
			var g groupDoc
			if err := json.Unmarshal(o.Doc, &g); err != nil {
				return nil, broken(o, err)
			}
			d.kinds = append(d.kinds, 'g')
			d.names[i] = g.Name
			d.groups = append(d.groups, i)
		case kindRole:
			var r roleDoc
			if err := json.Unmarshal(o.Doc, &r); err != nil {
				return nil, broken(o, err)
			}
			d.kinds = append(d.kinds, 'r')
			d.names[i], d.tmpl[i] = r.Name, r.Template
			d.roles = append(d.roles, i)
		default:
			continue
		}
		d.index[o.ID] = i
		d.ids = append(d.ids, o.ID)
	}
	for l, err := range copies.CopyLinks(ctx, customer, copySource) {
		if err != nil {
			return nil, fmt.Errorf("Microsoft 365: customer %s: read the local copy's memberships: %w", customer, err)
		}
		g, ok := d.index[l.Group]
		if !ok || d.kinds[g] == 'u' {
			continue // not a group or role of the copy
		}
		m, ok := d.index[l.Member]
		if !ok {
			m = int32(len(d.ids))
			d.index[l.Member] = m
			d.ids = append(d.ids, l.Member)
			d.kinds = append(d.kinds, 'u')
		}
		if d.kinds[m] == 'r' {
			continue
		}
		d.members[g] = append(d.members[g], m)
	}
	d.seen = make([]uint32, len(d.ids))
	return d, nil
}

// eachUser calls f for every user reachable from a group or role through
// its members and nested groups, once each.
func (d *directory) eachUser(from int32, f func(user int32)) {
	d.epoch++
	stack := []int32{from}
	d.seen[from] = d.epoch
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, m := range d.members[g] {
			if d.seen[m] == d.epoch {
				continue
			}
			d.seen[m] = d.epoch
			switch d.kinds[m] {
			case 'u':
				f(m)
			case 'g':
				stack = append(stack, m)
			}
		}
	}
}

// roleHolders computes, as loadRoles does from Graph, who holds which
// privileged role and which of those roles the selection asks for.
func (d *directory) roleHolders(s *Source, sel sources.Selection) *roleSet {
	rs := &roleSet{held: map[string][]string{}, selected: map[string][]string{}}
	privileged, wanted := s.roleRules(sel)
	roles := make([]directoryRole, 0, len(d.roles))
	for _, i := range d.roles {
		roles = append(roles, directoryRole{ID: d.ids[i], DisplayName: d.names[i], RoleTemplateID: d.tmpl[i]})
	}
	s.logUnactivated(sel, roles)
	for k, r := range roles {
		if !roleMatches(r, privileged) {
			continue
		}
		name, isWanted := roleName(r), roleMatches(r, wanted)
		d.eachUser(d.roles[k], func(u int32) { rs.hold(d.ids[u], name, isWanted) })
	}
	return rs
}

// selectedGroups resolves the selection's groups in the copy and marks,
// for each, the users it holds through nested groups.
func (d *directory) selectedGroups(ctx context.Context, s *Source, sel sources.Selection) ([]group, []bitset, error) {
	if sel.Empty() || len(sel.Groups) == 0 {
		return nil, nil, nil
	}
	groups, err := s.resolveGroups(ctx, sel.Groups, d)
	if err != nil {
		return nil, nil, err
	}
	in := make([]bitset, len(groups))
	for k, g := range groups {
		in[k] = make(bitset, (len(d.ids)+63)/64)
		d.eachUser(d.index[g.ID], in[k].set)
	}
	return groups, in, nil
}

// groupByID implements groupFinder over the copy.
func (d *directory) groupByID(_ context.Context, id string) (group, error) {
	i, ok := d.index[id]
	if !ok {
		// The copy keys ids as Graph writes them; a selection may not.
		for j, other := range d.ids {
			if strings.EqualFold(other, id) {
				i, ok = int32(j), true
				break
			}
		}
	}
	if !ok || d.kinds[i] != 'g' {
		return group{}, d.s.graphError(fmt.Sprintf("read group %s", id), errors.New("the tenant has no group with this id (as of the last read)"))
	}
	return group{ID: d.ids[i], DisplayName: d.names[i]}, nil
}

// groupsByName implements groupFinder over the copy: display names match
// regardless of case, as Graph's eq does.
func (d *directory) groupsByName(_ context.Context, name string) ([]group, error) {
	var out []group
	for _, i := range d.groups {
		if strings.EqualFold(d.names[i], name) {
			out = append(out, group{ID: d.ids[i], DisplayName: d.names[i]})
		}
	}
	return out, nil
}

// bitset marks objects by index.
type bitset []uint64

func (b bitset) set(i int32)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int32) bool { return b[i/64]&(1<<(i%64)) != 0 }

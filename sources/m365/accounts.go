package m365

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/sources"
)

// Skip reasons of accounts that are not candidates.
const (
	SkipGuest       = "guest"
	SkipDisabled    = "disabled"
	SkipNotSelected = "not in the selection"
	// SkipDeleted and SkipSoftDeleted only come from Delta.
	SkipDeleted     = "deleted from the tenant"
	SkipSoftDeleted = "deleted (restorable for 30 days)"
)

// ReasonAllUsers is the SelectedBy entry of accounts read with an empty
// selection, which reads every user of the tenant.
const ReasonAllUsers = "all users"

var _ sources.Source = (*Source)(nil)

// Accounts streams the accounts of the selection, classified:
//
//   - sel.Groups (ids or display names) select the groups' transitive
//     members as candidates;
//   - sel.Roles (display names or role template ids) select the holders of
//     those directory roles as administrator candidates, and sel.Admins the
//     holders of every privileged role (Config.PrivilegedRoles);
//   - an empty selection (sources.Selection.Empty) reads every user of the
//     tenant; OUs and built-in groups are Active Directory notions and are
//     ignored here (a selection of only those selects nobody).
//
// Whoever holds a privileged role (Config.PrivilegedRoles plus sel.Roles) is
// an administrator with the reason "holds <role>", never an end user. Guests
// are skipped, and disabled users unless sel.IncludeDisabled. Each user comes
// once, with every group and role that selected it. Memory stays
// proportional to one page plus the ids of the selected users.
func (s *Source) Accounts(ctx context.Context, sel sources.Selection) iter.Seq2[sources.Account, error] {
	return func(yield func(sources.Account, error) bool) {
		roles, err := s.loadRoles(ctx, sel)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		s.logADNotions(sel)
		if sel.Empty() {
			q := url.Values{"$select": {userSelect}, "$top": {strconv.Itoa(s.cfg.PageSize)}}
			for u, err := range s.userPages(ctx, "list users", s.graphURL("/users", q), nil, nil) {
				if err != nil {
					if !yield(sources.Account{}, err) || !isEntryError(err) {
						return
					}
					continue
				}
				if err := needUPN(u.ID, u.UserPrincipalName); err != nil {
					if !yield(sources.Account{}, err) {
						return
					}
					continue
				}
				if !yield(s.classify(u.facts(), sel, roles.held[u.ID], []string{ReasonAllUsers}, ""), nil) {
					return
				}
			}
			return
		}

		groups, err := s.resolveGroups(ctx, sel.Groups, graphGroups{s})
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		// With several groups, learn every member's groups first (ids only)
		// so each user is yielded once with all the groups that selected it.
		var memberOf map[string][]string
		if len(groups) > 1 {
			if memberOf, err = s.memberIDs(ctx, groups); err != nil {
				yield(sources.Account{}, err)
				return
			}
		}
		done := map[string]bool{}
		for _, g := range groups {
			q := url.Values{"$select": {userSelect}, "$top": {strconv.Itoa(s.cfg.PageSize)}}
			op := fmt.Sprintf("list members of group %q", g.DisplayName)
			for u, err := range s.userPages(ctx, op, s.graphURL("/groups/"+url.PathEscape(g.ID)+"/transitiveMembers/microsoft.graph.user", q), nil, nil) {
				if err != nil {
					if !yield(sources.Account{}, err) || !isEntryError(err) {
						return
					}
					continue
				}
				if done[u.ID] {
					continue
				}
				done[u.ID] = true
				if err := needUPN(u.ID, u.UserPrincipalName); err != nil {
					if !yield(sources.Account{}, err) {
						return
					}
					continue
				}
				by := memberOf[u.ID]
				if by == nil {
					by = []string{g.DisplayName}
				}
				by = append(slices.Clone(by), roles.selectedHeld(u.ID)...)
				if !yield(s.classify(u.facts(), sel, roles.held[u.ID], by, ""), nil) {
					return
				}
			}
		}
		for _, id := range roles.order {
			if done[id] {
				continue
			}
			by := roles.selectedHeld(id)
			if len(by) == 0 {
				continue
			}
			done[id] = true
			if err := needUPN(id, roles.users[id].UserPrincipalName); err != nil {
				if !yield(sources.Account{}, err) {
					return
				}
				continue
			}
			if !yield(s.classify(roles.users[id].facts(), sel, roles.held[id], by, ""), nil) {
				return
			}
		}
	}
}

// needUPN refuses a user without userPrincipalName: it has no username to
// import under.
func needUPN(id, upn string) error {
	if upn == "" {
		return &sources.EntryError{Source: sources.KindM365, Entry: id, Reason: "no userPrincipalName"}
	}
	return nil
}

// Check verifies the connection to the tenant without reading it whole:
// a token, one user (User.Read.All) and the directory roles
// (RoleManagement.Read.Directory). The error says what to fix.
func (s *Source) Check(ctx context.Context) error {
	var page struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if err := s.getJSON(ctx, "list users", s.graphURL("/users", url.Values{"$select": {"id"}, "$top": {"1"}}), nil, &page); err != nil {
		return err
	}
	return s.getJSON(ctx, "list directory roles", s.graphURL("/directoryRoles", url.Values{"$select": {"id"}}), nil, &page)
}

func isEntryError(err error) bool {
	var ee *sources.EntryError
	return errors.As(err, &ee)
}

// classify turns a user into an Account: Accounts classifies users read
// from Graph, CopyAccounts users of the local copy.
func (s *Source) classify(u userFacts, sel sources.Selection, heldRoles, selectedBy []string, changed string) sources.Account {
	a := sources.Account{
		Source:         sources.KindM365,
		ID:             u.ID,
		Username:       u.UPN,
		UPN:            u.UPN,
		DisplayName:    u.DisplayName,
		GivenName:      u.GivenName,
		Surname:        u.Surname,
		Email:          u.Mail,
		Enabled:        !u.Disabled,
		ImmutableID:    u.ImmutableID,
		OnPremisesSync: u.Synced,
		Licensed:       u.Licensed,
		SelectedBy:     selectedBy,
		Changed:        changed,
		Type:           sources.EndUser,
	}
	if len(heldRoles) > 0 {
		a.Type = sources.Admin
		a.TypeReason = "holds " + strings.Join(heldRoles, ", ")
	} else {
		var groups []string
		for _, b := range selectedBy {
			if b != ReasonAllUsers {
				groups = append(groups, b)
			}
		}
		if len(groups) > 0 {
			a.TypeReason = "member of " + strings.Join(groups, ", ")
		} else {
			a.TypeReason = "user of the tenant"
		}
	}
	switch {
	case u.Guest:
		a.SkipReason = SkipGuest
	case !a.Enabled && !sel.IncludeDisabled:
		a.SkipReason = SkipDisabled
	case len(selectedBy) == 0:
		a.SkipReason = SkipNotSelected
	}
	return a
}

// directoryRole is an activated directory role.
type directoryRole struct {
	ID             string `json:"id"`
	DisplayName    string `json:"displayName"`
	RoleTemplateID string `json:"roleTemplateId"`
}

// roleSet is what the tenant's privileged roles say about users.
type roleSet struct {
	// held maps a user id to the privileged roles it holds (display names,
	// sorted).
	held map[string][]string
	// selected maps a user id to the roles of the selection it holds.
	selected map[string][]string
	// users holds the user objects of role holders, in order of first
	// appearance (order).
	users map[string]User
	order []string
}

func (r *roleSet) selectedHeld(id string) []string { return r.selected[id] }

// hold records that user id holds the role name; wanted says the role is
// one the selection asks for.
func (r *roleSet) hold(id, name string, wanted bool) {
	if !slices.Contains(r.held[id], name) {
		r.held[id] = append(r.held[id], name)
		slices.Sort(r.held[id])
	}
	if wanted && !slices.Contains(r.selected[id], name) {
		r.selected[id] = append(r.selected[id], name)
		slices.Sort(r.selected[id])
	}
}

// roleRules says which roles make their holders administrators
// (privileged: Config.PrivilegedRoles and the selection's roles) and which
// select their holders (wanted: the selection's roles, or with sel.Admins
// every privileged one).
func (s *Source) roleRules(sel sources.Selection) (privileged, wanted []string) {
	privileged = append(slices.Clone(s.cfg.PrivilegedRoles), sel.Roles...)
	switch {
	case len(sel.Roles) > 0:
		wanted = sel.Roles
	case sel.Admins:
		wanted = privileged
	}
	return privileged, wanted
}

// roleName is how reasons name a role.
func roleName(r directoryRole) string {
	if r.DisplayName == "" {
		return r.RoleTemplateID
	}
	return r.DisplayName
}

// logUnactivated says which roles of the selection no activated role
// matches: they have no members.
func (s *Source) logUnactivated(sel sources.Selection, roles []directoryRole) {
	for _, want := range sel.Roles {
		if !slices.ContainsFunc(roles, func(r directoryRole) bool { return roleMatches(r, []string{want}) }) {
			s.cfg.Log.WithField("customer", s.cfg.Customer).WithField("role", want).Info("Microsoft 365: selected directory role is not activated in the tenant: it has no members")
		}
	}
}

// logADNotions says that a selection's OUs and built-in groups select
// nobody in Microsoft 365.
func (s *Source) logADNotions(sel sources.Selection) {
	if len(sel.OUs) > 0 || len(sel.Builtin) > 0 {
		s.cfg.Log.WithField("customer", s.cfg.Customer).Warn("Microsoft 365: the selection's OUs and built-in groups are Active Directory notions and are ignored")
	}
}

func roleMatches(r directoryRole, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(n, r.DisplayName) || strings.EqualFold(n, r.RoleTemplateID) {
			return true
		}
	}
	return false
}

// loadRoles reads the activated directory roles and the members of every
// privileged one. Role-assignable groups among the members are expanded
// transitively. Only active assignments are visible this way: PIM-eligible
// administrators are not.
func (s *Source) loadRoles(ctx context.Context, sel sources.Selection) (*roleSet, error) {
	rs := &roleSet{held: map[string][]string{}, selected: map[string][]string{}, users: map[string]User{}}
	var list struct {
		Value    []directoryRole `json:"value"`
		NextLink string          `json:"@odata.nextLink"`
	}
	var roles []directoryRole
	next := s.graphURL("/directoryRoles", url.Values{"$select": {"id,displayName,roleTemplateId"}})
	for n := 1; next != ""; n++ {
		if n > s.cfg.MaxPages {
			return nil, s.graphError("list directory roles", errors.New("too many pages"))
		}
		if err := s.checkLink(next); err != nil {
			return nil, s.graphError("list directory roles", err)
		}
		list.NextLink, list.Value = "", nil
		if err := s.getJSON(ctx, "list directory roles", next, nil, &list); err != nil {
			return nil, err
		}
		roles = append(roles, list.Value...)
		next = list.NextLink
	}
	privileged, wanted := s.roleRules(sel)
	s.logUnactivated(sel, roles)
	for _, r := range roles {
		if r.ID == "" || !roleMatches(r, privileged) {
			continue
		}
		name := roleName(r)
		isWanted := roleMatches(r, wanted)
		add := func(u User) {
			if _, ok := rs.users[u.ID]; !ok {
				rs.users[u.ID] = u
				rs.order = append(rs.order, u.ID)
			}
			rs.hold(u.ID, name, isWanted)
		}
		op := fmt.Sprintf("list members of role %q", name)
		q := url.Values{"$select": {userSelect}}
		var groups []string
		for m, err := range s.userPages(ctx, op, s.graphURL("/directoryRoles/"+url.PathEscape(r.ID)+"/members", q), nil, nil) {
			if err != nil {
				if isEntryError(err) {
					continue
				}
				return nil, err
			}
			switch m.ODataType {
			case "", "#microsoft.graph.user":
				add(m)
			case "#microsoft.graph.group":
				groups = append(groups, m.ID)
			}
		}
		for _, gid := range groups {
			q := url.Values{"$select": {userSelect}, "$top": {strconv.Itoa(s.cfg.PageSize)}}
			gop := fmt.Sprintf("list members of group %s holding role %q", gid, name)
			for m, err := range s.userPages(ctx, gop, s.graphURL("/groups/"+url.PathEscape(gid)+"/transitiveMembers/microsoft.graph.user", q), nil, nil) {
				if err != nil {
					if isEntryError(err) {
						continue
					}
					return nil, err
				}
				add(m)
			}
		}
	}
	return rs, nil
}

// group is a resolved group of the selection.
type group struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// groupFinder finds groups by id or display name: over Graph for Accounts,
// in the local copy for CopyAccounts. Its errors are complete (they name
// the customer and the operation).
type groupFinder interface {
	groupByID(ctx context.Context, id string) (group, error)
	groupsByName(ctx context.Context, name string) ([]group, error)
}

// resolveGroups turns group ids and display names into groups. A name that
// matches no group or several groups is an error: names are not unique, ids
// are.
func (s *Source) resolveGroups(ctx context.Context, refs []string, find groupFinder) ([]group, error) {
	var out []group
	for _, ref := range refs {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			continue
		}
		if guidRE.MatchString(ref) {
			g, err := find.groupByID(ctx, ref)
			if err != nil {
				return nil, err
			}
			if g.ID == "" {
				return nil, s.graphError(fmt.Sprintf("read group %s", ref), errors.New("group without id"))
			}
			if g.DisplayName == "" {
				g.DisplayName = g.ID
			}
			out = append(out, g)
			continue
		}
		list, err := find.groupsByName(ctx, ref)
		if err != nil {
			return nil, err
		}
		op := fmt.Sprintf("find group %q", ref)
		switch len(list) {
		case 0:
			return nil, s.graphError(op, errors.New("no group has this display name"))
		case 1:
			out = append(out, list[0])
		default:
			ids := make([]string, len(list))
			for i, g := range list {
				ids[i] = g.ID
			}
			return nil, s.graphError(op, fmt.Errorf("%d groups have this display name (%s): select the group by id", len(ids), strings.Join(ids, ", ")))
		}
	}
	// A group named twice (by id and by name) is read once.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, g := range out {
		if !seen[g.ID] {
			seen[g.ID] = true
			uniq = append(uniq, g)
		}
	}
	return uniq, nil
}

// graphGroups finds groups over Graph.
type graphGroups struct{ s *Source }

func (f graphGroups) groupByID(ctx context.Context, id string) (group, error) {
	var g group
	err := f.s.getJSON(ctx, fmt.Sprintf("read group %s", id), f.s.graphURL("/groups/"+id, url.Values{"$select": {"id,displayName"}}), nil, &g)
	return g, err
}

func (f graphGroups) groupsByName(ctx context.Context, name string) ([]group, error) {
	var list struct {
		Value []group `json:"value"`
	}
	q := url.Values{"$filter": {"displayName eq '" + strings.ReplaceAll(name, "'", "''") + "'"}, "$select": {"id,displayName"}}
	err := f.s.getJSON(ctx, fmt.Sprintf("find group %q", name), f.s.graphURL("/groups", q), nil, &list)
	return list.Value, err
}

// memberIDs reads only the ids of the groups' transitive user members and
// returns, for each user, the groups it belongs to.
func (s *Source) memberIDs(ctx context.Context, groups []group) (map[string][]string, error) {
	m := map[string][]string{}
	for _, g := range groups {
		q := url.Values{"$select": {"id"}, "$top": {strconv.Itoa(MaxPageSize)}}
		op := fmt.Sprintf("list member ids of group %q", g.DisplayName)
		for u, err := range s.userPages(ctx, op, s.graphURL("/groups/"+url.PathEscape(g.ID)+"/transitiveMembers/microsoft.graph.user", q), nil, nil) {
			if err != nil {
				if isEntryError(err) {
					continue
				}
				return nil, err
			}
			if !slices.Contains(m[u.ID], g.DisplayName) {
				m[u.ID] = append(m[u.ID], g.DisplayName)
			}
		}
	}
	return m, nil
}

// checkLink refuses a link that leaves the configured Graph host: the
// bearer token must never travel elsewhere.
func (s *Source) checkLink(link string) error {
	if !strings.HasPrefix(link, s.cfg.GraphURL+"/") {
		return fmt.Errorf("link %q is not under the Graph URL %s: refused", redactQuery(link), s.cfg.GraphURL)
	}
	return nil
}

func redactQuery(link string) string {
	if i := strings.IndexByte(link, '?'); i >= 0 {
		return link[:i]
	}
	return link
}

package m365test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// User is a seeded Entra user. Zero ID means "assign one".
type User struct {
	ID                string
	UserPrincipalName string
	DisplayName       string
	GivenName         string
	Surname           string
	Mail              string
	JobTitle          string
	// Disabled is the inverse of Graph's accountEnabled.
	Disabled bool
	// Guest makes userType "Guest" (else "Member").
	Guest bool
	// OnPremisesSyncEnabled: nil = cloud-only, never synced.
	OnPremisesSyncEnabled        *bool
	OnPremisesImmutableID        string
	OnPremisesSamAccountName     string
	OnPremisesSecurityIdentifier string
	// Licenses are assigned licence SKU ids.
	Licenses []string
	// LastPasswordChange is Graph's lastPasswordChangeDateTime (default:
	// when the user was added); a password change through the fake moves
	// it.
	LastPasswordChange time.Time
}

// Group is a seeded group. Members are ids of users or of other groups.
type Group struct {
	ID          string
	DisplayName string
	Members     []string
}

// Role is an activated directory role. Members are ids of users or of
// role-assignable groups.
type Role struct {
	ID             string
	DisplayName    string
	RoleTemplateID string
	Members        []string
}

// Well-known role template ids.
const (
	GlobalAdministrator   = "62e90394-69f5-4237-9190-012177145e10"
	UserAdministrator     = "fe930be7-5e62-47db-91af-98c3a49a38b1"
	HelpdeskAdministrator = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
	DirectoryReaders      = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
)

var roleNames = map[string]string{
	GlobalAdministrator:   "Global Administrator",
	UserAdministrator:     "User Administrator",
	HelpdeskAdministrator: "Helpdesk Administrator",
	DirectoryReaders:      "Directory Readers",
}

type userRec struct {
	User
	pos     int   // index in Tenant.order
	created int64 // sequence number of its creation
	deleted bool
	soft    bool
}

// change is one entry of a tenant's change logs, which the delta rounds
// read: an object created, updated or deleted, or a member added to or
// removed from a group or role.
type change struct {
	seq int64
	// id is the user, group or role changed.
	id string
	// member is the member added or removed (what == changeMember).
	member string
	what   byte
	// fields are the user properties changed (a bit per userFields
	// index), for changeUpdated.
	fields uint64
}

// What a change did.
const (
	changeCreated = 'c' // created, or restored from the deleted items
	// changeRestored is a group restored by RestoreGroupSilently: it
	// comes back in groups/delta without its members.
	changeRestored = 'r'
	changeUpdated  = 'u'
	changeDeleted  = 'd'
	changeMember   = 'm'
)

// groupRec is a group and its place in the directory.
type groupRec struct {
	Group
	deleted, soft bool
}

// Tenant is one customer's directory inside the fake. Its methods are safe
// for concurrent use with the server answering requests.
type Tenant struct {
	// ID is the tenant id, the {tenant} of the token endpoint's path.
	ID string

	mu    sync.RWMutex
	users map[string]*userRec
	order []string // user ids in creation order, deleted ones included
	// groups holds every group ever made, deleted ones flagged, in
	// groupList's order.
	groups    map[string]*groupRec
	groupList []string
	roles     map[string]*Role
	roleList  []string
	// seq numbers every change; log, glog and rlog are the changes to
	// users, groups and roles (with their memberships), in seq order.
	seq       int64
	log       []change
	glog      []change
	rlog      []change
	consented bool
	// pw is the password side: what the fake's app may reset and the
	// passwords set through Graph.
	pw     passwordState
	idRand *rand.Rand
	// mver counts membership changes; memberCache holds transitive user
	// lists valid for one (seq, mver).
	mver        int64
	cacheMu     sync.Mutex
	memberCache map[string]cachedMembers
}

type cachedMembers struct {
	seq, mver int64
	users     []*userRec
}

func newTenant(id string) *Tenant {
	var seed uint64
	for _, c := range id {
		seed = seed*31 + uint64(c)
	}
	return &Tenant{
		ID:        id,
		users:     map[string]*userRec{},
		groups:    map[string]*groupRec{},
		roles:     map[string]*Role{},
		consented: true,
		idRand:    rand.New(rand.NewPCG(seed, 0x6d333635)),
	}
}

func guid(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// SetConsented says whether the MSP's app is admin-consented in the tenant;
// without consent the token endpoint answers AADSTS700016.
func (t *Tenant) SetConsented(ok bool) {
	t.mu.Lock()
	t.consented = ok
	t.mu.Unlock()
}

// record appends a change to a log. Caller holds t.mu.
func (t *Tenant) record(log *[]change, c change) {
	t.seq++
	c.seq = t.seq
	*log = append(*log, c)
}

// recordMemberships records, for every group and role that lists id as a
// member, that the member changed: its deletion or restoration changes
// who the group's members are, and groups/delta says so. Caller holds
// t.mu.
func (t *Tenant) recordMemberships(id string) {
	for _, gid := range t.groupList {
		if g := t.groups[gid]; !g.deleted && slices.Contains(g.Members, id) {
			t.record(&t.glog, change{id: gid, member: id, what: changeMember})
		}
	}
	for _, rid := range t.roleList {
		if slices.Contains(t.roles[rid].Members, id) {
			t.record(&t.rlog, change{id: rid, member: id, what: changeMember})
		}
	}
	t.mver++
}

// dropMemberships takes id out of every group and role. Caller holds t.mu.
func (t *Tenant) dropMemberships(id string) {
	for _, gid := range t.groupList {
		g := t.groups[gid]
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == id })
	}
	for _, rid := range t.roleList {
		r := t.roles[rid]
		r.Members = slices.DeleteFunc(r.Members, func(m string) bool { return m == id })
	}
}

// AddUser adds a user and returns its id (u.ID, or a new one). A user
// without UPN gets one from its display name.
func (t *Tenant) AddUser(u User) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.ID == "" {
		u.ID = guid(t.idRand)
	}
	if u.UserPrincipalName == "" {
		u.UserPrincipalName = strings.ReplaceAll(strings.ToLower(u.DisplayName), " ", ".") + "." + u.ID[:8] + "@fake.onmicrosoft.com"
	}
	if u.LastPasswordChange.IsZero() {
		u.LastPasswordChange = time.Now().UTC().Truncate(time.Second)
	}
	old, ok := t.users[u.ID]
	if ok {
		old.User, old.created = u, t.seq+1
	} else {
		t.users[u.ID] = &userRec{User: u, pos: len(t.order), created: t.seq + 1}
		t.order = append(t.order, u.ID)
	}
	t.record(&t.log, change{id: u.ID, what: changeCreated})
	if ok && old.deleted {
		// Seeding a deleted user's id again brings it back, with the
		// memberships a soft delete kept.
		old.deleted, old.soft = false, false
		t.recordMemberships(u.ID)
	}
	return u.ID
}

// UpdateUser changes a user in place; it shows up in the next delta round.
// It reports whether the user exists.
func (t *Tenant) UpdateUser(id string, update func(*User)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.users[id]
	if !ok || r.deleted {
		return false
	}
	before := r.User
	update(&r.User)
	r.User.ID = id
	if f := changedFields(&before, &r.User); f != 0 {
		t.record(&t.log, change{id: id, what: changeUpdated, fields: f})
	}
	return true
}

// changedFields returns the properties (bits by userFields index) that
// differ between two versions of a user.
func changedFields(a, b *User) uint64 {
	ra, rb := &userRec{User: *a}, &userRec{User: *b}
	var f uint64
	for i, name := range userFields {
		switch name {
		case "assignedLicenses":
			if !slices.Equal(a.Licenses, b.Licenses) {
				f |= 1 << i
			}
		case "lastPasswordChangeDateTime":
			if !a.LastPasswordChange.Equal(b.LastPasswordChange) {
				f |= 1 << i
			}
		case "onPremisesSyncEnabled":
			if (a.OnPremisesSyncEnabled == nil) != (b.OnPremisesSyncEnabled == nil) ||
				(a.OnPremisesSyncEnabled != nil && *a.OnPremisesSyncEnabled != *b.OnPremisesSyncEnabled) {
				f |= 1 << i
			}
		default:
			if ra.prop(name) != rb.prop(name) {
				f |= 1 << i
			}
		}
	}
	return f
}

// DeleteUser removes a user: soft (restorable for 30 days, delta reason
// "changed") or for good (reason "deleted"). Either way it leaves the
// member lists of its groups and roles, and groups/delta and
// directoryRoles/delta report it removed there; a soft delete remembers
// the memberships for RestoreUser, a hard one forgets them.
func (t *Tenant) DeleteUser(id string, soft bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.users[id]
	if !ok || r.deleted {
		return false
	}
	r.deleted, r.soft = true, soft
	t.record(&t.log, change{id: id, what: changeDeleted})
	t.recordMemberships(id)
	if !soft {
		t.dropMemberships(id)
	}
	return true
}

// RestoreUser brings back a soft-deleted user with its memberships, as
// restoring it from the deleted items does: users/delta lists it again
// and groups/delta and directoryRoles/delta report it added back to its
// groups and roles (unconfirmed: Microsoft documents the removal, not the
// restoration). It reports whether there was such a user.
func (t *Tenant) RestoreUser(id string) bool { return t.restoreUser(id, true) }

// RestoreUserSilently restores a soft-deleted user as RestoreUser does,
// but groups/delta and directoryRoles/delta say nothing of its
// memberships: the other reading of what Microsoft documents. Its groups
// and roles still list it, and /users/{id}/memberOf names them.
func (t *Tenant) RestoreUserSilently(id string) bool { return t.restoreUser(id, false) }

func (t *Tenant) restoreUser(id string, memberships bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.users[id]
	if !ok || !r.deleted || !r.soft {
		return false
	}
	r.deleted, r.soft = false, false
	r.created = t.seq + 1
	t.record(&t.log, change{id: id, what: changeCreated})
	if memberships {
		t.recordMemberships(id)
	} else {
		t.mver++
	}
	return true
}

// User returns a copy of a live user.
func (t *Tenant) User(id string) (User, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.users[id]
	if !ok || r.deleted {
		return User{}, false
	}
	return r.User, true
}

// UserCount is the number of live users.
func (t *Tenant) UserCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, r := range t.users {
		if !r.deleted {
			n++
		}
	}
	return n
}

// AddGroup adds a group and returns its id.
func (t *Tenant) AddGroup(name string, members ...string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var uniq []string
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if !seen[m] {
			seen[m] = true
			uniq = append(uniq, m)
		}
	}
	g := &groupRec{Group: Group{ID: guid(t.idRand), DisplayName: name, Members: uniq}}
	t.groups[g.ID] = g
	t.mver++
	t.groupList = append(t.groupList, g.ID)
	t.record(&t.glog, change{id: g.ID, what: changeCreated})
	return g.ID
}

// AddMembers adds users or groups to a group; members it already has are
// left alone.
func (t *Tenant) AddMembers(groupID string, members ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	if !ok || g.deleted {
		return
	}
	has := make(map[string]bool, len(g.Members))
	for _, m := range g.Members {
		has[m] = true
	}
	for _, m := range members {
		if has[m] {
			continue
		}
		has[m] = true
		g.Members = append(g.Members, m)
		t.record(&t.glog, change{id: groupID, member: m, what: changeMember})
	}
	t.mver++
}

// RemoveMembers takes users or groups out of a group.
func (t *Tenant) RemoveMembers(groupID string, members ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	if !ok || g.deleted {
		return
	}
	for _, m := range members {
		if i := slices.Index(g.Members, m); i >= 0 {
			g.Members = slices.Delete(g.Members, i, i+1)
			t.record(&t.glog, change{id: groupID, member: m, what: changeMember})
		}
	}
	t.mver++
}

// RenameGroup changes a group's display name. It reports whether the
// group exists.
func (t *Tenant) RenameGroup(id, name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[id]
	if !ok || g.deleted {
		return false
	}
	g.DisplayName = name
	t.record(&t.glog, change{id: id, what: changeUpdated})
	return true
}

// DeleteGroup removes a group: soft (a Microsoft 365 group, restorable,
// delta reason "changed") or for good (a security group, reason
// "deleted"). It leaves the groups and roles it was a member of, which
// their delta rounds report; its own members are kept for RestoreGroup
// after a soft delete.
func (t *Tenant) DeleteGroup(id string, soft bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[id]
	if !ok || g.deleted {
		return false
	}
	g.deleted, g.soft = true, soft
	t.record(&t.glog, change{id: id, what: changeDeleted})
	t.recordMemberships(id)
	if !soft {
		t.dropMemberships(id)
		g.Members = nil
	}
	return true
}

// RestoreGroup brings back a soft-deleted group with its members and its
// memberships; groups/delta lists it again, whole, as it lists a new
// group. It reports whether there was such a group.
func (t *Tenant) RestoreGroup(id string) bool { return t.restoreGroup(id, true) }

// RestoreGroupSilently restores a soft-deleted group as RestoreGroup
// does, but groups/delta lists it again without its members, and neither
// its parent groups nor its roles report it added back: the other reading
// of what Microsoft documents. Its members and parents still list it, and
// /groups/{id}/members and /groups/{id}/memberOf answer as before.
func (t *Tenant) RestoreGroupSilently(id string) bool { return t.restoreGroup(id, false) }

func (t *Tenant) restoreGroup(id string, memberships bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[id]
	if !ok || !g.deleted || !g.soft {
		return false
	}
	g.deleted, g.soft = false, false
	if !memberships {
		t.record(&t.glog, change{id: id, what: changeRestored})
		t.mver++
		return true
	}
	t.record(&t.glog, change{id: id, what: changeCreated})
	t.recordMemberships(id)
	return true
}

// liveGroup returns a group that is not deleted. Caller holds t.mu.
func (t *Tenant) liveGroup(id string) (*groupRec, bool) {
	g, ok := t.groups[id]
	if !ok || g.deleted {
		return nil, false
	}
	return g, true
}

// liveUser returns a user that is not deleted. Caller holds t.mu.
func (t *Tenant) liveUser(id string) (*userRec, bool) {
	u, ok := t.users[id]
	if !ok || u.deleted {
		return nil, false
	}
	return u, true
}

// ActivateRole activates a directory role by template id (a name is looked
// up for the well-known ones, else displayName is used) and returns its
// object id. Activating it again returns the same id.
func (t *Tenant) ActivateRole(templateID, displayName string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range t.roleList {
		if t.roles[id].RoleTemplateID == templateID {
			return id
		}
	}
	if displayName == "" {
		displayName = roleNames[templateID]
	}
	r := &Role{ID: guid(t.idRand), DisplayName: displayName, RoleTemplateID: templateID}
	t.roles[r.ID] = r
	t.roleList = append(t.roleList, r.ID)
	t.record(&t.rlog, change{id: r.ID, what: changeCreated})
	return r.ID
}

// role finds an activated role by object id or template id. Caller holds
// t.mu.
func (t *Tenant) role(key string) *Role {
	for _, id := range t.roleList {
		if r := t.roles[id]; r.ID == key || r.RoleTemplateID == key {
			return r
		}
	}
	return nil
}

// AssignRole gives an activated role (by object id or template id) to
// users or groups.
func (t *Tenant) AssignRole(role string, members ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.role(role)
	if r == nil {
		return
	}
	for _, m := range members {
		if slices.Contains(r.Members, m) {
			continue
		}
		r.Members = append(r.Members, m)
		t.record(&t.rlog, change{id: r.ID, member: m, what: changeMember})
	}
	t.mver++
}

// UnassignRole takes an activated role (by object id or template id) from
// users or groups.
func (t *Tenant) UnassignRole(role string, members ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.role(role)
	if r == nil {
		return
	}
	for _, m := range members {
		if i := slices.Index(r.Members, m); i >= 0 {
			r.Members = slices.Delete(r.Members, i, i+1)
			t.record(&t.rlog, change{id: r.ID, member: m, what: changeMember})
		}
	}
	t.mver++
}

// groupUsers returns the transitive user members of a group, cached until
// the directory changes. Caller holds t.mu (read or write).
func (t *Tenant) groupUsers(g *groupRec) []*userRec {
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	if c, ok := t.memberCache[g.ID]; ok && c.seq == t.seq && c.mver == t.mver {
		return c.users
	}
	users := t.transitiveUsers(g.Members)
	if t.memberCache == nil {
		t.memberCache = map[string]cachedMembers{}
	}
	t.memberCache[g.ID] = cachedMembers{seq: t.seq, mver: t.mver, users: users}
	return users
}

// transitiveUsers returns the live users reachable from the members of a
// group or role, in creation order, each once. Caller holds t.mu.
func (t *Tenant) transitiveUsers(members []string) []*userRec {
	seen := map[string]bool{}
	var out []*userRec
	stack := slices.Clone(members)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		if u, ok := t.users[id]; ok {
			if !u.deleted {
				out = append(out, u)
			}
			continue
		}
		if g, ok := t.liveGroup(id); ok {
			stack = append(stack, g.Members...)
		}
	}
	slices.SortFunc(out, func(a, b *userRec) int { return a.pos - b.pos })
	return out
}

// GenOptions shapes a generated directory.
type GenOptions struct {
	// Seed makes the data reproducible: the same options give the same
	// users, ids and names.
	Seed uint64
	// Users is the number of enabled, licensed member users.
	Users int
	// Guests and Disabled are added on top of Users.
	Guests, Disabled int
	// Hybrid of the Users are synced from AD, with immutable ids from
	// ImmutableIDs first (so a test can pair them with AD users), then
	// generated ones.
	Hybrid       int
	ImmutableIDs []string
	// Unlicensed of the Users have no licence.
	Unlicensed int
	// Groups department groups share the Users round-robin; they are all
	// nested in one more group, "All Staff".
	Groups int
	// Admins of the Users hold Global Administrator.
	Admins int
	// Domain of the UPNs (default contoso.onmicrosoft.com).
	Domain string
}

// Generated lists what Generate made.
type Generated struct {
	Users, Guests, Disabled, Hybrid, Unlicensed, Admins []string
	// Groups maps department group names to ids; AllStaff is the group
	// nesting them all.
	Groups   map[string]string
	AllStaff string
	// GlobalAdminRole is the object id of the activated Global
	// Administrator role ("" when Admins is 0).
	GlobalAdminRole string
}

var (
	givenNames = []string{"Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam", "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe"}
	surnames   = []string{"Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kowalski", "Lopez", "Muller", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Walsh", "Xu", "Young", "Zhang"}
	depts      = []string{"Finance", "Sales", "Engineering", "Support", "Operations", "Legal", "Marketing", "HR"}
	skus       = []string{"c42b9cae-ea4f-4ab7-9717-81576235ccac", "05e9a617-0261-4cee-bb44-138d3ef5d965", "f245ecc8-75af-4f8e-b61f-27d8114de5f3"}
)

// Generate fills the tenant with a deterministic directory.
func (t *Tenant) Generate(o GenOptions) Generated {
	r := rand.New(rand.NewPCG(o.Seed, 0x67656e))
	if o.Domain == "" {
		o.Domain = "contoso.onmicrosoft.com"
	}
	if o.Hybrid < len(o.ImmutableIDs) {
		o.Hybrid = len(o.ImmutableIDs)
	}
	var g Generated
	g.Groups = map[string]string{}
	mk := func(i int, kind string) User {
		gn := givenNames[r.IntN(len(givenNames))]
		sn := surnames[r.IntN(len(surnames))]
		local := fmt.Sprintf("%s.%s.%d", strings.ToLower(gn), strings.ToLower(sn), i)
		if kind != "" {
			local = kind + "." + local
		}
		return User{
			ID:                guid(r),
			UserPrincipalName: local + "@" + o.Domain,
			DisplayName:       gn + " " + sn,
			GivenName:         gn,
			Surname:           sn,
			Mail:              local + "@" + strings.TrimSuffix(o.Domain, ".onmicrosoft.com") + ".example",
			JobTitle:          depts[r.IntN(len(depts))] + " staff",
			Licenses:          []string{skus[r.IntN(len(skus))]},
		}
	}
	for i := range o.Users {
		u := mk(i, "")
		if i < o.Hybrid {
			sync := true
			u.OnPremisesSyncEnabled = &sync
			if i < len(o.ImmutableIDs) {
				u.OnPremisesImmutableID = o.ImmutableIDs[i]
			} else {
				var b [16]byte
				for j := range b {
					b[j] = byte(r.UintN(256))
				}
				u.OnPremisesImmutableID = base64.StdEncoding.EncodeToString(b[:])
			}
			u.OnPremisesSamAccountName = strings.SplitN(u.UserPrincipalName, "@", 2)[0]
			if len(u.OnPremisesSamAccountName) > 20 {
				u.OnPremisesSamAccountName = u.OnPremisesSamAccountName[:20]
			}
			u.OnPremisesSecurityIdentifier = fmt.Sprintf("S-1-5-21-1004336348-1177238915-682003330-%d", 1100+i)
			g.Hybrid = append(g.Hybrid, u.ID)
		}
		if i >= o.Users-o.Unlicensed {
			u.Licenses = nil
			g.Unlicensed = append(g.Unlicensed, u.ID)
		}
		g.Users = append(g.Users, t.AddUser(u))
	}
	for i := range o.Guests {
		u := mk(i, "guest")
		u.Guest = true
		u.Licenses = nil
		u.UserPrincipalName = strings.ReplaceAll(strings.SplitN(u.Mail, "@", 2)[0], ".", "_") + "_partner.example#EXT#@" + o.Domain
		u.Mail = strings.SplitN(u.Mail, "@", 2)[0] + "@partner.example"
		g.Guests = append(g.Guests, t.AddUser(u))
	}
	for i := range o.Disabled {
		u := mk(i, "former")
		u.Disabled = true
		g.Disabled = append(g.Disabled, t.AddUser(u))
	}
	if o.Groups > 0 {
		var ids []string
		for i := range o.Groups {
			name := depts[i%len(depts)]
			if i >= len(depts) {
				name = fmt.Sprintf("%s %d", name, i/len(depts)+1)
			}
			var members []string
			for j := i; j < len(g.Users); j += o.Groups {
				members = append(members, g.Users[j])
			}
			id := t.AddGroup(name, members...)
			g.Groups[name] = id
			ids = append(ids, id)
		}
		g.AllStaff = t.AddGroup("All Staff", ids...)
	}
	if o.Admins > 0 {
		g.GlobalAdminRole = t.ActivateRole(GlobalAdministrator, "")
		n := min(o.Admins, len(g.Users))
		g.Admins = slices.Clone(g.Users[:n])
		t.AssignRole(g.GlobalAdminRole, g.Admins...)
	}
	return g
}

package m365test

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The delta functions of users, groups and directory roles, as Microsoft
// documents them (concepts/delta-query-overview, delta-query-users,
// delta-query-groups, api/directoryrole-delta):
//
//   - a round without a state token lists every object (the initial
//     round), a round from a @odata.deltaLink the objects changed since;
//     either is paged by @odata.nextLink (odata.maxpagesize in Prefer;
//     $top is refused) until a page carries the @odata.deltaLink;
//   - the $select of the first request is encoded in the tokens and
//     applies to the whole round and to the rounds after it; $select with
//     a $skiptoken is refused;
//   - removed objects come as {"id", "@removed":{"reason"}}: "changed"
//     when soft-deleted (restorable), "deleted" when gone; soft-deleted
//     ones also come in an initial round;
//   - groups and roles carry "members@delta" (for groups only when
//     "members" is selected, or nothing is): every member in an initial
//     round or for a group new to the round, otherwise the members added
//     and removed (removed ones with "@removed":{"reason":"deleted"}); a
//     large member list is split over several objects of the same group,
//     which need not follow each other;
//   - changed users come whole, or with Options.PartialDeltaUpdates as
//     their id and the properties changed; a user of whom only properties
//     outside the $select changed does not come;
//   - with Options.DeltaReplays, objects repeat within a round, the last
//     change before the link is replayed, and a round with something to
//     say starts with an empty page;
//   - an expired link answers 400 syncStateNotFound (or what
//     ExpireDeltaLinksAs says, e.g. 410 Gone with a Location holding the
//     first request with an empty $deltatoken); $deltatoken=latest gives
//     a link and no objects.
//
// A round is a snapshot taken when its first page is asked for: its skip
// tokens name it, and changes made while it is paged through come in the
// next round.

// deltaResource is one collection with a delta function.
type deltaResource struct {
	// key names it in tokens and paths: "users", "groups",
	// "directoryRoles".
	key string
	// props are the properties $select may name.
	props []string
}

var deltaResources = map[string]*deltaResource{
	KindDelta:       {key: "users", props: userFields},
	KindGroupsDelta: {key: "groups", props: slices.Concat(groupFields, []string{"members"})},
	KindRolesDelta:  {key: "directoryRoles", props: slices.Concat(roleFields, []string{"members"})},
}

// deltaRound is the snapshot a round's pages are served from.
type deltaRound struct {
	res    *deltaResource
	tenant *Tenant
	sel    []string // nil: every property, and members
	t1     int64    // the round covers changes up to this sequence number
	// items are the round's objects from position base on: once the last
	// page is served only that page is kept, for a client that retries it.
	items []deltaItem
	base  int
}

// deltaItem is one object of a round.
type deltaItem struct {
	// user is the user of a users round, written as it is when its page
	// is served.
	user *userRec
	// obj is a group's or role's properties when the round started.
	obj dirObject
	// removed is the @removed reason ("changed", "deleted"), if any.
	removed string
	// fields are the user properties of a partial object (0: all).
	fields uint64
	// members is this object's share of members@delta.
	members []deltaMember
}

// dirObject is a group or role as a round writes it.
type dirObject struct {
	id, displayName, roleTemplateID string
}

// deltaMember is one entry of members@delta.
type deltaMember struct {
	id      string
	group   bool
	removed bool
}

const defaultMembersPerObject = 100

// maxRounds bounds the rounds kept for their skip tokens; the oldest go
// first (an abandoned round's skip token then answers 400).
const maxRounds = 256

// ExpireDeltaLinks makes every delta link issued so far expired: the next
// use answers as Options.ExpiredDeltaStatus says (400 syncStateNotFound by
// default, or 410 Gone).
func (s *Server) ExpireDeltaLinks() {
	status, code := s.defaultExpiry()
	s.ExpireDeltaLinksAs(status, code)
}

// ExpireDeltaLinksAs makes every delta link issued so far expired, and
// answered with this status and Graph error code: 400 with
// "syncStateNotFound" or "resyncRequired", or 410 Gone (which also carries
// a Location header with the first request of a new round).
func (s *Server) ExpireDeltaLinksAs(status int, code string) {
	s.mu.Lock()
	s.deltaGen++
	s.expiredStatus, s.expiredCode = status, code
	s.mu.Unlock()
}

func (s *Server) defaultExpiry() (int, string) {
	if s.opts.ExpiredDeltaStatus == http.StatusGone {
		return http.StatusGone, "resyncRequired"
	}
	return s.opts.ExpiredDeltaStatus, "syncStateNotFound"
}

// deltaPageSize reads Prefer: odata.maxpagesize.
func deltaPageSize(w http.ResponseWriter, r *http.Request) int {
	size := defaultPageSize
	for _, pref := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(pref, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "odata.maxpagesize="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					size = min(n, 999)
					w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(size))
				}
			}
		}
	}
	return size
}

// delta serves /users/delta, /groups/delta and /directoryRoles/delta.
func (s *Server) delta(w http.ResponseWriter, r *http.Request, t *Tenant, kind string) {
	res := deltaResources[kind]
	qv := r.URL.Query()
	size := deltaPageSize(w, r)
	if qv.Has("$top") {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "The query option $top is not supported with delta queries; use the odata.maxpagesize preference.")
		return
	}
	switch tok := qv.Get("$deltatoken"); {
	case qv.Get("$skiptoken") != "":
		if qv.Has("$select") {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Delta queries with both $select and $skiptoken are not supported.")
			return
		}
		st, ok := decodeState(qv.Get("$skiptoken"))
		s.mu.Lock()
		rd := s.rounds[st.R]
		s.mu.Unlock()
		if !ok || rd == nil || rd.res != res || rd.tenant != t {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid or expired $skiptoken.")
			return
		}
		s.deltaPage(w, rd, st)
	case tok == "latest":
		q, ok := parseQuery(w, r, res.props, false)
		if !ok {
			return
		}
		t.mu.RLock()
		rd := &deltaRound{res: res, tenant: t, sel: q.sel, t1: t.seq}
		t.mu.RUnlock()
		s.deltaPage(w, rd, state{})
	case tok != "":
		dt, ok := decodeState(tok)
		if !ok || dt.At == 0 || dt.K != res.key {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid $deltatoken.")
			return
		}
		if !s.deltaLinkValid(w, res, dt) {
			return
		}
		var sel []string
		if dt.S != "" {
			sel = strings.Split(dt.S, ",")
		}
		if qv.Has("$select") {
			// A $select on a delta link changes what is tracked from now.
			q, ok := parseQuery(w, r, res.props, false)
			if !ok {
				return
			}
			sel = q.sel
		}
		s.startRound(w, t, res, sel, size, dt.T1, true)
	default:
		q, ok := parseQuery(w, r, res.props, false)
		if !ok {
			return
		}
		s.startRound(w, t, res, q.sel, size, 0, false)
	}
}

// deltaLinkValid answers an expired link and reports whether it is valid.
func (s *Server) deltaLinkValid(w http.ResponseWriter, res *deltaResource, dt state) bool {
	s.mu.Lock()
	gen := s.deltaGen
	status, code := s.expiredStatus, s.expiredCode
	tooOld := s.now().UnixNano()-dt.At > int64(s.opts.DeltaLinkTTL)
	s.mu.Unlock()
	switch {
	case dt.G < gen:
	case tooOld:
		status, code = s.defaultExpiry()
	default:
		return true
	}
	if status == http.StatusGone {
		first := s.URL + "/v1.0/" + res.key + "/delta?"
		if dt.S != "" {
			first += "$select=" + dt.S + "&"
		}
		w.Header().Set("Location", first+"$deltatoken=")
		graphError(w, http.StatusGone, code, "Resync required. Replace any local cached data with a full sync, using the delta link without a state token.")
		return false
	}
	graphError(w, status, code, "The sync state generation is not found. Please initiate a full sync.")
	return false
}

// startRound takes the round's snapshot and serves its first page.
func (s *Server) startRound(w http.ResponseWriter, t *Tenant, res *deltaResource, sel []string, size int, t0 int64, changes bool) {
	t.mu.RLock()
	rd := &deltaRound{res: res, tenant: t, sel: sel, t1: t.seq}
	switch {
	case res.key == "users" && !changes:
		rd.items = t.initialUsers()
	case res.key == "users":
		rd.items = t.changedUsers(t.window(t.log, t0, rd.t1, s.opts.DeltaReplays), sel, s.opts.PartialDeltaUpdates)
	case !changes:
		rd.items = t.initialObjects(res, s.membersPerObject())
	default:
		log := t.glog
		if res.key == "directoryRoles" {
			log = t.rlog
		}
		rd.items = t.changedObjects(res, t.window(log, t0, rd.t1, s.opts.DeltaReplays), s.membersPerObject())
	}
	t.mu.RUnlock()
	if s.opts.DeltaReplays {
		// The same object may come more than once in a round.
		for i, n := 0, len(rd.items); i < n; i += 3 {
			rd.items = append(rd.items, rd.items[i])
		}
	}
	id := newID()
	s.mu.Lock()
	s.rounds[id] = rd
	s.roundOrder = append(s.roundOrder, id)
	if len(s.roundOrder) > maxRounds {
		delete(s.rounds, s.roundOrder[0])
		s.roundOrder = s.roundOrder[1:]
	}
	s.mu.Unlock()
	st := state{R: id, P: 0, Z: size}
	if s.opts.DeltaReplays && len(rd.items) > 0 {
		// An empty page that is not the last: clients must follow
		// @odata.nextLink until a @odata.deltaLink, whatever a page holds.
		s.writeDeltaPage(w, rd, nil, s.skipLink(rd, st))
		return
	}
	s.deltaPage(w, rd, st)
}

func (s *Server) membersPerObject() int {
	if s.opts.DeltaMembersPerObject > 0 {
		return s.opts.DeltaMembersPerObject
	}
	return defaultMembersPerObject
}

func (s *Server) skipLink(rd *deltaRound, st state) string {
	return s.URL + "/v1.0/" + rd.res.key + "/delta?$skiptoken=" + encodeState(st)
}

// deltaPage serves the page of a round at st.P: a @odata.nextLink while
// objects remain, else the @odata.deltaLink.
func (s *Server) deltaPage(w http.ResponseWriter, rd *deltaRound, st state) {
	size := st.Z
	if size <= 0 {
		size = defaultPageSize
	}
	s.mu.Lock()
	p := st.P - rd.base
	if p < 0 {
		s.mu.Unlock()
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid or expired $skiptoken.")
		return
	}
	end := min(p+size, len(rd.items))
	items := rd.items[min(p, end):end]
	if end < len(rd.items) {
		s.mu.Unlock()
		s.writeDeltaPage(w, rd, items, s.skipLink(rd, state{R: st.R, P: rd.base + end, Z: size}))
		return
	}
	// Keep the last page alone (not the arrays it was cut from).
	last := slices.Clone(items)
	for i := range last {
		last[i].members = slices.Clone(last[i].members)
	}
	rd.items, rd.base = last, rd.base+p
	gen := s.deltaGen
	at := s.now().UnixNano()
	s.mu.Unlock()
	link := s.URL + "/v1.0/" + rd.res.key + "/delta?$deltatoken=" +
		encodeState(state{K: rd.res.key, T1: rd.t1, S: strings.Join(rd.sel, ","), At: at, G: gen})
	s.writeDeltaPage(w, rd, items, "", link)
}

// writeDeltaPage writes one page: next, or else deltaLink.
func (s *Server) writeDeltaPage(w http.ResponseWriter, rd *deltaRound, items []deltaItem, next string, deltaLink ...string) {
	t := rd.tenant
	t.mu.RLock()
	defer t.mu.RUnlock()
	b := pageStart(rd.res.key)
	if rd.res.key == "users" {
		b = slices.Grow(b, len(items)*640)
	}
	b = append(b, `,"value":[`...)
	withMembers := rd.sel == nil || slices.Contains(rd.sel, "members")
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case it.removed != "":
			b = append(b, '{')
			if rd.res.key == "users" {
				b = append(b, `"@odata.type":"#microsoft.graph.user",`...)
			}
			b = append(b, `"id":`...)
			id := it.obj.id
			if it.user != nil {
				id = it.user.ID
			}
			b = appendString(b, id)
			b = append(b, `,"@removed":{"reason":`...)
			b = appendString(b, it.removed)
			b = append(b, "}}"...)
		case it.user != nil && it.fields != 0:
			partial := []string{"id"}
			for j, f := range userFields {
				if it.fields&(1<<j) != 0 && (rd.sel == nil || slices.Contains(rd.sel, f)) {
					partial = append(partial, f)
				}
			}
			b = appendUser(b, it.user, partial, false)
		case it.user != nil:
			b = appendUser(b, it.user, rd.sel, false)
		default:
			b = appendDirObject(b, rd.res.key, it.obj, rd.sel)
			if withMembers && len(it.members) > 0 {
				b = b[:len(b)-1]
				b = append(b, `,"members@delta":[`...)
				for j, m := range it.members {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"@odata.type":`...)
					if m.group {
						b = append(b, `"#microsoft.graph.group"`...)
					} else {
						b = append(b, `"#microsoft.graph.user"`...)
					}
					b = append(b, `,"id":`...)
					b = appendString(b, m.id)
					if m.removed {
						b = append(b, `,"@removed":{"reason":"deleted"}`...)
					}
					b = append(b, '}')
				}
				b = append(b, "]}"...)
			}
		}
	}
	dl := ""
	if len(deltaLink) > 0 {
		dl = deltaLink[0]
	}
	writeRaw(w, pageEnd(b, next, dl, -1))
}

// appendDirObject writes a group's or role's selected properties.
func appendDirObject(b []byte, key string, o dirObject, sel []string) []byte {
	want := func(f string) bool { return sel == nil || slices.Contains(sel, f) }
	b = append(b, `{"id":`...)
	b = appendString(b, o.id)
	if want("displayName") {
		b = append(b, `,"displayName":`...)
		b = appendString(b, o.displayName)
	}
	if want("description") {
		b = append(b, `,"description":null`...)
	}
	if key == "groups" {
		if want("mail") {
			b = append(b, `,"mail":null`...)
		}
		if want("securityEnabled") {
			b = append(b, `,"securityEnabled":true`...)
		}
		if want("mailEnabled") {
			b = append(b, `,"mailEnabled":false`...)
		}
		if want("groupTypes") {
			b = append(b, `,"groupTypes":[]`...)
		}
	} else if want("roleTemplateId") {
		b = append(b, `,"roleTemplateId":`...)
		b = appendString(b, o.roleTemplateID)
	}
	return append(b, '}')
}

// window returns the changes of a log in (t0, t1]; with replays, the last
// change at or before t0 too. Caller holds t.mu.
func (t *Tenant) window(log []change, t0, t1 int64, replay bool) []change {
	i := sort.Search(len(log), func(i int) bool { return log[i].seq > t0 })
	if replay && i > 0 {
		i--
	}
	j := sort.Search(len(log), func(j int) bool { return log[j].seq > t1 })
	return log[i:max(i, j)]
}

// initialUsers lists every user for an initial round: live ones whole,
// soft-deleted ones as removed. Caller holds t.mu.
func (t *Tenant) initialUsers() []deltaItem {
	items := make([]deltaItem, 0, len(t.order))
	for _, id := range t.order {
		u := t.users[id]
		switch {
		case !u.deleted:
			items = append(items, deltaItem{user: u})
		case u.soft:
			items = append(items, deltaItem{user: u, removed: "changed"})
		}
	}
	return items
}

// changedUsers lists the users a window of changes touched, in order of
// first change, except those of which only unselected properties changed.
// Caller holds t.mu.
func (t *Tenant) changedUsers(window []change, sel []string, partial bool) []deltaItem {
	var tracked uint64
	for i, f := range userFields {
		if sel == nil || slices.Contains(sel, f) {
			tracked |= 1 << i
		}
	}
	type agg struct {
		fields  uint64
		created bool
	}
	seen := map[string]*agg{}
	var order []string
	for _, c := range window {
		a := seen[c.id]
		if a == nil {
			a = &agg{}
			seen[c.id] = a
			order = append(order, c.id)
		}
		a.fields |= c.fields
		a.created = a.created || c.what == changeCreated || c.what == changeDeleted
	}
	items := make([]deltaItem, 0, len(order))
	for _, id := range order {
		u, a := t.users[id], seen[id]
		it := deltaItem{user: u}
		switch {
		case u.deleted && u.soft:
			it.removed = "changed"
		case u.deleted:
			it.removed = "deleted"
		case !a.created && a.fields&tracked == 0:
			continue // "the resource ... does not appear in the delta response"
		case partial && !a.created:
			it.fields = a.fields
		}
		items = append(items, it)
	}
	return items
}

// objectOf returns a group or role of a resource as a round writes it,
// and its current member ids. Caller holds t.mu.
func (t *Tenant) objectOf(res *deltaResource, id string) (o dirObject, members []string, removed string) {
	if res.key == "groups" {
		g := t.groups[id]
		switch {
		case g.deleted && g.soft:
			return dirObject{id: id}, nil, "changed"
		case g.deleted:
			return dirObject{id: id}, nil, "deleted"
		}
		return dirObject{id: id, displayName: g.DisplayName}, g.Members, ""
	}
	r := t.roles[id]
	return dirObject{id: id, displayName: r.DisplayName, roleTemplateID: r.RoleTemplateID}, r.Members, ""
}

// memberEntry says what members@delta says of one member id now: whether
// it is a group, and whether it is (still) a member (listed says it is in
// the member list). ok is false for an id that is neither a user nor a
// group. Caller holds t.mu.
func (t *Tenant) memberEntry(id string, listed bool) (m deltaMember, ok bool) {
	m.id = id
	if u, isUser := t.users[id]; isUser {
		m.removed = u.deleted || !listed
		return m, true
	}
	if g, isGroup := t.groups[id]; isGroup {
		m.group = true
		m.removed = g.deleted || !listed
		return m, true
	}
	return m, false
}

// initialObjects lists every group or role with all its members, for an
// initial round. Caller holds t.mu.
func (t *Tenant) initialObjects(res *deltaResource, per int) []deltaItem {
	ids := t.roleList
	if res.key == "groups" {
		ids = t.groupList
	}
	var objects [][]deltaItem
	for _, id := range ids {
		o, members, removed := t.objectOf(res, id)
		switch {
		case removed == "changed":
			objects = append(objects, []deltaItem{{obj: o, removed: removed}})
			continue
		case removed != "":
			continue
		}
		var entries []deltaMember
		for _, m := range members {
			if e, ok := t.memberEntry(m, true); ok && !e.removed {
				entries = append(entries, e)
			}
		}
		objects = append(objects, chunk(o, entries, per))
	}
	return interleave(objects)
}

// changedObjects lists the groups or roles a window of changes touched:
// removed ones as such, new or restored ones with all their members,
// others with the members added or removed. Caller holds t.mu.
func (t *Tenant) changedObjects(res *deltaResource, window []change, per int) []deltaItem {
	type agg struct {
		created bool
		touched []string
	}
	seen := map[string]*agg{}
	var order []string
	for _, c := range window {
		a := seen[c.id]
		if a == nil {
			a = &agg{}
			seen[c.id] = a
			order = append(order, c.id)
		}
		if c.what == changeCreated {
			a.created = true
		}
		if c.member != "" && !slices.Contains(a.touched, c.member) {
			a.touched = append(a.touched, c.member)
		}
	}
	var objects [][]deltaItem
	for _, id := range order {
		a := seen[id]
		o, members, removed := t.objectOf(res, id)
		if removed != "" {
			objects = append(objects, []deltaItem{{obj: o, removed: removed}})
			continue
		}
		var entries []deltaMember
		isMember := make(map[string]bool, len(members))
		for _, m := range members {
			isMember[m] = true
		}
		written := map[string]bool{}
		if a.created {
			for _, m := range members {
				if e, ok := t.memberEntry(m, true); ok && !e.removed {
					entries = append(entries, e)
					written[m] = true
				}
			}
		}
		for _, m := range a.touched {
			if e, ok := t.memberEntry(m, isMember[m]); ok && !written[m] {
				entries = append(entries, e)
			}
		}
		objects = append(objects, chunk(o, entries, per))
	}
	return interleave(objects)
}

// chunk splits an object's members over objects of at most per members
// each; an object without members comes once, without members@delta.
func chunk(o dirObject, members []deltaMember, per int) []deltaItem {
	if len(members) == 0 {
		return []deltaItem{{obj: o}}
	}
	var out []deltaItem
	for i := 0; i < len(members); i += per {
		out = append(out, deltaItem{obj: o, members: members[i:min(i+per, len(members))]})
	}
	return out
}

// interleave orders the objects' chunks first chunks first, so that a
// large group's later chunks come after other groups.
func interleave(objects [][]deltaItem) []deltaItem {
	var out []deltaItem
	for round := 0; ; round++ {
		added := false
		for _, chunks := range objects {
			if round < len(chunks) {
				out = append(out, chunks[round])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

package m365test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// userFields are the user properties the fake knows; defaultUserFields are
// those Graph returns without $select.
var (
	userFields = []string{"id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "jobTitle",
		"accountEnabled", "userType", "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesSamAccountName",
		"onPremisesSecurityIdentifier", "assignedLicenses", "businessPhones", "mobilePhone", "officeLocation", "preferredLanguage",
		"lastPasswordChangeDateTime"}
	defaultUserFields = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
		"officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
	groupFields = []string{"id", "displayName", "description", "mail", "securityEnabled", "mailEnabled", "groupTypes"}
	roleFields  = []string{"id", "displayName", "roleTemplateId", "description"}
)

const defaultPageSize = 100

// query is a validated OData query.
type query struct {
	sel    []string // nil: the type's default set
	top    int
	filter []clause
	count  bool
	skip   int
}

type clause struct {
	fn, field, op string
	value         any
}

// parseQuery validates the system query options for a collection of
// entities with the given properties.
func parseQuery(w http.ResponseWriter, r *http.Request, props []string, collection bool) (*query, bool) {
	q := r.URL.Query()
	out := &query{top: defaultPageSize}
	for k := range q {
		if strings.HasPrefix(k, "$") && !slices.Contains([]string{"$select", "$top", "$filter", "$count", "$skiptoken", "$search", "$orderby", "$deltatoken", "$expand"}, k) {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Query option '%s' is not supported.", k))
			return nil, false
		}
	}
	if s := q.Get("$select"); s != "" {
		for f := range strings.SplitSeq(s, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(props, f) {
				graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", f))
				return nil, false
			}
			out.sel = append(out.sel, f)
		}
	}
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 999 {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", s))
			return nil, false
		}
		out.top = n
	}
	advanced := q.Has("$search") || q.Has("$orderby") || q.Has("$count")
	if f := q.Get("$filter"); f != "" {
		cl, adv, err := parseFilter(f)
		if err != nil {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid filter clause: "+err.Error())
			return nil, false
		}
		for _, c := range cl {
			if !slices.Contains(props, c.field) {
				graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", c.field))
				return nil, false
			}
		}
		out.filter = cl
		advanced = advanced || adv
	}
	if advanced {
		if !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") || q.Get("$count") != "true" {
			graphError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported Query.")
			return nil, false
		}
		if q.Has("$search") || q.Has("$orderby") {
			graphError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "The fake supports $count and $filter among the advanced query options, not $search or $orderby.")
			return nil, false
		}
		out.count = true
	}
	if !collection && (q.Has("$top") || q.Has("$filter")) {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Query options $top and $filter apply to collections only.")
		return nil, false
	}
	if s := q.Get("$skiptoken"); s != "" {
		st, ok := decodeState(s)
		if !ok {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid $skiptoken.")
			return nil, false
		}
		out.skip = st.P
	}
	return out, true
}

// parseFilter reads clauses joined by "and": `prop eq 'v'`, `prop eq true`,
// `prop ne …`, `startsWith(prop,'v')`, `endsWith(prop,'v')`. It reports
// whether the filter needs advanced query capabilities (ne, not, endsWith).
func parseFilter(f string) ([]clause, bool, error) {
	var out []clause
	adv := false
	for _, part := range splitAnd(f) {
		part = strings.TrimSpace(part)
		lower := strings.ToLower(part)
		switch {
		case strings.HasPrefix(lower, "not(") || strings.HasPrefix(lower, "not "):
			return nil, true, fmt.Errorf("not is not supported by the fake")
		case strings.HasPrefix(lower, "startswith(") || strings.HasPrefix(lower, "endswith("):
			open := strings.IndexByte(part, '(')
			if !strings.HasSuffix(part, ")") {
				return nil, false, fmt.Errorf("unbalanced parenthesis in %q", part)
			}
			field, val, ok := strings.Cut(part[open+1:len(part)-1], ",")
			if !ok {
				return nil, false, fmt.Errorf("%q needs two arguments", part)
			}
			v, err := literal(strings.TrimSpace(val))
			if err != nil {
				return nil, false, err
			}
			s, isStr := v.(string)
			if !isStr {
				return nil, false, fmt.Errorf("%q needs a string", part)
			}
			fn := strings.ToLower(part[:open])
			if fn == "endswith" {
				adv = true
			}
			out = append(out, clause{fn: fn, field: strings.TrimSpace(field), value: s})
		default:
			fields := strings.SplitN(part, " ", 3)
			if len(fields) != 3 {
				return nil, false, fmt.Errorf("cannot parse %q", part)
			}
			op := strings.ToLower(fields[1])
			switch op {
			case "eq":
			case "ne":
				adv = true
			default:
				return nil, false, fmt.Errorf("operator %q is not supported by the fake", op)
			}
			v, err := literal(strings.TrimSpace(fields[2]))
			if err != nil {
				return nil, false, err
			}
			out = append(out, clause{field: fields[0], op: op, value: v})
		}
	}
	return out, adv, nil
}

// splitAnd splits on " and " outside quoted strings.
func splitAnd(f string) []string {
	var parts []string
	inStr := false
	start := 0
	for i := 0; i < len(f); i++ {
		if f[i] == '\'' {
			inStr = !inStr
			continue
		}
		if !inStr && i+5 <= len(f) && strings.EqualFold(f[i:i+5], " and ") {
			parts = append(parts, f[start:i])
			start = i + 5
			i += 4
		}
	}
	return append(parts, f[start:])
}

func literal(s string) (any, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		inner := s[1 : len(s)-1]
		if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") > 0 {
			return nil, fmt.Errorf("unescaped quote in %s", s)
		}
		return strings.ReplaceAll(inner, "''", "'"), nil
	}
	return nil, fmt.Errorf("unsupported literal %s", s)
}

func (q *query) match(prop func(string) any) bool {
	for _, c := range q.filter {
		v := prop(c.field)
		switch c.fn {
		case "startswith", "endswith":
			s, _ := v.(string)
			want := strings.ToLower(c.value.(string))
			if c.fn == "startswith" && !strings.HasPrefix(strings.ToLower(s), want) {
				return false
			}
			if c.fn == "endswith" && !strings.HasSuffix(strings.ToLower(s), want) {
				return false
			}
		default:
			eq := equalValue(v, c.value)
			if (c.op == "eq") != eq {
				return false
			}
		}
	}
	return true
}

func equalValue(a, b any) bool {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			return strings.EqualFold(as, bs)
		}
		return as == "" && b == nil
	}
	return a == b
}

func (u *userRec) prop(f string) any {
	switch f {
	case "id":
		return u.ID
	case "userPrincipalName":
		return u.UserPrincipalName
	case "displayName":
		return u.DisplayName
	case "givenName":
		return u.GivenName
	case "surname":
		return u.Surname
	case "mail":
		return u.Mail
	case "jobTitle":
		return u.JobTitle
	case "accountEnabled":
		return !u.Disabled
	case "userType":
		if u.Guest {
			return "Guest"
		}
		return "Member"
	case "onPremisesSyncEnabled":
		if u.OnPremisesSyncEnabled == nil {
			return nil
		}
		return *u.OnPremisesSyncEnabled
	case "onPremisesImmutableId":
		return u.OnPremisesImmutableID
	case "onPremisesSamAccountName":
		return u.OnPremisesSamAccountName
	case "onPremisesSecurityIdentifier":
		return u.OnPremisesSecurityIdentifier
	}
	return nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, fmt.Sprintf(`\u%04x`, c)...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendUser appends a user object with the selected fields.
func appendUser(b []byte, u *userRec, sel []string, typed bool) []byte {
	if sel == nil {
		sel = defaultUserFields
	}
	b = append(b, '{')
	if typed {
		b = append(b, `"@odata.type":"#microsoft.graph.user",`...)
	}
	first := true
	for _, f := range sel {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, f)
		b = append(b, ':')
		switch f {
		case "accountEnabled":
			b = strconv.AppendBool(b, !u.Disabled)
		case "onPremisesSyncEnabled":
			if u.OnPremisesSyncEnabled == nil {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendBool(b, *u.OnPremisesSyncEnabled)
			}
		case "assignedLicenses":
			b = append(b, '[')
			for i, l := range u.Licenses {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"disabledPlans":[],"skuId":`...)
				b = appendString(b, l)
				b = append(b, '}')
			}
			b = append(b, ']')
		case "businessPhones":
			b = append(b, "[]"...)
		case "mobilePhone", "officeLocation", "preferredLanguage":
			b = append(b, "null"...)
		case "lastPasswordChangeDateTime":
			if u.LastPasswordChange.IsZero() {
				b = append(b, "null"...)
			} else {
				b = appendString(b, u.LastPasswordChange.UTC().Format(time.RFC3339))
			}
		case "id", "userPrincipalName":
			b = appendString(b, u.prop(f).(string))
		default:
			s, _ := u.prop(f).(string)
			b = appendNullable(b, s)
		}
	}
	return append(b, '}')
}

// state is the content of the fake's opaque skip and delta tokens.
type state struct {
	P  int    `json:"p"`            // position
	R  string `json:"r,omitempty"`  // delta round (skip tokens)
	Z  int    `json:"z,omitempty"`  // delta page size (skip tokens)
	T1 int64  `json:"t1,omitempty"` // delta link: changes up to this sequence number were read
	S  string `json:"s,omitempty"`  // delta link: $select
	K  string `json:"k,omitempty"`  // delta link: resource (users, groups, directoryRoles)
	At int64  `json:"at,omitempty"` // delta link issue time (unix ns)
	G  int64  `json:"g,omitempty"`  // delta link generation (ExpireDeltaLinks)
}

func encodeState(s state) string {
	b, _ := json.Marshal(s)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeState(tok string) (state, bool) {
	var s state
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || json.Unmarshal(b, &s) != nil || s.P < 0 {
		return state{}, false
	}
	return s, true
}

// nextLink rebuilds the request URL with a new $skiptoken.
func (s *Server) nextLink(r *http.Request, st state) string {
	q := r.URL.Query()
	q.Set("$skiptoken", encodeState(st))
	return s.URL + r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "%24", "$")
}

func (s *Server) graph(w http.ResponseWriter, r *http.Request, t *Tenant, kind string) {
	p := strings.TrimPrefix(r.URL.Path, "/v1.0")
	switch kind {
	case KindUsers:
		s.listUsers(w, r, t)
	case KindDelta, KindGroupsDelta, KindRolesDelta:
		s.delta(w, r, t, kind)
	case KindUser:
		s.oneUser(w, r, t, strings.TrimPrefix(p, "/users/"))
	case KindUserMemberOf:
		s.memberOf(w, r, t, strings.TrimSuffix(strings.TrimPrefix(p, "/users/"), "/memberOf"), true)
	case KindGroups:
		s.listGroups(w, r, t)
	case KindGroup:
		s.oneGroup(w, r, t, strings.TrimPrefix(p, "/groups/"))
	case KindGroupMembers:
		s.groupMembers(w, r, t, strings.TrimPrefix(p, "/groups/"))
	case KindRoles:
		s.listRoles(w, r, t)
	case KindRoleMembers:
		s.roleMembers(w, r, t, strings.TrimPrefix(p, "/directoryRoles"))
	default:
		graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(p, "/")))
	}
}

func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func pageStart(ctx string) []byte {
	b := make([]byte, 0, 4096)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, "https://graph.microsoft.com/v1.0/$metadata#"+ctx)
	return b
}

func pageEnd(b []byte, next, deltaLink string, count int) []byte {
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, next)
	}
	if deltaLink != "" {
		b = append(b, `,"@odata.deltaLink":`...)
		b = appendString(b, deltaLink)
	}
	if count >= 0 {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(count), 10)
	}
	return append(b, '}')
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, t *Tenant) {
	q, ok := parseQuery(w, r, userFields, true)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	b := pageStart("users")
	b = slices.Grow(b, q.top*640)
	count := -1
	if q.count {
		count = 0
		for _, id := range t.order {
			if u := t.users[id]; !u.deleted && q.match(u.prop) {
				count++
			}
		}
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(count), 10)
	}
	b = append(b, `,"value":[`...)
	n, pos := 0, q.skip
	for ; pos < len(t.order) && n < q.top; pos++ {
		u := t.users[t.order[pos]]
		if u.deleted || !q.match(u.prop) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendUser(b, u, q.sel, false)
		n++
	}
	next := ""
	for rest := pos; rest < len(t.order); rest++ {
		if u := t.users[t.order[rest]]; !u.deleted && q.match(u.prop) {
			next = s.nextLink(r, state{P: pos})
			break
		}
	}
	writeRaw(w, pageEnd(b, next, "", -1))
}

func (s *Server) oneUser(w http.ResponseWriter, r *http.Request, t *Tenant, key string) {
	q, ok := parseQuery(w, r, userFields, false)
	if !ok {
		return
	}
	key, _ = url.PathUnescape(key)
	t.mu.RLock()
	defer t.mu.RUnlock()
	u, found := t.users[key]
	if !found {
		for _, c := range t.users {
			if strings.EqualFold(c.UserPrincipalName, key) {
				u, found = c, true
				break
			}
		}
	}
	if !found || u.deleted {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key))
		return
	}
	writeRaw(w, appendUser(nil, u, q.sel, false))
}

func appendGroup(b []byte, g *groupRec, sel []string, typed bool) []byte {
	b = append(b, '{')
	if typed {
		b = append(b, `"@odata.type":"#microsoft.graph.group",`...)
	}
	b = append(b, `"id":`...)
	b = appendString(b, g.ID)
	if sel == nil || slices.Contains(sel, "displayName") {
		b = append(b, `,"displayName":`...)
		b = appendString(b, g.DisplayName)
	}
	if sel == nil || slices.Contains(sel, "securityEnabled") {
		b = append(b, `,"securityEnabled":true`...)
	}
	return append(b, '}')
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, t *Tenant) {
	q, ok := parseQuery(w, r, groupFields, true)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var match []*groupRec
	for _, id := range t.groupList {
		g, live := t.liveGroup(id)
		if !live {
			continue
		}
		if q.match(func(f string) any {
			switch f {
			case "id":
				return g.ID
			case "displayName":
				return g.DisplayName
			case "securityEnabled":
				return true
			}
			return nil
		}) {
			match = append(match, g)
		}
	}
	b := pageStart("groups")
	b = append(b, `,"value":[`...)
	end := min(q.skip+q.top, len(match))
	for i := q.skip; i < end; i++ {
		if i > q.skip {
			b = append(b, ',')
		}
		b = appendGroup(b, match[i], q.sel, false)
	}
	next := ""
	if end < len(match) {
		next = s.nextLink(r, state{P: end})
	}
	count := -1
	if q.count {
		count = len(match)
	}
	writeRaw(w, pageEnd(b, next, "", count))
}

func (s *Server) oneGroup(w http.ResponseWriter, r *http.Request, t *Tenant, id string) {
	q, ok := parseQuery(w, r, groupFields, false)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, found := t.liveGroup(id)
	if !found {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
		return
	}
	writeRaw(w, appendGroup(nil, g, q.sel, false))
}

// writeMembers writes one page of a member list: users first, then
// groups.
func (s *Server) writeMembers(w http.ResponseWriter, r *http.Request, q *query, users []*userRec, groups []*groupRec) {
	s.writeDirectoryObjects(w, r, q, len(users)+len(groups), func(b []byte, i int) []byte {
		if i < len(users) {
			return appendUser(b, users[i], q.sel, true)
		}
		return appendGroup(b, groups[i-len(users)], q.sel, true)
	})
}

// writeDirectoryObjects writes the page of a collection of n typed
// directory objects that starts at q.skip, item appending the i-th, with
// a nextLink when more follow.
func (s *Server) writeDirectoryObjects(w http.ResponseWriter, r *http.Request, q *query, n int, item func(b []byte, i int) []byte) {
	b := pageStart("directoryObjects")
	end := min(q.skip+q.top, n)
	b = slices.Grow(b, (end-q.skip)*640)
	b = append(b, `,"value":[`...)
	for i := q.skip; i < end; i++ {
		if i > q.skip {
			b = append(b, ',')
		}
		b = item(b, i)
	}
	next := ""
	if end < n {
		next = s.nextLink(r, state{P: end})
	}
	writeRaw(w, pageEnd(b, next, "", -1))
}

// memberOf serves /users/{id}/memberOf and /groups/{id}/memberOf: the
// live groups and the directory roles the user or group is a direct
// member of, typed, paged as member lists are.
func (s *Server) memberOf(w http.ResponseWriter, r *http.Request, t *Tenant, id string, user bool) {
	q, ok := parseQuery(w, r, []string{"id", "displayName", "roleTemplateId"}, true)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	found := false
	if user {
		_, found = t.liveUser(id)
	} else {
		_, found = t.liveGroup(id)
	}
	if !found {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
		return
	}
	var groups []*groupRec
	for _, gid := range t.groupList {
		if g := t.groups[gid]; !g.deleted && slices.Contains(g.Members, id) {
			groups = append(groups, g)
		}
	}
	var roles []*Role
	for _, rid := range t.roleList {
		if role := t.roles[rid]; slices.Contains(role.Members, id) {
			roles = append(roles, role)
		}
	}
	s.writeDirectoryObjects(w, r, q, len(groups)+len(roles), func(b []byte, i int) []byte {
		if i < len(groups) {
			return appendGroup(b, groups[i], q.sel, true)
		}
		return appendRole(b, roles[i-len(groups)], q.sel, true)
	})
}

// groupMembers serves /groups/{id}/members and /transitiveMembers, with or
// without the /microsoft.graph.user cast, and /groups/{id}/memberOf.
func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request, t *Tenant, rest string) {
	parts := strings.Split(rest, "/")
	if len(parts) == 2 && parts[1] == "memberOf" {
		s.memberOf(w, r, t, parts[0], false)
		return
	}
	if len(parts) < 2 || len(parts) > 3 || (parts[1] != "members" && parts[1] != "transitiveMembers") ||
		(len(parts) == 3 && parts[2] != "microsoft.graph.user") {
		graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", parts[len(parts)-1]))
		return
	}
	q, ok := parseQuery(w, r, userFields, true)
	if !ok {
		return
	}
	usersOnly := len(parts) == 3
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, found := t.liveGroup(parts[0])
	if !found {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", parts[0]))
		return
	}
	if parts[1] == "transitiveMembers" {
		var groups []*groupRec
		if !usersOnly {
			groups = t.nestedGroups(g.Members)
		}
		s.writeMembers(w, r, q, t.groupUsers(g), groups)
		return
	}
	users, groups := t.direct(g.Members, usersOnly)
	s.writeMembers(w, r, q, users, groups)
}

// direct lists direct members. Caller holds t.mu.
func (t *Tenant) direct(ids []string, usersOnly bool) ([]*userRec, []*groupRec) {
	var users []*userRec
	var groups []*groupRec
	for _, id := range ids {
		if u, ok := t.liveUser(id); ok {
			users = append(users, u)
		} else if g, ok := t.liveGroup(id); ok && !usersOnly {
			groups = append(groups, g)
		}
	}
	return users, groups
}

// nestedGroups lists the groups reachable from members, by id. Caller
// holds t.mu.
func (t *Tenant) nestedGroups(members []string) []*groupRec {
	seen := map[string]bool{}
	var out []*groupRec
	stack := slices.Clone(members)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		g, ok := t.liveGroup(id)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, g)
		stack = append(stack, g.Members...)
	}
	slices.SortFunc(out, func(a, b *groupRec) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, t *Tenant) {
	q, ok := parseQuery(w, r, roleFields, false)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	b := pageStart("directoryRoles")
	b = append(b, `,"value":[`...)
	for i, id := range t.roleList {
		role := t.roles[id]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRole(b, role, q.sel, false)
	}
	writeRaw(w, pageEnd(b, "", "", -1))
}

// appendRole appends a directory role with the selected properties,
// typed in a collection of directory objects.
func appendRole(b []byte, role *Role, sel []string, typed bool) []byte {
	b = append(b, '{')
	if typed {
		b = append(b, `"@odata.type":"#microsoft.graph.directoryRole",`...)
	}
	b = append(b, `"id":`...)
	b = appendString(b, role.ID)
	if sel == nil || slices.Contains(sel, "displayName") {
		b = append(b, `,"displayName":`...)
		b = appendString(b, role.DisplayName)
	}
	if sel == nil || slices.Contains(sel, "roleTemplateId") {
		b = append(b, `,"roleTemplateId":`...)
		b = appendString(b, role.RoleTemplateID)
	}
	if sel == nil || slices.Contains(sel, "description") {
		b = append(b, `,"description":null`...)
	}
	return append(b, '}')
}

// roleMembers serves /directoryRoles/{id}/members and
// /directoryRoles(roleTemplateId='…')/members.
func (s *Server) roleMembers(w http.ResponseWriter, r *http.Request, t *Tenant, rest string) {
	var key string
	byTemplate := false
	switch {
	case strings.HasPrefix(rest, "(roleTemplateId='") && strings.HasSuffix(rest, "')/members"):
		key = strings.TrimSuffix(strings.TrimPrefix(rest, "(roleTemplateId='"), "')/members")
		byTemplate = true
	case strings.HasPrefix(rest, "/") && strings.HasSuffix(rest, "/members"):
		key = strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/members")
	default:
		graphError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'directoryRoles"+rest+"'.")
		return
	}
	q, ok := parseQuery(w, r, userFields, true)
	if !ok {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var role *Role
	for _, id := range t.roleList {
		if c := t.roles[id]; (byTemplate && c.RoleTemplateID == key) || (!byTemplate && c.ID == key) {
			role = c
		}
	}
	if role == nil {
		graphError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key))
		return
	}
	users, groups := t.direct(role.Members, false)
	s.writeMembers(w, r, q, users, groups)
}

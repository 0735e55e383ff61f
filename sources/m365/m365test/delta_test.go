package m365test_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// deltaRound follows one delta round from first to its @odata.deltaLink
// and returns its objects in order, the number of pages and the link.
func (c *client) deltaRound(first string, hdr ...string) (objects []map[string]any, pages int, deltaLink string) {
	c.t.Helper()
	next := first
	for next != "" {
		pages++
		if pages > 1000 {
			c.t.Fatal("more than 1000 pages")
		}
		status, _, body := c.get(next, hdr...)
		if status != http.StatusOK {
			c.t.Fatalf("GET %s: %d %v", next, status, body)
		}
		vals, ok := body["value"].([]any)
		if !ok {
			c.t.Fatalf("page without value: %v", body)
		}
		for _, v := range vals {
			objects = append(objects, v.(map[string]any))
		}
		nl, _ := body["@odata.nextLink"].(string)
		dl, _ := body["@odata.deltaLink"].(string)
		if (nl == "") == (dl == "") {
			c.t.Fatalf("page with nextLink %q and deltaLink %q: want exactly one", nl, dl)
		}
		next, deltaLink = nl, dl
	}
	return objects, pages, deltaLink
}

// memberState folds the members@delta of a round's objects into the
// members each group or role gained (true) or lost (false), and counts
// the objects per id.
func memberState(t *testing.T, objects []map[string]any) (members map[string]map[string]bool, seen map[string]int) {
	t.Helper()
	members, seen = map[string]map[string]bool{}, map[string]int{}
	for _, o := range objects {
		id := o["id"].(string)
		seen[id]++
		md, ok := o["members@delta"].([]any)
		if !ok {
			continue
		}
		if members[id] == nil {
			members[id] = map[string]bool{}
		}
		for _, m := range md {
			m := m.(map[string]any)
			typ, _ := m["@odata.type"].(string)
			if typ != "#microsoft.graph.user" && typ != "#microsoft.graph.group" {
				t.Errorf("member %v without @odata.type", m)
			}
			_, removed := m["@removed"]
			if removed {
				if r := m["@removed"].(map[string]any)["reason"]; r != "deleted" {
					t.Errorf("member removal reason %v", r)
				}
			}
			members[id][m["id"].(string)] = !removed
		}
	}
	return members, seen
}

func TestGroupsDeltaSplitsLargeMemberLists(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{DeltaMembersPerObject: 7})
	defer srv.Close()
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 3, Users: 60, Groups: 3})
	c := newClient(t, srv, srv.TenantID)
	objects, pages, link := c.deltaRound("/v1.0/groups/delta?$select=id,displayName,members", "Prefer", "odata.maxpagesize=2")
	if link == "" || pages < 5 {
		t.Fatalf("%d pages, link %q: want the groups over several pages", pages, link)
	}
	members, seen := memberState(t, objects)
	for name, id := range gen.Groups {
		if seen[id] < 3 {
			t.Errorf("group %s came %d times; 20 members by 7 need 3 objects", name, seen[id])
		}
		if len(members[id]) != 20 {
			t.Errorf("group %s: %d members, want 20", name, len(members[id]))
		}
	}
	// The chunks of one group do not all follow each other.
	first := slices.IndexFunc(objects, func(o map[string]any) bool { return o["id"] == gen.Groups["Finance"] })
	if objects[first+1]["id"] == gen.Groups["Finance"] {
		t.Errorf("the second object of Finance follows the first: groups should interleave")
	}
	for _, o := range objects {
		if o["displayName"] == nil {
			t.Errorf("object %v without its properties", o)
		}
	}
	if len(members[gen.AllStaff]) != 3 {
		t.Errorf("All Staff: %v, want its 3 groups", members[gen.AllStaff])
	}

	// Nothing changed: one page, no objects, a new link.
	objects, pages, link2 := c.deltaRound(link)
	if len(objects) != 0 || pages != 1 || link2 == "" {
		t.Fatalf("quiet round: %d objects over %d pages", len(objects), pages)
	}

	// A member added, one removed, one group renamed, one made, one
	// deleted for good.
	fin, sales := gen.Groups["Finance"], gen.Groups["Sales"]
	tn.AddMembers(fin, gen.Users[1])
	tn.RemoveMembers(sales, gen.Users[1])
	tn.RenameGroup(gen.Groups["Engineering"], "R&D")
	made := tn.AddGroup("New", gen.Users[2], fin)
	tn.DeleteGroup(gen.AllStaff, false)
	objects, _, _ = c.deltaRound(link2)
	members, seen = memberState(t, objects)
	want := map[string]map[string]bool{
		fin:   {gen.Users[1]: true},
		sales: {gen.Users[1]: false},
		made:  {gen.Users[2]: true, fin: true},
	}
	for id, w := range want {
		if !maps.Equal(members[id], w) {
			t.Errorf("group %s: members@delta %v, want %v", id, members[id], w)
		}
	}
	byID := map[string]map[string]any{}
	for _, o := range objects {
		byID[o["id"].(string)] = o
	}
	if o := byID[gen.Groups["Engineering"]]; o == nil || o["displayName"] != "R&D" || o["members@delta"] != nil {
		t.Errorf("renamed group: %v", o)
	}
	if o := byID[fin]; o["displayName"] != "Finance" {
		t.Errorf("a group with member changes comes with its properties too: %v", o)
	}
	if o := byID[gen.AllStaff]; o == nil || o["@removed"].(map[string]any)["reason"] != "deleted" {
		t.Errorf("deleted group: %v", o)
	}
	if len(seen) != 5 {
		t.Errorf("changed groups %v, want 5", seen)
	}
}

func TestUserDeletionShowsInGroupAndRoleDeltas(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	soft := tn.AddUser(m365test.User{UserPrincipalName: "soft@acme.example"})
	hard := tn.AddUser(m365test.User{UserPrincipalName: "hard@acme.example"})
	g := tn.AddGroup("Staff", soft, hard)
	ga := tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(ga, soft)
	c := newClient(t, srv, srv.TenantID)
	_, _, ul := c.deltaRound("/v1.0/users/delta?$select=id,userPrincipalName,accountEnabled")
	_, _, gl := c.deltaRound("/v1.0/groups/delta?$select=id,displayName,members")
	_, _, rl := c.deltaRound("/v1.0/directoryRoles/delta")

	tn.DeleteUser(soft, true)
	tn.DeleteUser(hard, false)
	users, _, ul := c.deltaRound(ul)
	reasons := map[string]any{}
	for _, u := range users {
		reasons[u["id"].(string)] = u["@removed"].(map[string]any)["reason"]
	}
	if reasons[soft] != "changed" || reasons[hard] != "deleted" || len(reasons) != 2 {
		t.Errorf("removed users: %v", reasons)
	}
	groups, _, gl := c.deltaRound(gl)
	members, _ := memberState(t, groups)
	if !maps.Equal(members[g], map[string]bool{soft: false, hard: false}) {
		t.Errorf("group after the deletions: %v", members[g])
	}
	roles, _, rl := c.deltaRound(rl)
	members, _ = memberState(t, roles)
	if !maps.Equal(members[ga], map[string]bool{soft: false}) {
		t.Errorf("role after the deletion: %v", members[ga])
	}
	// An initial round lists the soft-deleted user as removed.
	users, _, _ = c.deltaRound("/v1.0/users/delta?$select=id")
	if n := slices.IndexFunc(users, func(u map[string]any) bool { return u["id"] == soft && u["@removed"] != nil }); n < 0 {
		t.Errorf("initial round %v: want the soft-deleted user as removed", users)
	}

	if !tn.RestoreUser(soft) || tn.RestoreUser(hard) {
		t.Fatal("restore: only the soft-deleted user comes back")
	}
	users, _, _ = c.deltaRound(ul)
	if len(users) != 1 || users[0]["id"] != soft || users[0]["userPrincipalName"] != "soft@acme.example" || users[0]["@removed"] != nil {
		t.Errorf("restored user: %v", users)
	}
	groups, _, _ = c.deltaRound(gl)
	if members, _ := memberState(t, groups); !maps.Equal(members[g], map[string]bool{soft: true}) {
		t.Errorf("group after the restore: %v", members[g])
	}
	roles, _, _ = c.deltaRound(rl)
	if members, _ := memberState(t, roles); !maps.Equal(members[ga], map[string]bool{soft: true}) {
		t.Errorf("role after the restore: %v", members[ga])
	}
}

func TestRolesDelta(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	ann := tn.AddUser(m365test.User{UserPrincipalName: "ann@acme.example"})
	bob := tn.AddUser(m365test.User{UserPrincipalName: "bob@acme.example"})
	admins := tn.AddGroup("Admins", bob)
	ga := tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(ga, ann, admins)
	c := newClient(t, srv, srv.TenantID)
	roles, _, link := c.deltaRound("/v1.0/directoryRoles/delta")
	members, _ := memberState(t, roles)
	if len(roles) != 1 || roles[0]["roleTemplateId"] != m365test.GlobalAdministrator || roles[0]["displayName"] != "Global Administrator" ||
		!maps.Equal(members[ga], map[string]bool{ann: true, admins: true}) {
		t.Fatalf("initial roles %v", roles)
	}
	typ := roles[0]["members@delta"].([]any)[1].(map[string]any)["@odata.type"]
	if typ != "#microsoft.graph.group" {
		t.Errorf("a role-assignable group member has type %v", typ)
	}
	tn.UnassignRole(m365test.GlobalAdministrator, ann)
	ua := tn.ActivateRole(m365test.UserAdministrator, "")
	tn.AssignRole(ua, bob)
	roles, _, _ = c.deltaRound(link)
	members, _ = memberState(t, roles)
	if !maps.Equal(members[ga], map[string]bool{ann: false}) || !maps.Equal(members[ua], map[string]bool{bob: true}) || len(roles) != 2 {
		t.Errorf("changed roles %v", roles)
	}
}

func TestDeltaLinksExpire(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	a := tn.AddUser(m365test.User{UserPrincipalName: "a@acme.example"})
	tn.AddGroup("Staff", a)
	tn.ActivateRole(m365test.GlobalAdministrator, "")
	c := newClient(t, srv, srv.TenantID)
	for _, path := range []string{"/v1.0/users/delta?$select=id,displayName", "/v1.0/groups/delta?$select=id,displayName,members", "/v1.0/directoryRoles/delta"} {
		_, _, link := c.deltaRound(path)
		srv.ExpireDeltaLinks()
		status, _, body := c.get(link)
		if status != http.StatusBadRequest || errCode(body) != "syncStateNotFound" {
			t.Errorf("%s: expired link answered %d %v", path, status, body)
		}

		_, _, link = c.deltaRound(path)
		srv.ExpireDeltaLinksAs(http.StatusBadRequest, "resyncRequired")
		if status, _, body := c.get(link); status != http.StatusBadRequest || errCode(body) != "resyncRequired" {
			t.Errorf("%s: resync answered %d %v", path, status, body)
		}

		_, _, link = c.deltaRound(path)
		srv.ExpireDeltaLinksAs(http.StatusGone, "resyncRequired")
		status, hdr, body := c.get(link)
		loc := hdr.Get("Location")
		if status != http.StatusGone || errCode(body) != "resyncRequired" || !strings.HasSuffix(loc, "$deltatoken=") {
			t.Errorf("%s: 410 answered %d %v, Location %q", path, status, body, loc)
		}
		// The Location starts a new round with the first request's $select.
		objects, _, link := c.deltaRound(loc)
		if link == "" || len(objects) != 1 {
			t.Errorf("%s: round from Location: %v", path, objects)
		}
		if _, hasMail := objects[0]["mail"]; strings.HasPrefix(path, "/v1.0/users") && hasMail {
			t.Errorf("round from Location lost the $select: %v", objects[0])
		}
	}
}

func TestDeltaQueryOptions(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{PartialDeltaUpdates: true})
	defer srv.Close()
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 9, Users: 30})
	c := newClient(t, srv, srv.TenantID)

	if status, _, body := c.get("/v1.0/users/delta?$top=10"); status != 400 {
		t.Errorf("$top on delta: %d %v", status, body)
	}
	status, _, body := c.get("/v1.0/users/delta?$select=id,accountEnabled,displayName", "Prefer", "odata.maxpagesize=10")
	next, _ := body["@odata.nextLink"].(string)
	if status != 200 || next == "" {
		t.Fatalf("first page: %d %v", status, body)
	}
	if status, _, body := c.get(next + "&$select=id"); status != 400 {
		t.Errorf("$select with $skiptoken: %d %v", status, body)
	}
	// The $select of the first request holds for the whole round and the
	// next: a change to a property not selected never surfaces.
	users, _, link := c.deltaRound(next)
	for _, u := range users {
		if _, ok := u["mail"]; ok || u["accountEnabled"] == nil {
			t.Fatalf("user %v: want the first request's $select", u)
		}
	}
	tn.UpdateUser(gen.Users[0], func(u *m365test.User) { u.Mail = "changed@acme.example" })
	tn.UpdateUser(gen.Users[1], func(u *m365test.User) { u.Disabled = true })
	users, _, link = c.deltaRound(link)
	if len(users) != 1 {
		t.Fatalf("changes %v: want one (a change to an unselected property never surfaces)", users)
	}
	// A partial object: its id and what changed.
	if u := users[0]; u["id"] != gen.Users[1] || u["accountEnabled"] != false || len(u) != 2 {
		t.Errorf("partial update %v, want id and accountEnabled", u)
	}

	status, _, body = c.get("/v1.0/users/delta?$deltatoken=latest&$select=id")
	if vals, _ := body["value"].([]any); status != 200 || len(vals) != 0 || body["@odata.deltaLink"] == nil {
		t.Errorf("$deltatoken=latest: %d %v", status, body)
	}
	if status, _, _ := c.get(strings.Replace(link, "/users/", "/groups/", 1)); status != 400 {
		t.Errorf("a users link on groups/delta: %d", status)
	}
}

func TestDeltaReplays(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{DeltaReplays: true})
	defer srv.Close()
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 4, Users: 10, Groups: 2})
	c := newClient(t, srv, srv.TenantID)
	status, _, body := c.get("/v1.0/users/delta?$select=id")
	if vals := body["value"].([]any); status != 200 || len(vals) != 0 || body["@odata.nextLink"] == nil {
		t.Fatalf("first page: %d %v, want an empty page with a nextLink", status, body)
	}
	users, _, link := c.deltaRound("/v1.0/users/delta?$select=id,displayName")
	count := map[any]int{}
	for _, u := range users {
		count[u["id"]]++
	}
	if len(count) != 10 || len(users) <= 10 {
		t.Errorf("initial round: %d objects for %d users, want some repeated", len(users), len(count))
	}
	tn.UpdateUser(gen.Users[3], func(u *m365test.User) { u.DisplayName = "x" })
	changed := func(users []map[string]any) bool {
		return slices.ContainsFunc(users, func(u map[string]any) bool { return u["id"] == gen.Users[3] })
	}
	users, _, link = c.deltaRound(link)
	if !changed(users) {
		t.Fatalf("changes %v", users)
	}
	// Nothing changed since, yet the last change comes again.
	users, _, _ = c.deltaRound(link)
	if !changed(users) {
		t.Errorf("replay round %v: want the last change again", users)
	}
}

// /users/{id}/memberOf names a user's direct groups and roles, typed and
// paged; a user restored silently comes back in users/delta while
// groups/delta and directoryRoles/delta say nothing of its memberships,
// which memberOf still names.
func TestMemberOfAndASilentRestore(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	ann := tn.AddUser(m365test.User{UserPrincipalName: "ann@acme.example"})
	bob := tn.AddUser(m365test.User{UserPrincipalName: "bob@acme.example"})
	staff := tn.AddGroup("Staff", ann, bob)
	sales := tn.AddGroup("Sales", ann)
	ga := tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(ga, ann)
	c := newClient(t, srv, srv.TenantID)
	memberOf := func(id string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for next := "/v1.0/users/" + id + "/memberOf?$select=id,displayName&$top=2"; next != ""; {
			status, _, body := c.get(next)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d %v", next, status, body)
			}
			page := body["value"].([]any)
			if len(page) > 2 {
				t.Errorf("a page of %d objects, asked for 2", len(page))
			}
			for _, o := range page {
				o := o.(map[string]any)
				out[o["id"].(string)] = o["@odata.type"].(string)
			}
			next, _ = body["@odata.nextLink"].(string)
		}
		return out
	}
	want := map[string]string{staff: "#microsoft.graph.group", sales: "#microsoft.graph.group", ga: "#microsoft.graph.directoryRole"}
	if got := memberOf(ann); !maps.Equal(got, want) {
		t.Errorf("ann is a member of %v, want %v", got, want)
	}
	if status, _, _ := c.get("/v1.0/users/no-such-user/memberOf"); status != http.StatusNotFound {
		t.Errorf("memberOf of no user: %d, want 404", status)
	}

	_, _, ul := c.deltaRound("/v1.0/users/delta?$select=id,userPrincipalName")
	_, _, gl := c.deltaRound("/v1.0/groups/delta?$select=id,displayName,members")
	_, _, rl := c.deltaRound("/v1.0/directoryRoles/delta")
	tn.DeleteUser(ann, true)
	_, _, ul = c.deltaRound(ul)
	_, _, gl = c.deltaRound(gl)
	_, _, rl = c.deltaRound(rl)
	if !tn.RestoreUserSilently(ann) {
		t.Fatal("the soft-deleted user was not restored")
	}
	if users, _, _ := c.deltaRound(ul); len(users) != 1 || users[0]["id"] != ann {
		t.Errorf("users/delta after the restore: %v", users)
	}
	if groups, _, _ := c.deltaRound(gl); len(groups) != 0 {
		t.Errorf("groups/delta after a silent restore: %v, want nothing", groups)
	}
	if roles, _, _ := c.deltaRound(rl); len(roles) != 0 {
		t.Errorf("directoryRoles/delta after a silent restore: %v, want nothing", roles)
	}
	if got := memberOf(ann); !maps.Equal(got, want) {
		t.Errorf("after the restore ann is a member of %v, want %v", got, want)
	}
}

// A group restored silently comes back in groups/delta without its
// members, and its parent group says nothing of it; /groups/{id}/members
// and /groups/{id}/memberOf still name them.
func TestGroupMemberOfAndASilentGroupRestore(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tn := srv.Default()
	ann := tn.AddUser(m365test.User{UserPrincipalName: "ann@acme.example"})
	sales := tn.AddGroup("Sales", ann)
	staff := tn.AddGroup("Staff", sales)
	c := newClient(t, srv, srv.TenantID)
	_, _, gl := c.deltaRound("/v1.0/groups/delta?$select=id,displayName,members")
	tn.DeleteGroup(sales, true)
	_, _, gl = c.deltaRound(gl)
	if !tn.RestoreGroupSilently(sales) {
		t.Fatal("the soft-deleted group was not restored")
	}
	groups, _, _ := c.deltaRound(gl)
	if len(groups) != 1 || groups[0]["id"] != sales || groups[0]["displayName"] != "Sales" || groups[0]["members@delta"] != nil {
		t.Errorf("groups/delta after a silent restore: %v, want Sales alone, without members", groups)
	}
	ids := func(path string) []string {
		t.Helper()
		status, _, body := c.get(path)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, body)
		}
		var out []string
		for _, o := range body["value"].([]any) {
			out = append(out, o.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := ids("/v1.0/groups/" + sales + "/members?$select=id"); !slices.Equal(got, []string{ann}) {
		t.Errorf("members of the restored group: %v", got)
	}
	if got := ids("/v1.0/groups/" + sales + "/memberOf?$select=id"); !slices.Equal(got, []string{staff}) {
		t.Errorf("the restored group is a member of %v, want Staff", got)
	}
	if status, _, _ := c.get("/v1.0/groups/no-such-group/memberOf"); status != http.StatusNotFound {
		t.Errorf("memberOf of no group: %d, want 404", status)
	}
}

package m365_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// read runs one Read and fails the test on an error.
func read(t *testing.T, src *m365.Source, copies sources.CopyStore, sel sources.Selection, opt sources.ReadOptions) sources.ReadReport {
	t.Helper()
	rep, err := src.Read(context.Background(), copies, "acme", sel, opt)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return rep
}

// copyMatches fails the test when the copy yields other accounts than a
// full read for a selection.
func copyMatches(t *testing.T, src *m365.Source, copies sources.CopyStore, sel sources.Selection) {
	t.Helper()
	if d := sameAccounts(context.Background(), src, copies, sel); d != "" {
		t.Fatalf("selection %+v: the copy differs from a full read:\n%s", sel, d)
	}
}

// copyCounts counts the copy's objects by kind and its links.
func copyCounts(t *testing.T, copies sources.CopyStore) (map[string]int, int) {
	t.Helper()
	kinds := map[string]int{}
	for o, err := range copies.CopyObjects(context.Background(), "acme", "m365") {
		if err != nil {
			t.Fatal(err)
		}
		kinds[o.Kind]++
	}
	links := 0
	for _, err := range copies.CopyLinks(context.Background(), "acme", "m365") {
		if err != nil {
			t.Fatal(err)
		}
		links++
	}
	return kinds, links
}

func TestCopyAccountsClassifiesAsAccounts(t *testing.T) {
	c := newClassTenant(t)
	src := newSource(t, c.srv)
	copies := &sourcestest.Copies{}
	rep := read(t, src, copies, sources.Selection{Groups: []string{"Finance"}}, sources.ReadOptions{})
	if rep.Mode != sources.ReadFull || rep.Reason != "no state" || rep.Source != sources.KindM365 {
		t.Fatalf("first read %+v", rep)
	}
	for _, sel := range []sources.Selection{
		{Groups: []string{"Finance"}},
		{Groups: []string{c.finance}, IncludeDisabled: true},
		{Groups: []string{"finance"}}, // Graph's eq ignores case
		{Groups: []string{"Finance"}, Roles: []string{"Global Administrator"}},
		{Groups: []string{"Finance", "Finance Contractors", c.finance}},
		{Admins: true},
		{Roles: []string{m365test.HelpdeskAdministrator}},
		{Roles: []string{"Directory Readers"}},
		{Roles: []string{"Exchange Administrator"}}, // not activated
		{OUs: []string{"OU=Staff,DC=acme,DC=example"}},
		{},
	} {
		copyMatches(t, src, copies, sel)
	}
	got, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sources.Selection{Groups: []string{"Finance"}}))
	if err != nil || len(got) != 7 || got[c.ann].Type != sources.Admin || got[c.bob].TypeReason != "member of Finance" {
		t.Errorf("copy accounts %d, %v: %+v", len(got), err, got[c.ann])
	}

	c.srv.Default().AddGroup("Finance")
	for _, tc := range []struct{ group, want string }{
		{"Finance", "2 groups have this display name"},
		{"Nobody's Group", "no group has this display name"},
		{"0b6a3a0e-0000-4000-8000-000000000000", "no group with this id"},
	} {
		read(t, src, copies, sources.Selection{Groups: []string{"Finance"}}, sources.ReadOptions{})
		_, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sources.Selection{Groups: []string{tc.group}}))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "customer acme") {
			t.Errorf("group %q: error %v, want %q naming the customer", tc.group, err, tc.want)
		}
	}
}

// TestCopyAccountsReadsEachObjectOnce: computing a selection from the
// copy fetches each of its objects once (groups and roles first, then
// the users), not the whole copy twice.
func TestCopyAccountsReadsEachObjectOnce(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 7, Users: 300, Groups: 4, Admins: 3})
	src := newSource(t, srv)
	copies := &sourcestest.Counting{CopyStore: &sourcestest.Copies{}}
	sel := sources.Selection{Groups: []string{"All Staff"}, Admins: true}
	read(t, src, copies, sel, sources.ReadOptions{})
	kinds, _ := copyCounts(t, copies)
	copies.Reset()
	got, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sel))
	if err != nil || len(got) == 0 {
		t.Fatalf("%d accounts, %v", len(got), err)
	}
	if all := kinds["user"] + kinds["group"] + kinds["role"]; copies.Objects() != int64(all) {
		t.Errorf("the selection fetched %d objects of a copy of %d (%v)", copies.Objects(), all, kinds)
	}
	copyMatches(t, src, copies, sel)
}

func TestReadWithoutChangesCostsThreeRequests(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 7, Users: 2500, Groups: 4, Admins: 3})
	src := newSource(t, srv)
	copies := &sourcestest.Copies{}
	sel := sources.Selection{Groups: []string{"All Staff"}}
	rep := read(t, src, copies, sel, sources.ReadOptions{})
	if rep.Mode != sources.ReadFull || rep.Requests != 3+2 || rep.Changes != 2500+5+1+2500+4+3 {
		t.Errorf("full read %+v: want 5 requests (2,500 users by 999) and 2,500 users, 5 groups, 1 role, 2,507 memberships", rep)
	}
	srv.ResetCounts()
	rep = read(t, src, copies, sel, sources.ReadOptions{})
	if rep.Mode != sources.ReadIncremental || rep.Requests != 3 || rep.Changes != 0 {
		t.Errorf("read without changes %+v, want incremental, 3 requests, no change", rep)
	}
	want := map[string]int64{m365test.KindDelta: 1, m365test.KindGroupsDelta: 1, m365test.KindRolesDelta: 1}
	if got := srv.Counts(); len(got) != len(want) || got[m365test.KindDelta] != 1 || got[m365test.KindGroupsDelta] != 1 || got[m365test.KindRolesDelta] != 1 {
		t.Errorf("requests %v, want %v", got, want)
	}
	copyMatches(t, src, copies, sel)
	if copies.Applied != 2 {
		t.Errorf("%d applies, want 2: a read without changes still moves the links on", copies.Applied)
	}
}

func TestReadFullOrIncremental(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 8, Users: 40, Groups: 2, Admins: 1})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 15 })
	copies := &sourcestest.Copies{}
	sel := sources.Selection{Groups: []string{"Finance"}}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	opt := sources.ReadOptions{Now: func() time.Time { return now }}
	read(t, src, copies, sel, opt)

	tests := []struct {
		name   string
		before func() (sources.Selection, sources.ReadOptions)
		mode   string
		reason string
	}{
		{"nothing to say", nil, sources.ReadIncremental, ""},
		{"asked for", func() (sources.Selection, sources.ReadOptions) {
			o := opt
			o.Full = true
			return sel, o
		}, sources.ReadFull, "asked for"},
		{"the selection changed", func() (sources.Selection, sources.ReadOptions) {
			return sources.Selection{Groups: []string{"Sales"}}, opt
		}, sources.ReadFull, "the selection changed"},
		{"back to the first selection", func() (sources.Selection, sources.ReadOptions) { return sel, opt }, sources.ReadFull, "the selection changed"},
		{"six days later", func() (sources.Selection, sources.ReadOptions) {
			now = now.Add(6 * 24 * time.Hour)
			return sel, opt
		}, sources.ReadIncremental, ""},
		{"a week after the last full read", func() (sources.Selection, sources.ReadOptions) {
			now = now.Add(24 * time.Hour)
			return sel, opt
		}, sources.ReadFull, "the last full read is older than 7 days"},
		{"a shorter interval", func() (sources.Selection, sources.ReadOptions) {
			now = now.Add(3 * time.Hour)
			o := opt
			o.FullEvery = 2 * time.Hour
			return sel, o
		}, sources.ReadFull, "the last full read is older than 2h0m0s"},
		{"expired links", func() (sources.Selection, sources.ReadOptions) {
			srv.ExpireDeltaLinks()
			return sel, opt
		}, sources.ReadFull, "the delta link expired (syncStateNotFound)"},
		{"resync required", func() (sources.Selection, sources.ReadOptions) {
			srv.ExpireDeltaLinksAs(http.StatusBadRequest, "resyncRequired")
			return sel, opt
		}, sources.ReadFull, "Graph asked for a full resynchronisation (resyncRequired)"},
		{"410 Gone", func() (sources.Selection, sources.ReadOptions) {
			srv.ExpireDeltaLinksAs(http.StatusGone, "resyncRequired")
			return sel, opt
		}, sources.ReadFull, "Graph asked for a full resynchronisation (410 Gone)"},
		{"only the groups link refused", func() (sources.Selection, sources.ReadOptions) {
			srv.Inject(m365test.Fault{Kind: m365test.KindGroupsDelta, Status: http.StatusBadRequest, Code: "syncStateNotFound", Message: "The sync state generation is not found."})
			return sel, opt
		}, sources.ReadFull, "the delta link expired (syncStateNotFound)"},
		{"a position of another format", func() (sources.Selection, sources.ReadOptions) {
			st, _ := copies.CopyState(context.Background(), "acme", "m365")
			st.Token = []byte(`{"format":"0","users":"x","groups":"y","roles":"z"}`)
			if err := copies.ApplyCopy(context.Background(), "acme", "m365", sources.CopyDelta{State: st}); err != nil {
				t.Fatal(err)
			}
			return sel, opt
		}, sources.ReadFull, "the stored position is written for other fields or another copy format"},
		{"an unreadable position", func() (sources.Selection, sources.ReadOptions) {
			st, _ := copies.CopyState(context.Background(), "acme", "m365")
			st.Token = []byte("garbage")
			if err := copies.ApplyCopy(context.Background(), "acme", "m365", sources.CopyDelta{State: st}); err != nil {
				t.Fatal(err)
			}
			return sel, opt
		}, sources.ReadFull, "the stored position is unreadable: invalid character 'g' looking for beginning of value"},
	}
	for i, tc := range tests {
		// A change before every read, which either kind of read must see.
		tn.UpdateUser(gen.Users[i], func(u *m365test.User) { u.Disabled = !u.Disabled })
		s, o := sel, opt
		if tc.before != nil {
			s, o = tc.before()
		}
		rep := read(t, src, copies, s, o)
		if rep.Mode != tc.mode || rep.Reason != tc.reason {
			t.Errorf("%s: read %+v, want %s (%s)", tc.name, rep, tc.mode, tc.reason)
		}
		copyMatches(t, src, copies, s)
		st, _ := copies.CopyState(context.Background(), "acme", "m365")
		if tc.mode == sources.ReadFull && !st.FullAt.Equal(now) {
			t.Errorf("%s: FullAt %v, want %v", tc.name, st.FullAt, now)
		}
	}
}

func TestReadCrashBeforeCommitRereadsFromTheOldLinks(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 12, Users: 30, Groups: 2})
	src := newSource(t, srv)
	copies := &sourcestest.Copies{}
	sel := sources.Selection{Groups: []string{"Finance"}}
	read(t, src, copies, sel, sources.ReadOptions{})
	before, _ := copies.CopyState(context.Background(), "acme", "m365")

	hire := tn.AddUser(m365test.User{UserPrincipalName: "hire@acme.example"})
	tn.AddMembers(gen.Groups["Finance"], hire)
	tn.UpdateUser(gen.Users[0], func(u *m365test.User) { u.Disabled = true })
	tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(m365test.GlobalAdministrator, gen.Users[2])

	copies.FailApply = sourcestest.ErrCrash
	_, err := src.Read(context.Background(), copies, "acme", sel, sources.ReadOptions{})
	if !errors.Is(err, sourcestest.ErrCrash) || !strings.Contains(err.Error(), "customer acme") {
		t.Fatalf("read with a crash before the commit: %v", err)
	}
	after, _ := copies.CopyState(context.Background(), "acme", "m365")
	if string(after.Token) != string(before.Token) {
		t.Fatal("the position moved although nothing was committed")
	}
	got, _, _ := readAll(src.CopyAccounts(context.Background(), copies, "acme", sel))
	if _, ok := got[hire]; ok {
		t.Fatal("the copy holds a change that was never committed")
	}

	// The next read asks again from the old links and misses nothing.
	rep := read(t, src, copies, sel, sources.ReadOptions{})
	if rep.Mode != sources.ReadIncremental || rep.Changes < 4 {
		t.Errorf("read after the crash %+v: want the 4 changes again", rep)
	}
	copyMatches(t, src, copies, sel)
	copyMatches(t, src, copies, sources.Selection{Admins: true})
}

func TestReadFailedRoundChangesNothing(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	tn.Generate(m365test.GenOptions{Seed: 13, Users: 30, Groups: 2})
	src := newSource(t, srv, func(c *m365.Config) { c.MaxRetries = 1 })
	copies := &sourcestest.Copies{}
	read(t, src, copies, sources.Selection{}, sources.ReadOptions{})
	tn.AddUser(m365test.User{UserPrincipalName: "late@acme.example"})
	srv.Inject(m365test.Fault{Kind: m365test.KindRolesDelta, Status: http.StatusServiceUnavailable, Times: -1})
	rep, err := src.Read(context.Background(), copies, "acme", sources.Selection{}, sources.ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "customer acme") || !strings.Contains(err.Error(), "read directory role changes page 1") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("error %v", err)
	}
	if copies.Applied != 1 || rep.Requests != 3 {
		t.Errorf("%d applies, report %+v: a failed read must not touch the copy", copies.Applied, rep)
	}
	srv.ClearFaults()
	read(t, src, copies, sources.Selection{}, sources.ReadOptions{})
	copyMatches(t, src, copies, sources.Selection{})
}

func TestReadMergesPartialObjectsFromTheCopy(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{PartialDeltaUpdates: true})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 14, Users: 20, Hybrid: 20, Groups: 1})
	src := newSource(t, srv)
	copies := &sourcestest.Copies{}
	sel := sources.Selection{}
	read(t, src, copies, sel, sources.ReadOptions{})
	tn.UpdateUser(gen.Users[3], func(u *m365test.User) { u.Disabled = true })
	tn.UpdateUser(gen.Users[4], func(u *m365test.User) { u.Mail, u.Licenses = "", nil })
	tn.UpdateUser(gen.Users[5], func(u *m365test.User) { u.OnPremisesSyncEnabled = nil })
	srv.ResetCounts()
	rep := read(t, src, copies, sel, sources.ReadOptions{})
	if rep.Changes != 3 || srv.Count(m365test.KindUser) != 0 {
		t.Errorf("read %+v with %d user reads: want 3 changes merged from the copy, no read of a whole user", rep, srv.Count(m365test.KindUser))
	}
	copyMatches(t, src, copies, sel)
	got, _, _ := readAll(src.CopyAccounts(context.Background(), copies, "acme", sel))
	if a := got[gen.Users[3]]; a.Enabled || a.UPN == "" || a.ImmutableID == "" || !a.OnPremisesSync {
		t.Errorf("disabled hybrid user %+v: want only Enabled changed", a)
	}
}

func TestReadLargeGroupsSplitOverPages(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{DeltaMembersPerObject: 4})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 15, Users: 90, Groups: 2})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 3 })
	copies := &sourcestest.Copies{}
	sel := sources.Selection{Groups: []string{"All Staff"}}
	read(t, src, copies, sel, sources.ReadOptions{})
	if _, links := copyCounts(t, copies); links != 92 {
		t.Fatalf("%d memberships in the copy, want 90 users and 2 nested groups", links)
	}
	copyMatches(t, src, copies, sel)
	// Twenty members out of one group and five into the other.
	// (Generate puts users 0, 2, 4, ... in Finance, 1, 3, 5, ... in Sales.)
	var out, in []string
	for i := 0; i < 40; i += 2 {
		out = append(out, gen.Users[i])
		if i < 10 {
			in = append(in, gen.Users[i])
		}
	}
	tn.RemoveMembers(gen.Groups["Finance"], out...)
	tn.AddMembers(gen.Groups["Sales"], in...)
	rep := read(t, src, copies, sel, sources.ReadOptions{})
	if rep.Changes != 25+2 {
		t.Errorf("read %+v, want 25 membership changes and the 2 groups (Graph sends a group whole with its member changes)", rep)
	}
	copyMatches(t, src, copies, sel)
	copyMatches(t, src, copies, sources.Selection{Groups: []string{"Finance", "Sales"}})
}

// smallTenant is a tenant of 12 users, 3 groups and 2 administrators, a
// source reading it and an empty copy.
func smallTenant(t *testing.T) (*m365test.Server, *m365test.Tenant, m365test.Generated, *m365.Source, *sourcestest.Copies) {
	t.Helper()
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 16, Users: 12, Groups: 3, Admins: 2})
	return srv, tn, gen, newSource(t, srv), &sourcestest.Copies{}
}

func TestReadRemovedAndRestoredObjects(t *testing.T) {
	_, tn, gen, src, copies := smallTenant(t)
	sels := []sources.Selection{{Groups: []string{"All Staff"}}, {Admins: true}, {}}
	read(t, src, copies, sels[0], sources.ReadOptions{})

	steps := []struct {
		name   string
		change func()
		users  int
		groups int
	}{
		{"an admin soft-deleted, a user deleted for good", func() {
			tn.DeleteUser(gen.Admins[0], true)
			tn.DeleteUser(gen.Users[9], false)
		}, 10, 4},
		{"the admin restored with its role and groups", func() { tn.RestoreUser(gen.Admins[0]) }, 11, 4},
		{"the admin soft-deleted again", func() { tn.DeleteUser(gen.Admins[0], true) }, 10, 4},
		{"the admin restored, the deltas silent about its role and groups", func() { tn.RestoreUserSilently(gen.Admins[0]) }, 11, 4},
		{"a group soft-deleted", func() { tn.DeleteGroup(gen.Groups["Sales"], true) }, 11, 3},
		{"the group restored with its members", func() { tn.RestoreGroup(gen.Groups["Sales"]) }, 11, 4},
		{"the group soft-deleted again", func() { tn.DeleteGroup(gen.Groups["Sales"], true) }, 11, 3},
		{"the group restored, groups/delta silent about its members", func() { tn.RestoreGroupSilently(gen.Groups["Sales"]) }, 11, 4},
		{"a group deleted for good", func() { tn.DeleteGroup(gen.Groups["Engineering"], false) }, 11, 3},
	}
	for _, st := range steps {
		st.change()
		rep := read(t, src, copies, sels[0], sources.ReadOptions{})
		if rep.Mode != sources.ReadIncremental {
			t.Fatalf("%s: read %+v", st.name, rep)
		}
		kinds, _ := copyCounts(t, copies)
		if kinds["user"] != st.users || kinds["group"] != st.groups {
			t.Errorf("%s: copy holds %v, want %d users and %d groups", st.name, kinds, st.users, st.groups)
		}
		for _, sel := range sels {
			copyMatches(t, src, copies, sel)
		}
	}
}

func TestReadSurvivesReplays(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{DeltaReplays: true, DeltaMembersPerObject: 2})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 17, Users: 25, Groups: 2, Admins: 1})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 4 })
	copies := &sourcestest.Copies{}
	sel := sources.Selection{Groups: []string{"All Staff"}, Admins: true}
	read(t, src, copies, sel, sources.ReadOptions{})
	copyMatches(t, src, copies, sel)
	tn.RemoveMembers(gen.Groups["Finance"], gen.Users[0])
	tn.DeleteUser(gen.Users[1], false)
	tn.UnassignRole(m365test.GlobalAdministrator, gen.Admins[0])
	for range 3 { // the last change comes again each time
		read(t, src, copies, sel, sources.ReadOptions{})
		copyMatches(t, src, copies, sel)
	}
}

func TestReadAndCopyAccountsKeepToTheirCustomer(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	src := newSource(t, srv)
	copies := &sourcestest.Copies{}
	if _, err := src.Read(context.Background(), copies, "globex", sources.Selection{}, sources.ReadOptions{}); err == nil || !strings.Contains(err.Error(), `"globex"`) {
		t.Errorf("read into another customer's copy: %v", err)
	}
	_, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sources.Selection{}))
	if err == nil || !strings.Contains(err.Error(), "no local copy") {
		t.Errorf("accounts before any read: %v", err)
	}
	_, _, err = readAll(src.CopyAccounts(context.Background(), copies, "globex", sources.Selection{}))
	if err == nil || !strings.Contains(err.Error(), `"globex"`) {
		t.Errorf("accounts of another customer's copy: %v", err)
	}
	if srv.Count(m365test.KindDelta) != 0 {
		t.Error("a refused read reached Graph")
	}
}

// scriptedGraph answers a Read from fixed bodies: the first round of each
// delta function, and later rounds and whole users by their path and
// token.
type scriptedGraph struct {
	mu     sync.Mutex
	bodies map[string]string // "users", "groups", "roles", a $deltatoken, "/v1.0/users/{id}"
	hits   map[string]int
}

func (g *scriptedGraph) set(key, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bodies[key] = body
}

func newScriptedGraph(t testing.TB) (*scriptedGraph, *m365.Source) {
	g := &scriptedGraph{bodies: map[string]string{}, hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /t/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("$deltatoken")
		if key == "" {
			key = r.URL.Query().Get("$skiptoken")
		}
		switch {
		case key != "":
		case r.URL.Path == "/v1.0/users/delta":
			key = "users"
		case r.URL.Path == "/v1.0/groups/delta":
			key = "groups"
		case r.URL.Path == "/v1.0/directoryRoles/delta":
			key = "roles"
		default:
			key = r.URL.Path
		}
		g.mu.Lock()
		body, ok := g.bodies[key]
		g.hits[key]++
		g.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"Request_ResourceNotFound","message":"not scripted"}}`))
			return
		}
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "BASE", "http://"+r.Host)))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: "t", ClientID: "c", ClientSecret: "s",
		LoginURL: ts.URL, GraphURL: ts.URL, Transport: ts.Client().Transport, MaxPages: 5, MaxRetries: 1, MinWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g, src
}

const (
	scriptedAnn = `{"id":"a1","userPrincipalName":"ann@acme.example","displayName":"Ann","givenName":"Ann","surname":"A","mail":"ann@acme.example",` +
		`"accountEnabled":true,"userType":"Member","onPremisesSyncEnabled":null,"onPremisesImmutableId":null,"assignedLicenses":[{"skuId":"x"}]}`
	scriptedEmpty = `{"value":[],"@odata.deltaLink":"BASE/v1.0/KIND/delta?$deltatoken=KIND2"}`
)

func scriptFirstRound(g *scriptedGraph) {
	g.set("users", `{"value":[`+scriptedAnn+`],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u2"}`)
	g.set("groups", `{"value":[{"id":"g1","displayName":"Staff","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"a1"},`+
		`{"@odata.type":"#microsoft.graph.device","id":"d1"}]}],"@odata.deltaLink":"BASE/v1.0/groups/delta?$deltatoken=g2"}`)
	g.set("roles", strings.ReplaceAll(scriptedEmpty, "KIND", "directoryRoles"))
	g.set("g2", strings.ReplaceAll(scriptedEmpty, "KIND", "groups"))
	g.set("directoryRoles2", strings.ReplaceAll(scriptedEmpty, "KIND", "directoryRoles"))
}

func TestReadCompletesPartialUsers(t *testing.T) {
	g, src := newScriptedGraph(t)
	scriptFirstRound(g)
	copies := &sourcestest.Copies{}
	read(t, src, copies, sources.Selection{Groups: []string{"Staff"}}, sources.ReadOptions{})
	if _, links := copyCounts(t, copies); links != 1 {
		t.Errorf("%d memberships: a device member is not kept", links)
	}

	// A partial object of a user the copy knows, one of a user it does not
	// know, and one of a user gone meanwhile.
	g.set("u2", `{"value":[{"id":"a1","accountEnabled":false},{"id":"b2","displayName":"Bob"},{"id":"c3","displayName":"Cy"}],`+
		`"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u3"}`)
	g.set("/v1.0/users/b2", `{"id":"b2","userPrincipalName":"bob@acme.example","displayName":"Bob","accountEnabled":true,"userType":"Member","assignedLicenses":[]}`)
	g.set("/v1.0/users/b2/memberOf", `{"value":[{"@odata.type":"#microsoft.graph.group","id":"g1"}]}`)
	g.set("g2", `{"value":[{"id":"g1","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"b2"}]}],"@odata.deltaLink":"BASE/v1.0/groups/delta?$deltatoken=g3"}`)
	rep := read(t, src, copies, sources.Selection{Groups: []string{"Staff"}}, sources.ReadOptions{})
	if rep.Requests != 3+2+1 {
		t.Errorf("read %+v: want the 3 rounds, 2 reads of whole users and the groups of the one new to the copy", rep)
	}
	if g.hits["/v1.0/users/a1/memberOf"]+g.hits["/v1.0/users/c3/memberOf"] != 0 {
		t.Error("the groups of a user the copy knows, or of one gone, were read")
	}
	if g.hits["/v1.0/users/a1"] != 0 {
		t.Error("a user the copy knows was read whole")
	}
	got, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sources.Selection{Groups: []string{"Staff"}}))
	if err != nil {
		t.Fatal(err)
	}
	ann, bob := got["a1"], got["b2"]
	if ann.Enabled || ann.UPN != "ann@acme.example" || ann.Email != "ann@acme.example" || !ann.Licensed || ann.SkipReason != m365.SkipDisabled {
		t.Errorf("ann %+v: want her disabled and the rest kept", ann)
	}
	if bob.UPN != "bob@acme.example" || bob.SelectedBy[0] != "Staff" || len(got) != 2 {
		t.Errorf("accounts %+v", got)
	}
}

// A user a round sent in part, new to the copy, that Graph answers 404
// for when it is read whole (a replica that does not hold it yet) is read
// again next round, not taken to be gone; a round that says it is gone
// ends that.
func TestReadAgainAUserNotFoundWhole(t *testing.T) {
	g, src := newScriptedGraph(t)
	scriptFirstRound(g)
	copies := &sourcestest.Copies{}
	g.set("groups2", strings.ReplaceAll(scriptedEmpty, "KIND", "groups")) // no group changes from the second round on
	sel := sources.Selection{Groups: []string{"Staff"}}
	read(t, src, copies, sel, sources.ReadOptions{})

	g.set("u2", `{"value":[{"id":"c3","displayName":"Cy"}],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u3"}`)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3+1 {
		t.Fatalf("read %+v: want the 3 rounds and the read of the whole user", rep)
	}
	if got, _, _ := readAll(src.CopyAccounts(context.Background(), copies, "acme", sel)); len(got) != 1 {
		t.Fatalf("accounts %v: want Ann only while Graph does not find Cy", got)
	}

	// The next round says nothing of Cy; it is read again, found now, and
	// its groups asked for as for any user new to the copy.
	g.set("u3", `{"value":[],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u4"}`)
	g.set("/v1.0/users/c3", `{"id":"c3","userPrincipalName":"cy@acme.example","displayName":"Cy","accountEnabled":true,"userType":"Member","assignedLicenses":[]}`)
	g.set("/v1.0/users/c3/memberOf", `{"value":[{"@odata.type":"#microsoft.graph.group","id":"g1"}]}`)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3+1+1 {
		t.Fatalf("read %+v: want the 3 rounds, Cy read whole and its groups", rep)
	}
	got, _, err := readAll(src.CopyAccounts(context.Background(), copies, "acme", sel))
	if err != nil || len(got) != 2 || got["c3"].UPN != "cy@acme.example" {
		t.Fatalf("accounts %v (%v): want Ann and Cy", got, err)
	}
	g.set("u4", `{"value":[],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u5"}`)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3 {
		t.Fatalf("read %+v: want the 3 rounds only", rep)
	}

	// Not found, then gone: the round that says so ends the reads.
	g.set("u5", `{"value":[{"id":"d4","displayName":"Di"}],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u6"}`)
	read(t, src, copies, sel, sources.ReadOptions{})
	g.set("u6", `{"value":[{"id":"d4","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u7"}`)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3 || g.hits["/v1.0/users/d4"] != 1 {
		t.Fatalf("read %+v, %d reads of Di: want the 3 rounds only once a round says it is gone", rep, g.hits["/v1.0/users/d4"])
	}
}

func TestReadRefusesMalformedRounds(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `<html>`, "read user changes page 1"},
		{"no value", `{"@odata.deltaLink":"BASE/x"}`, `no "value" array`},
		{"no link", `{"value":[]}`, "neither @odata.nextLink nor @odata.deltaLink"},
		{"both links", `{"value":[],"@odata.nextLink":"BASE/v1.0/users/delta?$skiptoken=1","@odata.deltaLink":"BASE/x"}`, "both"},
		{"an object without id", `{"value":[{"displayName":"x"}],"@odata.deltaLink":"BASE/x"}`, "object 0 has no id"},
		{"a wrong type", `{"value":[{"id":"a","accountEnabled":"yes"}],"@odata.deltaLink":"BASE/x"}`, "not a boolean"},
		{"a link elsewhere", `{"value":[],"@odata.nextLink":"https://attacker.example/v1.0/users/delta"}`, "not under the Graph URL"},
		{"a link repeated", `{"value":[],"@odata.nextLink":"BASE/v1.0/users/delta?$skiptoken=same"}`, "repeated a page link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, src := newScriptedGraph(t)
			scriptFirstRound(g)
			g.set("users", tc.body)
			g.set("same", tc.body)
			copies := &sourcestest.Copies{}
			_, err := src.Read(context.Background(), copies, "acme", sources.Selection{}, sources.ReadOptions{})
			if err == nil || !strings.Contains(err.Error(), "Microsoft 365: customer acme") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming the customer and %q", err, tc.want)
			}
			if copies.Applied != 0 {
				t.Error("a malformed round changed the copy")
			}
		})
	}
}

// FuzzRead serves a fuzzed body as one page of a delta round and runs a
// whole Read over it: the read either succeeds, and the copy then yields
// accounts with ids, or fails with an error naming the integration and
// the customer; it never panics and never half-applies.
func FuzzRead(f *testing.F) {
	f.Add(uint8(0), []byte(`{"value":[{"id":"b","userPrincipalName":"b@x","accountEnabled":true}],"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u2"}`))
	f.Add(uint8(1), []byte(`{"value":[{"id":"g","displayName":"Staff","members@delta":[{"id":"b"},{"id":"a1","@removed":{}}]}],"@odata.deltaLink":"BASE/x"}`))
	f.Add(uint8(2), []byte(`{"value":[{"id":"r","displayName":"Global Administrator","members@delta":[{"id":"a1"}]}],"@odata.deltaLink":"BASE/x"}`))
	f.Add(uint8(0), []byte(`{"value":[{"id":"a1","@removed":{"reason":"deleted"}}],"@odata.nextLink":"BASE/v1.0/users/delta?$skiptoken=users"}`))
	f.Add(uint8(1), []byte(`{"value":[{"id":"g1","displayName":7}],"@odata.deltaLink":"BASE/x"}`))
	f.Add(uint8(0), []byte(`{"value":[{"id":"a1","userPrincipalName":null}],"@odata.deltaLink":"BASE/x"}`))
	g, src := newScriptedGraph(f)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		scriptFirstRound(g)
		g.set([]string{"users", "groups", "roles"}[which%3], string(body))
		copies := &sourcestest.Copies{}
		_, err := src.Read(context.Background(), copies, "acme", sources.Selection{}, sources.ReadOptions{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "Microsoft 365: customer acme: ") {
				t.Fatalf("error %q does not name the integration and customer first", err)
			}
			if copies.Applied != 0 {
				t.Fatal("a failed read changed the copy")
			}
			return
		}
		for a, err := range src.CopyAccounts(context.Background(), copies, "acme", sources.Selection{}) {
			var ee *sources.EntryError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("accounts of a read that succeeded: %v", err)
			}
			if err == nil && (a.ID == "" || a.Username == "") {
				t.Fatalf("account without id or username: %+v", a)
			}
		}
	})
}

func TestReadAnotherGraphURLReadsFully(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 18, Users: 10})
	copies := &sourcestest.Copies{}
	read(t, newSource(t, srv), copies, sources.Selection{}, sources.ReadOptions{})
	// The same Graph by another name: the stored links no longer match
	// the configured URL, and a bearer token never follows them.
	moved := newSource(t, srv, func(c *m365.Config) {
		c.GraphURL = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		c.Scope = "https://graph.microsoft.com/.default"
	})
	tn.UpdateUser(gen.Users[0], func(u *m365test.User) { u.OnPremisesSamAccountName = "renamed" })
	rep := read(t, moved, copies, sources.Selection{}, sources.ReadOptions{})
	if rep.Mode != sources.ReadFull || !strings.HasPrefix(rep.Reason, "the stored delta links are not under the Graph URL http://localhost:") {
		t.Errorf("read %+v", rep)
	}
	copyMatches(t, moved, copies, sources.Selection{})
}

func TestReadTracksOnlyWhatTheCopyKeeps(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 19, Users: 10, Hybrid: 10})
	src := newSource(t, srv)
	copies := &sourcestest.Copies{}
	read(t, src, copies, sources.Selection{}, sources.ReadOptions{})
	tn.UpdateUser(gen.Users[1], func(u *m365test.User) { u.OnPremisesSecurityIdentifier, u.JobTitle = "S-1-5-21-9", "CFO" })
	if rep := read(t, src, copies, sources.Selection{}, sources.ReadOptions{}); rep.Mode != sources.ReadIncremental || rep.Changes != 0 {
		t.Errorf("read after a change to properties the copy does not keep %+v, want nothing to apply", rep)
	}
}

func TestAFullReadWaitsForItsTurn(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 8, Users: 20, Groups: 2, Admins: 1})
	src := newSource(t, srv)
	sel := sources.Selection{Groups: []string{"All Staff"}}
	sourcestest.CheckFullTurns(t, sourcestest.Reading{
		Customer: "acme", Source: "m365",
		Read: func(ctx context.Context, copies sources.CopyStore, opt sources.ReadOptions) (sources.ReadReport, error) {
			return src.Read(ctx, copies, "acme", sel, opt)
		},
		Refuse: srv.ExpireDeltaLinks,
		Requests: func() int64 {
			n := int64(0)
			for _, c := range srv.Counts() {
				n += c
			}
			return n
		},
	})
}

// The groups of a user new to the copy come from its memberOf, a
// response like any other from outside: a malformed one, one whose next
// page leaves the Graph URL, or a server error fails the read, naming
// it, and changes nothing in the copy.
func TestReadRefusesABadMemberOf(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `<html>`, "list /users/b2/memberOf"},
		{"a group without an id", `{"value":[{"@odata.type":"#microsoft.graph.group"}]}`, "a #microsoft.graph.group without an id"},
		{"a link elsewhere", `{"value":[],"@odata.nextLink":"https://attacker.example/v1.0/users/b2/memberOf"}`, "not under the Graph URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, src := newScriptedGraph(t)
			scriptFirstRound(g)
			copies := &sourcestest.Copies{}
			sel := sources.Selection{Groups: []string{"Staff"}}
			read(t, src, copies, sel, sources.ReadOptions{})
			before, _ := copies.CopyState(context.Background(), "acme", "m365")
			g.set("u2", `{"value":[{"id":"b2","userPrincipalName":"bob@acme.example","displayName":"Bob","accountEnabled":true,"userType":"Member","assignedLicenses":[]}],`+
				`"@odata.deltaLink":"BASE/v1.0/users/delta?$deltatoken=u3"}`)
			g.set("/v1.0/users/b2", `{"id":"b2","userPrincipalName":"bob@acme.example","displayName":"Bob","accountEnabled":true,"userType":"Member","assignedLicenses":[]}`)
			g.set("/v1.0/users/b2/memberOf", tc.body)
			_, err := src.Read(context.Background(), copies, "acme", sel, sources.ReadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read: %v, want an error saying %q", err, tc.want)
			}
			if after, _ := copies.CopyState(context.Background(), "acme", "m365"); string(after.Token) != string(before.Token) || copies.Applied != 1 {
				t.Error("a failed read changed the copy")
			}
		})
	}
}

// Entra is eventually consistent: a replica may answer 404 for a user
// restored (or created) a moment ago. A membership lookup Graph answered
// 404 is asked again next round, not taken to mean the user is gone, and
// is dropped once a round says it is; too many make the next read full.
func TestAMembershipLookupNotFoundIsAskedAgain(t *testing.T) {
	srv, tn, gen, src, copies := smallTenant(t)
	sel := sources.Selection{Groups: []string{"All Staff"}, Admins: true}
	read(t, src, copies, sel, sources.ReadOptions{})
	admin := gen.Admins[0]
	tn.DeleteUser(admin, true)
	read(t, src, copies, sel, sources.ReadOptions{})

	// Restored, the deltas silent about its role and groups, and the
	// replica asked for its memberOf does not hold it yet.
	tn.RestoreUserSilently(admin)
	srv.Inject(m365test.Fault{Kind: m365test.KindUserMemberOf, Status: http.StatusNotFound, Code: "Request_ResourceNotFound"})
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Mode != sources.ReadIncremental || rep.Requests != 4 {
		t.Fatalf("the restore's round: %+v, want an incremental read of 3 rounds and 1 lookup", rep)
	}
	if d := sameAccounts(context.Background(), src, copies, sel); d == "" {
		t.Fatal("the copy already matches a full read: the lookup's 404 changed nothing here")
	}
	// The next round, with nothing changed, asks again and completes it.
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 4 || rep.Changes == 0 {
		t.Fatalf("the round after: %+v, want 3 rounds and the lookup again, and its memberships", rep)
	}
	copyMatches(t, src, copies, sel)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3 || rep.Changes != 0 {
		t.Fatalf("then: %+v, want 3 requests and nothing changed", rep)
	}

	// Not found again, then gone: the round that says so ends the lookups.
	tn.DeleteUser(admin, true)
	read(t, src, copies, sel, sources.ReadOptions{})
	tn.RestoreUserSilently(admin)
	srv.Inject(m365test.Fault{Kind: m365test.KindUserMemberOf, Status: http.StatusNotFound, Code: "Request_ResourceNotFound", Times: 2})
	read(t, src, copies, sel, sources.ReadOptions{})
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 4 {
		t.Fatalf("asked again: %+v", rep)
	}
	tn.DeleteUser(admin, false)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3 {
		t.Fatalf("the round that says it is gone: %+v, want no lookup", rep)
	}
	copyMatches(t, src, copies, sel)
	if rep := read(t, src, copies, sel, sources.ReadOptions{}); rep.Requests != 3 {
		t.Fatalf("then: %+v, want 3 requests", rep)
	}
}

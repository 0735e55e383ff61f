package m365_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// readAll collects a stream: accounts by id, the ids of entry errors, and
// the first other error.
func readAll(seq func(func(sources.Account, error) bool)) (map[string]sources.Account, []string, error) {
	out := map[string]sources.Account{}
	var entries []string
	for a, err := range seq {
		var ee *sources.EntryError
		switch {
		case errors.As(err, &ee):
			entries = append(entries, ee.Entry)
		case err != nil:
			return nil, nil, err
		default:
			if _, dup := out[a.ID]; dup {
				return nil, nil, fmt.Errorf("account %s yielded twice", a.ID)
			}
			out[a.ID] = a
		}
	}
	sort.Strings(entries)
	return out, entries, nil
}

// sameAccounts compares what the copy yields for a selection with what
// Accounts reads from the tenant, account for account; it returns the
// differences, one per line.
func sameAccounts(ctx context.Context, src *m365.Source, copies sources.CopyStore, sel sources.Selection) string {
	return sameAccountsAs(ctx, src, src, copies, sel)
}

// sameAccountsAs is sameAccounts with a separate source for the full
// read (the copy's source may page in small steps to test paging; the
// full read need not).
func sameAccountsAs(ctx context.Context, full, src *m365.Source, copies sources.CopyStore, sel sources.Selection) string {
	want, wantEntries, wantErr := readAll(full.Accounts(ctx, sel))
	got, gotEntries, gotErr := readAll(src.CopyAccounts(ctx, copies, "acme", sel))
	switch {
	case wantErr != nil || gotErr != nil:
		if (wantErr == nil) != (gotErr == nil) {
			return fmt.Sprintf("full read error %v, copy error %v", wantErr, gotErr)
		}
		return ""
	case !slices.Equal(wantEntries, gotEntries):
		return fmt.Sprintf("entry errors: full read %v, copy %v", wantEntries, gotEntries)
	}
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s (%s): missing from the copy: %+v", id, w.UPN, w))
		case !reflect.DeepEqual(w, g):
			diffs = append(diffs, fmt.Sprintf("%s (%s):\n\tfull %+v\n\tcopy %+v", id, w.UPN, w, g))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s (%s): only in the copy: %+v", id, g.UPN, g))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

// directoryFuzzer applies random directory changes to a fake tenant and
// keeps track of what is there to change.
type directoryFuzzer struct {
	rng    *rand.Rand
	tn     *m365test.Tenant
	users  []string // live
	soft   []string // soft-deleted users
	groups []string // live
	softG  []string // soft-deleted groups
	roles  []string // activated roles (template ids)
	// allStaff is a group the copy's selection names: a group nested in
	// it and deleted, then restored, decides who is selected.
	allStaff string
	n        int
}

func (f *directoryFuzzer) pick(ids []string) string { return ids[f.rng.IntN(len(ids))] }

func remove(ids []string, id string) []string {
	return slices.DeleteFunc(ids, func(x string) bool { return x == id })
}

var groupNames = []string{"Finance", "Sales", "Temps", "Board", "Projects", "Finance Contractors"}

// change makes one random change and says what it was.
func (f *directoryFuzzer) change() string {
	tn, rng := f.tn, f.rng
	f.n++
	for {
		switch op := rng.IntN(18); {
		case op == 0:
			u := m365test.User{DisplayName: fmt.Sprintf("New User %d", f.n), Guest: rng.IntN(6) == 0, Disabled: rng.IntN(6) == 0}
			if rng.IntN(2) == 0 {
				u.Licenses = []string{"c42b9cae-ea4f-4ab7-9717-81576235ccac"}
			}
			id := tn.AddUser(u)
			f.users = append(f.users, id)
			if rng.IntN(2) == 0 && len(f.groups) > 0 {
				g := f.pick(f.groups)
				tn.AddMembers(g, id)
				return "add user " + id + " into group " + g
			}
			return "add user " + id
		case op == 1 && len(f.users) > 0:
			id := f.pick(f.users)
			tn.UpdateUser(id, func(u *m365test.User) { u.Disabled = !u.Disabled })
			return "disable/enable " + id
		case op == 2 && len(f.users) > 0:
			id := f.pick(f.users)
			tn.UpdateUser(id, func(u *m365test.User) {
				u.DisplayName += " Renamed"
				if rng.IntN(2) == 0 {
					u.UserPrincipalName = fmt.Sprintf("renamed%d.%s", f.n, u.UserPrincipalName)
				}
			})
			return "rename " + id
		case op == 3 && len(f.users) > 0:
			id := f.pick(f.users)
			tn.UpdateUser(id, func(u *m365test.User) {
				switch rng.IntN(4) {
				case 0:
					u.Mail = fmt.Sprintf("m%d@acme.example", f.n)
				case 1:
					if len(u.Licenses) > 0 {
						u.Licenses = nil
					} else {
						u.Licenses = []string{"05e9a617-0261-4cee-bb44-138d3ef5d965"}
					}
				case 2:
					on := u.OnPremisesSyncEnabled == nil || !*u.OnPremisesSyncEnabled
					u.OnPremisesSyncEnabled = &on
					u.OnPremisesImmutableID = fmt.Sprintf("imm%d", f.n)
				case 3:
					u.Guest = !u.Guest
				}
			})
			return "change properties of " + id
		case op == 4 && len(f.users) > 0:
			id := f.pick(f.users)
			soft := rng.IntN(2) == 0
			tn.DeleteUser(id, soft)
			f.users = remove(f.users, id)
			if soft {
				f.soft = append(f.soft, id)
			}
			return fmt.Sprintf("delete user %s (soft %v)", id, soft)
		case op == 5 && len(f.soft) > 0:
			id := f.pick(f.soft)
			// Whether the groups' and roles' deltas send a restored
			// user's memberships again is not documented: either way.
			silently := rng.IntN(2) == 0
			if silently {
				tn.RestoreUserSilently(id)
			} else {
				tn.RestoreUser(id)
			}
			f.soft = remove(f.soft, id)
			f.users = append(f.users, id)
			return fmt.Sprintf("restore user %s (deltas silent about its memberships: %v)", id, silently)
		case (op == 6 || op == 7) && len(f.groups) > 0:
			g := f.pick(f.groups)
			var m string
			if rng.IntN(3) == 0 && len(f.groups) > 1 {
				if m = f.pick(f.groups); m == g {
					continue
				}
			} else if len(f.users) > 0 {
				m = f.pick(f.users)
			} else {
				continue
			}
			tn.AddMembers(g, m)
			return "add " + m + " to group " + g
		case op == 8 && len(f.groups) > 0:
			g := f.pick(f.groups)
			if len(f.users) == 0 {
				continue
			}
			// Take out a member it has, if any.
			for _, m := range append(slices.Clone(f.users), f.groups...) {
				if rng.IntN(3) == 0 {
					tn.RemoveMembers(g, m)
				}
			}
			return "remove members from group " + g
		case op == 9:
			var members []string
			for range rng.IntN(4) {
				if len(f.users) > 0 {
					members = append(members, f.pick(f.users))
				}
			}
			g := tn.AddGroup(groupNames[rng.IntN(len(groupNames))]+fmt.Sprintf(" %d", f.n%3), members...)
			f.groups = append(f.groups, g)
			return "add group " + g
		case op == 10 && len(f.groups) > 0:
			g := f.pick(f.groups)
			tn.RenameGroup(g, groupNames[rng.IntN(len(groupNames))])
			return "rename group " + g
		case op == 11 && len(f.groups) > 2 && rng.IntN(3) == 0:
			g := f.pick(f.groups)
			soft := rng.IntN(2) == 0
			tn.DeleteGroup(g, soft)
			f.groups = remove(f.groups, g)
			if soft {
				f.softG = append(f.softG, g)
			}
			return fmt.Sprintf("delete group %s (soft %v)", g, soft)
		case op == 12 && len(f.softG) > 0:
			g := f.pick(f.softG)
			silently := rng.IntN(2) == 0
			if silently {
				tn.RestoreGroupSilently(g)
			} else {
				tn.RestoreGroup(g)
			}
			f.softG = remove(f.softG, g)
			f.groups = append(f.groups, g)
			return fmt.Sprintf("restore group %s (deltas silent about its members and parents: %v)", g, silently)
		case op == 17 && len(f.groups) > 2:
			g := f.pick(f.groups)
			if g == f.allStaff {
				continue
			}
			tn.AddMembers(f.allStaff, g)
			tn.DeleteGroup(g, true)
			f.groups = remove(f.groups, g)
			f.softG = append(f.softG, g)
			return "nest group " + g + " in All Staff and soft-delete it"
		case op == 13 && len(f.users) > 0:
			r := f.pick(f.roles)
			m := f.pick(f.users)
			if rng.IntN(3) == 0 && len(f.groups) > 0 {
				m = f.pick(f.groups)
			}
			tn.AssignRole(r, m)
			return "assign role " + r + " to " + m
		case op == 14:
			r := f.pick(f.roles)
			for _, m := range append(slices.Clone(f.users), f.groups...) {
				if rng.IntN(4) == 0 {
					tn.UnassignRole(r, m)
				}
			}
			return "unassign role " + r
		case op == 15 && len(f.roles) < 4:
			r := m365test.UserAdministrator
			if slices.Contains(f.roles, r) {
				continue
			}
			tn.ActivateRole(r, "")
			f.roles = append(f.roles, r)
			return "activate role " + r
		case op == 16 && len(f.users) > 0:
			// A change Graph does not track with our $select.
			id := f.pick(f.users)
			tn.UpdateUser(id, func(u *m365test.User) { u.JobTitle += "!" })
			return "change job title of " + id
		}
	}
}

// TestDifferentialIncrementalEqualsFull applies seeded random sequences
// of directory changes to the fake and, after each step, reads the tenant
// incrementally into its copy and compares what the copy yields with what
// a full read (Accounts) yields, account for account, for several
// selections; the sequences include expired delta links, 410 Gone and the
// periodic full read.
func TestDifferentialIncrementalEqualsFull(t *testing.T) {
	seeds, steps := 6, 30
	if testing.Short() {
		seeds, steps = 2, 15
	}
	for _, mode := range []struct {
		name string
		opts m365test.Options
	}{
		{"as documented", m365test.Options{DeltaMembersPerObject: 3}},
		{"replays and partial objects", m365test.Options{DeltaMembersPerObject: 2, DeltaReplays: true, PartialDeltaUpdates: true}},
	} {
		for seed := range uint64(seeds) {
			t.Run(fmt.Sprintf("%s/seed %d", mode.name, seed+1), func(t *testing.T) {
				t.Parallel()
				differentialSequence(t, mode.opts, seed+1, steps)
			})
		}
	}
}

func differentialSequence(t *testing.T, opts m365test.Options, seed uint64, steps int) {
	ctx := context.Background()
	srv := m365test.NewServer(opts)
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: seed, Users: 24, Guests: 2, Disabled: 2, Hybrid: 4, Unlicensed: 3, Groups: 3, Admins: 2})
	helpdesk := tn.AddGroup("Helpdesk Admins", gen.Users[5])
	tn.ActivateRole(m365test.HelpdeskAdministrator, "")
	tn.AssignRole(m365test.HelpdeskAdministrator, helpdesk)
	tn.ActivateRole(m365test.DirectoryReaders, "")
	tn.AssignRole(m365test.DirectoryReaders, gen.Users[6])
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 7 })
	full := newSource(t, srv)

	f := &directoryFuzzer{rng: rand.New(rand.NewPCG(seed, 0xd1ff)), tn: tn, allStaff: gen.AllStaff,
		users:  slices.Concat(gen.Users, gen.Guests, gen.Disabled),
		groups: []string{gen.AllStaff, helpdesk},
		roles:  []string{m365test.GlobalAdministrator, m365test.HelpdeskAdministrator, m365test.DirectoryReaders}}
	for _, id := range gen.Groups {
		f.groups = append(f.groups, id)
	}
	slices.Sort(f.groups)

	// The copy is read for one selection; it must answer any.
	readSel := sources.Selection{Groups: []string{"Finance", gen.AllStaff}, Roles: []string{"Global Administrator"}}
	selections := []sources.Selection{
		readSel,
		{},
		{Admins: true},
		{Groups: []string{"Sales"}, IncludeDisabled: true},
		{Groups: []string{"Helpdesk Admins", "Finance 1", "Temps 2"}},
		{Roles: []string{"Directory Readers", m365test.UserAdministrator}},
	}
	copies := &sourcestest.Copies{}
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	opt := sources.ReadOptions{Now: func() time.Time { return now }}

	check := func(step int, did []string, rep sources.ReadReport) {
		t.Helper()
		for _, sel := range selections {
			if d := sameAccountsAs(ctx, full, src, copies, sel); d != "" {
				t.Fatalf("step %d (%s), read %+v, selection %+v: the copy differs from a full read:\n%s", step, strings.Join(did, "; "), rep, sel, d)
			}
		}
	}
	rep, err := src.Read(ctx, copies, "acme", readSel, opt)
	if err != nil || rep.Mode != sources.ReadFull || rep.Reason != "no state" {
		t.Fatalf("first read: %+v, %v", rep, err)
	}
	check(0, []string{"first read"}, rep)

	for step := 1; step <= steps; step++ {
		now = now.Add(time.Hour)
		var did []string
		wantFull := ""
		switch r := f.rng.IntN(20); {
		case r == 0:
			srv.ExpireDeltaLinks()
			did, wantFull = append(did, "expire the delta links"), "the delta link expired (syncStateNotFound)"
		case r == 1:
			srv.ExpireDeltaLinksAs(http.StatusGone, "resyncRequired")
			did, wantFull = append(did, "410 Gone"), "Graph asked for a full resynchronisation (410 Gone)"
		case r == 2:
			srv.ExpireDeltaLinksAs(http.StatusBadRequest, "resyncRequired")
			did, wantFull = append(did, "resync required"), "Graph asked for a full resynchronisation (resyncRequired)"
		case r == 3:
			now = now.Add(7 * 24 * time.Hour)
			did, wantFull = append(did, "a week passes"), "the last full read is older than 7 days"
		case r < 6:
			did = append(did, "nothing changes")
		}
		if len(did) == 0 || did[0] != "nothing changes" {
			for range 1 + f.rng.IntN(4) {
				did = append(did, f.change())
			}
		}
		// Entra is eventually consistent: the replica asked for a
		// restored object's memberships may not hold it yet and answer
		// 404. The read then asks again next round, which must complete
		// the copy.
		lagged := false
		if wantFull == "" && f.rng.IntN(2) == 0 {
			for _, d := range did {
				kind := ""
				switch {
				case strings.HasPrefix(d, "restore user") && strings.HasSuffix(d, "memberships: true)"):
					kind = m365test.KindUserMemberOf
				case strings.HasPrefix(d, "restore group") && strings.HasSuffix(d, "parents: true)"):
					kind = m365test.KindGroupMembers
				}
				if kind != "" {
					srv.Inject(m365test.Fault{Kind: kind, Status: http.StatusNotFound, Code: "Request_ResourceNotFound"})
					lagged = true
				}
			}
		}
		rep, err := src.Read(ctx, copies, "acme", readSel, opt)
		if err != nil {
			t.Fatalf("step %d (%s): read: %v", step, strings.Join(did, "; "), err)
		}
		if lagged {
			srv.ClearFaults()
			did = append(did, "a lookup answered 404, the next round read too")
			if rep, err = src.Read(ctx, copies, "acme", readSel, opt); err != nil {
				t.Fatalf("step %d (%s): read: %v", step, strings.Join(did, "; "), err)
			}
		}
		switch {
		case wantFull != "" && (rep.Mode != sources.ReadFull || rep.Reason != wantFull):
			t.Errorf("step %d (%s): read %+v, want a full read because %s", step, did[0], rep, wantFull)
		case wantFull == "" && rep.Mode != sources.ReadIncremental:
			t.Errorf("step %d (%s): read %+v, want an incremental read", step, strings.Join(did, "; "), rep)
		case did[0] == "nothing changes" && !opts.DeltaReplays && (rep.Requests != 3 || rep.Changes != 0):
			t.Errorf("step %d: nothing changed, yet the read made %d requests and %d changes; want 3 and 0", step, rep.Requests, rep.Changes)
		}
		check(step, did, rep)
	}
}

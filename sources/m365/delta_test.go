package m365_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// deltaRound runs one delta round to its end.
func deltaRound(t *testing.T, src *m365.Source, sel sources.Selection, link string) (map[string]sources.Account, *m365.DeltaResult) {
	t.Helper()
	seq, res := src.Delta(context.Background(), sel, link)
	got, entryErrs := collect(t, seq)
	if len(entryErrs) > 0 {
		t.Fatalf("entry errors: %v", entryErrs)
	}
	return got, res
}

func TestDeltaRounds(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	gen := tn.Generate(m365test.GenOptions{Seed: 11, Users: 1200, Guests: 3, Disabled: 2, Admins: 1})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 500 })

	// Initial round: every user, and a link to keep.
	got, res := deltaRound(t, src, sources.Selection{}, "")
	if len(got) != 1205 || !res.Complete || !res.FullRead || res.Expired || res.DeltaLink == "" || res.Changed != 1205 || res.Removed != 0 {
		t.Fatalf("initial round: %d accounts, result %+v", len(got), *res)
	}
	if res.Pages != 3 || srv.Count(m365test.KindDelta) != 3 {
		t.Errorf("initial round: %d pages, %d delta requests; want 3 (1,205 users by 500)", res.Pages, srv.Count(m365test.KindDelta))
	}
	if a := got[gen.Admins[0]]; a.Type != sources.Admin || a.Changed != m365.DeltaMarker {
		t.Errorf("admin in delta: %+v", a)
	}
	link := res.DeltaLink

	// Nothing changed: an empty round and a new link.
	got, res = deltaRound(t, src, sources.Selection{}, link)
	if len(got) != 0 || !res.Complete || res.FullRead || res.DeltaLink == "" {
		t.Fatalf("quiet round: %d accounts, result %+v", len(got), *res)
	}
	link = res.DeltaLink

	// Changes: one added, one disabled, one soft-deleted, one deleted.
	added := tn.AddUser(m365test.User{UserPrincipalName: "new.hire@contoso.onmicrosoft.com", DisplayName: "New Hire"})
	tn.UpdateUser(gen.Users[10], func(u *m365test.User) { u.Disabled = true })
	tn.DeleteUser(gen.Users[20], true)
	tn.DeleteUser(gen.Users[30], false)
	got, res = deltaRound(t, src, sources.Selection{}, link)
	want := map[string]string{
		added:         "",
		gen.Users[10]: m365.SkipDisabled,
		gen.Users[20]: m365.SkipSoftDeleted,
		gen.Users[30]: m365.SkipDeleted,
	}
	gotSkip := map[string]string{}
	for id, a := range got {
		gotSkip[id] = a.SkipReason
	}
	if d := diffMap(want, gotSkip); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if res.Changed != 2 || res.Removed != 2 || !res.Complete || res.FullRead || res.DeltaLink == link {
		t.Errorf("changes round result %+v", *res)
	}
	if a := got[added]; a.UPN != "new.hire@contoso.onmicrosoft.com" || a.Type != sources.EndUser {
		t.Errorf("added user: %+v", a)
	}

	// The same old link gives the same changes again (links are reusable
	// until they expire), which is what a caller that crashed before
	// saving the new link relies on.
	again, _ := deltaRound(t, src, sources.Selection{}, link)
	if len(again) != 4 {
		t.Errorf("replaying the previous link: %d changes, want 4", len(again))
	}
}

func TestDeltaExpiredLinkFallsBackToFullRead(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusGone} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := m365test.NewServer(m365test.Options{ExpiredDeltaStatus: status})
			t.Cleanup(srv.Close)
			srv.Default().Generate(m365test.GenOptions{Seed: 5, Users: 40})
			src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 25 })
			_, res := deltaRound(t, src, sources.Selection{}, "")
			old := res.DeltaLink
			srv.ExpireDeltaLinks()
			got, res := deltaRound(t, src, sources.Selection{}, old)
			if len(got) != 40 || !res.Expired || !res.FullRead || !res.Complete || res.DeltaLink == "" {
				t.Fatalf("after expiry: %d accounts, result %+v", len(got), *res)
			}
			// The new link works.
			got, res = deltaRound(t, src, sources.Selection{}, res.DeltaLink)
			if len(got) != 0 || res.Expired {
				t.Fatalf("round after the full read: %d accounts, result %+v", len(got), *res)
			}
		})
	}
}

func TestDeltaStoppedEarlyGivesNoLink(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 5, Users: 30})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10 })

	seq, res := src.Delta(context.Background(), sources.Selection{}, "")
	n := 0
	for range seq {
		if n++; n == 15 {
			break
		}
	}
	if res.Complete || res.DeltaLink != "" {
		t.Errorf("stopped by the caller: result %+v, want no link", *res)
	}

	srv.Inject(m365test.Fault{Kind: m365test.KindDelta, After: 1, Status: http.StatusBadRequest, Code: "Request_BadRequest", Message: "broken"})
	seq, res = src.Delta(context.Background(), sources.Selection{}, "")
	var err error
	for _, e := range seq {
		if e != nil {
			err = e
		}
	}
	if err == nil || !strings.Contains(err.Error(), "read user changes page 2") {
		t.Errorf("error = %v, want one on page 2", err)
	}
	if res.Complete || res.DeltaLink != "" {
		t.Errorf("failed round: result %+v, want no link", *res)
	}
}

func TestDeltaSelection(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	in := tn.AddUser(m365test.User{UserPrincipalName: "in@acme.example"})
	out := tn.AddUser(m365test.User{UserPrincipalName: "out@acme.example"})
	admin := tn.AddUser(m365test.User{UserPrincipalName: "admin@acme.example"})
	tn.AddGroup("Staff", in)
	tn.ActivateRole(m365test.GlobalAdministrator, "")
	tn.AssignRole(m365test.GlobalAdministrator, admin)
	src := newSource(t, srv)
	got, _ := deltaRound(t, src, sources.Selection{Groups: []string{"Staff"}, Roles: []string{"Global Administrator"}}, "")
	want := map[string]string{in: "", out: m365.SkipNotSelected, admin: ""}
	gotSkip := map[string]string{}
	for id, a := range got {
		gotSkip[id] = a.SkipReason
	}
	if d := diffMap(want, gotSkip); d != "" {
		t.Errorf("delta selection (-want +got):\n%s", d)
	}
	if a := got[admin]; a.Type != sources.Admin || a.TypeReason != "holds Global Administrator" {
		t.Errorf("admin: %+v", a)
	}
}

func TestDeltaPartialObjectsAreReadInFull(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{PartialDeltaUpdates: true})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	id := tn.AddUser(m365test.User{UserPrincipalName: "p@acme.example", DisplayName: "P"})
	src := newSource(t, srv)
	_, res := deltaRound(t, src, sources.Selection{}, "")
	tn.UpdateUser(id, func(u *m365test.User) { u.DisplayName = "P renamed" })
	srv.ResetCounts()
	got, _ := deltaRound(t, src, sources.Selection{}, res.DeltaLink)
	if a := got[id]; a.UPN != "p@acme.example" || a.DisplayName != "P renamed" {
		t.Errorf("partial update: %+v", a)
	}
	if n := srv.Count(m365test.KindUser); n != 1 {
		t.Errorf("user reads = %d, want 1", n)
	}
}

func TestDeltaRefusesForeignLink(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	src := newSource(t, srv)
	seq, res := src.Delta(context.Background(), sources.Selection{}, "https://attacker.example/v1.0/users/delta?$deltatoken=x")
	var err error
	for _, e := range seq {
		err = e
	}
	if err == nil || !strings.Contains(err.Error(), "not under the Graph URL") || res.Complete {
		t.Fatalf("error = %v, result %+v", err, *res)
	}
	if n := srv.Count(m365test.KindDelta); n != 0 {
		t.Errorf("delta requests = %d", n)
	}
}

func TestDeltaFailedFullReadEndsTheRound(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{PartialDeltaUpdates: true})
	t.Cleanup(srv.Close)
	tn := srv.Default()
	id := tn.AddUser(m365test.User{UserPrincipalName: "p@acme.example"})
	tn.AddUser(m365test.User{UserPrincipalName: "q@acme.example"})
	src := newSource(t, srv, func(c *m365.Config) { c.MaxRetries = 1 })
	_, res := deltaRound(t, src, sources.Selection{}, "")
	tn.UpdateUser(id, func(u *m365test.User) { u.DisplayName = "P2" })
	srv.Inject(m365test.Fault{Kind: m365test.KindUser, Status: 503, Times: -1})
	seq, res2 := src.Delta(context.Background(), sources.Selection{}, res.DeltaLink)
	var errs []error
	for _, err := range seq {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "read user "+id) || !strings.Contains(errs[0].Error(), "HTTP 503") {
		t.Fatalf("errors %v, want one failed re-read", errs)
	}
	if res2.Complete || res2.DeltaLink != "" {
		t.Errorf("result %+v: a round with a failed read must give no link", *res2)
	}
}

package ad_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/sourcestest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func TestReadFullThenIncrementalMatchesAccounts(t *testing.T) {
	dir := adtest.Generate(21, 40)
	srv, src := fakeSource(t, dir)
	copies := &sourcestest.Copies{}
	sels := selections(dir.BaseDN)
	rep := readOnce(t, src, copies, "acme", sels[0], sources.ReadOptions{})
	if rep.Mode != sources.ReadFull || rep.Reason != "no state" {
		t.Fatalf("first read %+v, want full for want of state", rep)
	}
	compareCopy(t, src, copies, "acme", sels, "after the full read")

	srv.ResetStats()
	rep = readOnce(t, src, copies, "acme", sels[0], sources.ReadOptions{})
	if rep.Mode != sources.ReadIncremental || rep.Requests != 1 || rep.Changes != 0 {
		t.Errorf("no-change read %+v, want incremental, 1 request, 0 changes", rep)
	}
	if st := srv.Stats(); st.DirSyncs != 1 || st.Searches != 1 {
		t.Errorf("no-change read cost %+v, want one DirSync search", st)
	}
}

func TestReadDecidesFullOrIncremental(t *testing.T) {
	dir := adtest.Generate(22, 10)
	_, src := fakeSource(t, dir)
	sels := selections(dir.BaseDN)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name   string
		sel    sources.Selection
		opt    sources.ReadOptions
		after  time.Duration
		mode   string
		reason string
	}{
		{name: "no state", sel: sels[0], mode: sources.ReadFull, reason: "no state"},
		{name: "next run", sel: sels[0], after: time.Hour, mode: sources.ReadIncremental},
		{name: "asked for", sel: sels[0], opt: sources.ReadOptions{Full: true}, mode: sources.ReadFull, reason: "asked for"},
		{name: "within the interval", sel: sels[0], after: 6 * 24 * time.Hour, mode: sources.ReadIncremental},
		{name: "past the default interval", sel: sels[0], after: 7*24*time.Hour + time.Second, mode: sources.ReadFull, reason: "the last full read is older than 7 days"},
		{name: "past a shorter interval", sel: sels[0], opt: sources.ReadOptions{FullEvery: 2 * time.Hour}, after: 3 * time.Hour, mode: sources.ReadFull, reason: "older than 2h0m0s"},
		{name: "selection changed", sel: sels[1], after: time.Minute, mode: sources.ReadFull, reason: "the selection changed"},
		{name: "same selection again", sel: sels[1], after: time.Minute, mode: sources.ReadIncremental},
	}
	copies := &sourcestest.Copies{}
	for _, tc := range tests {
		now = now.Add(tc.after)
		opt := tc.opt
		opt.Now = clock
		rep := readOnce(t, src, copies, "acme", tc.sel, opt)
		if rep.Mode != tc.mode || !strings.Contains(rep.Reason, tc.reason) || (tc.reason == "") != (rep.Reason == "") {
			t.Errorf("%s: %+v, want %s %q", tc.name, rep, tc.mode, tc.reason)
		}
	}
	st, _ := copies.CopyState(context.Background(), "acme", "ad")
	if !st.FullAt.Equal(now.Add(-time.Minute)) {
		t.Errorf("FullAt %v, want the last full read's time %v", st.FullAt, now.Add(-time.Minute))
	}
	// A position that does not decode is thrown away.
	st.Token = []byte("{not json")
	if err := copies.ApplyCopy(context.Background(), "acme", "ad", sources.CopyDelta{State: st}); err != nil {
		t.Fatal(err)
	}
	if rep := readOnce(t, src, copies, "acme", sels[1], sources.ReadOptions{Now: clock}); rep.Mode != sources.ReadFull || !strings.Contains(rep.Reason, "unreadable") {
		t.Errorf("unreadable position: %+v", rep)
	}
}

func TestCrashBeforeTheCommitRereadsFromTheOldPosition(t *testing.T) {
	dir := adtest.Generate(23, 10)
	_, src := fakeSource(t, dir)
	sel := sources.Selection{Groups: []string{adtest.GroupAllStaff + "," + dir.BaseDN}}
	copies := &sourcestest.Copies{}
	readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
	e := hireIntoSalesEMEA(t, dir)
	copies.FailApply = sourcestest.ErrCrash
	if _, err := src.Read(context.Background(), copies, "acme", sel, sources.ReadOptions{}); !errors.Is(err, sourcestest.ErrCrash) || !strings.Contains(err.Error(), "AD: customer acme") {
		t.Fatalf("read with a crash: %v", err)
	}
	if got := drain(src.CopyAccounts(context.Background(), copies, "acme", sel)); len(got.accounts) == 0 || got.accounts[dir.GUID(e.DN)].ID != "" {
		t.Fatalf("the copy changed although the commit failed: %d accounts", len(got.accounts))
	}
	rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
	if rep.Mode != sources.ReadIncremental || rep.Changes < 2 {
		t.Errorf("read after the crash %+v, want the change again, incrementally", rep)
	}
	if a := drain(src.CopyAccounts(context.Background(), copies, "acme", sel)).accounts[dir.GUID(e.DN)]; a.Username != "newhire" || a.SelectedBy[0] != sel.Groups[0] {
		t.Errorf("new hire after the second read: %+v", a)
	}
	compareCopy(t, src, copies, "acme", selections(dir.BaseDN), "after the crash")
}

func TestAnotherDCMeansAFullRead(t *testing.T) {
	for _, deny := range []bool{false, true} {
		t.Run(map[bool]string{false: "DirSync", true: "uSNChanged"}[deny], func(t *testing.T) {
			dir := adtest.Generate(24, 10)
			srv, src := fakeSource(t, dir)
			srv.DenyDirSync(deny)
			sel := selections(dir.BaseDN)[0]
			copies := &sourcestest.Copies{}
			readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
			for _, change := range []struct {
				do     func()
				reason string
			}{
				{func() { dir.SwitchDC("dc2") }, map[bool]string{false: "the DC refused the DirSync cookie (LDAP result 53", true: "another DC answered (dc2.corp.example.test, was dc1.corp.example.test)"}[deny]},
				{dir.RestoreDC, map[bool]string{false: "the DC refused the DirSync cookie", true: "the DC's invocationId changed"}[deny]},
			} {
				change.do()
				if rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{}); rep.Mode != sources.ReadFull || !strings.Contains(rep.Reason, change.reason) {
					t.Errorf("%+v, want a full read because %q", rep, change.reason)
				}
				if rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{}); rep.Mode != sources.ReadIncremental {
					t.Errorf("the read after: %+v", rep)
				}
			}
		})
	}
}

func TestWithoutTheDirSyncRightReadsPollUSNs(t *testing.T) {
	dir := adtest.Generate(25, 10)
	srv, src := fakeSource(t, dir)
	srv.DenyDirSync(true)
	sel := selections(dir.BaseDN)[2]
	copies := &sourcestest.Copies{}
	readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
	srv.ResetStats()
	rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
	// rootDSE, NTDS Settings, changed objects, deleted objects.
	if rep.Mode != sources.ReadIncremental || rep.Requests != 4 || rep.Changes != 0 || srv.Stats().DirSyncs != 0 {
		t.Errorf("no-change poll %+v, DirSyncs %d", rep, srv.Stats().DirSyncs)
	}
	// Granted later, DirSync is used from the next full read on.
	srv.DenyDirSync(false)
	readOnce(t, src, copies, "acme", sel, sources.ReadOptions{Full: true})
	srv.ResetStats()
	if rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{}); rep.Requests != 1 || srv.Stats().DirSyncs != 1 {
		t.Errorf("after the grant: %+v", rep)
	}
	// Withdrawn, the cookie is refused and the full read polls again.
	srv.DenyDirSync(true)
	if rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{}); rep.Mode != sources.ReadFull || !strings.Contains(rep.Reason, "LDAP result 50") {
		t.Errorf("after the withdrawal: %+v", rep)
	}
	compareCopy(t, src, copies, "acme", selections(dir.BaseDN), "polling")
}

func TestCopyAccountsWithoutACopy(t *testing.T) {
	_, src := fakeSource(t, adtest.Generate(26, 0))
	got := drain(src.CopyAccounts(context.Background(), &sourcestest.Copies{}, "acme", sources.Selection{Admins: true}))
	if !strings.Contains(got.err, "AD: customer acme: local copy of the directory: there is none yet") {
		t.Errorf("error %q", got.err)
	}
	if got := drain(src.CopyAccounts(context.Background(), &sourcestest.Copies{}, "acme", sources.Selection{})); len(got.accounts) != 0 || got.err != "" {
		t.Errorf("empty selection: %+v", got)
	}
}

func TestCopySelectionErrorsMatchTheDC(t *testing.T) {
	dir := adtest.Generate(27, 0)
	_, src := fakeSource(t, dir)
	copies := &sourcestest.Copies{}
	readOnce(t, src, copies, "acme", sources.Selection{Admins: true}, sources.ReadOptions{})
	b := dir.BaseDN
	compareCopy(t, src, copies, "acme", []sources.Selection{
		{Groups: []string{"CN=Nope,OU=Groups,OU=Corp," + b}},
		{Groups: []string{adtest.OUSales + "," + b}},
		{Builtin: []string{"Everybody"}},
		{OUs: []string{adtest.OUSales + "," + b, "OU=Nope," + b, adtest.OUBulk + "," + b}},
		{Groups: []string{"No Such Group"}},
		{Builtin: []string{"S-1-5-32-551"}},
		{OUs: []string{adtest.OUCorp + "," + b, adtest.OUSales + "," + b}},
	}, "selection errors")
}

// TestCopyAccountsReadsEachObjectOnce: computing a selection from the
// copy fetches its groups, containers and problems, then its accounts,
// each once, not the whole copy twice.
func TestCopyAccountsReadsEachObjectOnce(t *testing.T) {
	dir := adtest.Generate(28, 20)
	_, src := fakeSource(t, dir)
	copies := &sourcestest.Counting{CopyStore: &sourcestest.Copies{}}
	sels := selections(dir.BaseDN)
	readOnce(t, src, copies, "acme", sels[0], sources.ReadOptions{})
	kinds := map[string]int{}
	for o, err := range copies.CopyObjects(context.Background(), "acme", "ad") {
		if err != nil {
			t.Fatal(err)
		}
		kinds[o.Kind]++
	}
	for _, sel := range sels {
		copies.Reset()
		drain(src.CopyAccounts(context.Background(), copies, "acme", sel))
		if want := kinds["account"] + kinds["group"] + kinds["container"] + kinds["problem"]; copies.Objects() != int64(want) {
			t.Errorf("selection %+v fetched %d objects, want %d (%v)", sel, copies.Objects(), want, kinds)
		}
	}
	compareCopy(t, src, copies, "acme", sels, "the counted copy")
}

// The copy kept in the production store (both dialects) gives the same
// accounts as the DC after a full read and after incremental ones.
func TestReadKeepsTheCopyInTheStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		dir := adtest.Generate(28, 20)
		_, src := fakeSource(t, dir)
		sels := selections(dir.BaseDN)
		readOnce(t, src, s, "acme", sels[0], sources.ReadOptions{})
		compareCopy(t, src, s, "acme", sels, "full read into the store")
		b := dir.BaseDN
		e := dir.AddUser(adtest.User{Parent: adtest.OUAdmins + "," + b, SAM: "newadmin", GivenName: "New", Surname: "Admin"})
		if err := dir.AddMember(adtest.GroupTier3Ops+","+b, e.DN); err != nil {
			t.Fatal(err)
		}
		if err := dir.Delete("CN=Alice Archer," + adtest.OUSales + "," + b); err != nil {
			t.Fatal(err)
		}
		if err := dir.Rename(adtest.OUSales+","+b, "OU=Vertrieb,"+adtest.OUStaff+","+b); err != nil {
			t.Fatal(err)
		}
		rep := readOnce(t, src, s, "acme", sels[0], sources.ReadOptions{})
		if rep.Mode != sources.ReadIncremental || rep.Changes == 0 {
			t.Errorf("read %+v", rep)
		}
		compareCopy(t, src, s, "acme", sels, "incremental read into the store")
	})
}

// A full read stages its accounts in the store as it goes; one that
// crashes before its commit leaves the copy as it was, and the next full
// read drops what the crashed one staged.
func TestCrashedFullReadLeavesTheCopy(t *testing.T) {
	dir := adtest.Generate(30, 30)
	_, src := fakeSource(t, dir)
	sel := sources.Selection{Groups: []string{adtest.GroupAllStaff + "," + dir.BaseDN}}
	copies := &sourcestest.Copies{}
	readOnce(t, src, copies, "acme", sel, sources.ReadOptions{})
	if copies.Staged == 0 {
		t.Fatal("the full read staged nothing")
	}
	e := hireIntoSalesEMEA(t, dir)
	copies.FailApply = sourcestest.ErrCrash
	if _, err := src.Read(context.Background(), copies, "acme", sel, sources.ReadOptions{Full: true}); !errors.Is(err, sourcestest.ErrCrash) {
		t.Fatalf("full read with a crash: %v", err)
	}
	if _, staged, _ := copies.StagedCopyObject(context.Background(), "acme", "ad", dir.GUID(e.DN)); !staged {
		t.Fatal("the crashed read did not stage the new hire")
	}
	if got := drain(src.CopyAccounts(context.Background(), copies, "acme", sel)); got.accounts[dir.GUID(e.DN)].ID != "" {
		t.Fatal("the copy has the new hire although the full read never committed")
	}
	if rep := readOnce(t, src, copies, "acme", sel, sources.ReadOptions{Full: true}); rep.Mode != sources.ReadFull || rep.Changes == 0 {
		t.Fatalf("full read after the crash: %+v", rep)
	}
	if a := drain(src.CopyAccounts(context.Background(), copies, "acme", sel)).accounts[dir.GUID(e.DN)]; a.Username != "newhire" {
		t.Errorf("new hire after the second full read: %+v", a)
	}
	compareCopy(t, src, copies, "acme", selections(dir.BaseDN), "after the crashed full read")
}

// hireIntoSalesEMEA adds the user newhire to Sales EMEA, a group nested in
// All Staff.
func hireIntoSalesEMEA(t *testing.T, dir *adtest.Directory) *adtest.Entry {
	t.Helper()
	e := dir.AddUser(adtest.User{Parent: adtest.OUSales + "," + dir.BaseDN, SAM: "newhire", GivenName: "New", Surname: "Hire"})
	if err := dir.AddMember(adtest.GroupSalesEMEA+","+dir.BaseDN, e.DN); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAFullReadWaitsForItsTurn(t *testing.T) {
	for _, deny := range []bool{false, true} {
		t.Run(map[bool]string{false: "DirSync", true: "uSNChanged"}[deny], func(t *testing.T) {
			dir := adtest.Generate(27, 10)
			srv, src := fakeSource(t, dir)
			srv.DenyDirSync(deny)
			sel := selections(dir.BaseDN)[0]
			sourcestest.CheckFullTurns(t, sourcestest.Reading{
				Customer: "acme", Source: "ad",
				Read: func(ctx context.Context, copies sources.CopyStore, opt sources.ReadOptions) (sources.ReadReport, error) {
					return src.Read(ctx, copies, "acme", sel, opt)
				},
				Refuse:   func() { dir.SwitchDC("dc2") },
				Requests: func() int64 { st := srv.Stats(); return st.Binds + st.Searches + st.DirSyncs },
			})
		})
	}
}

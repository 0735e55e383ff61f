package ad_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// The differential test: seeded random sequences of directory changes on
// the fake DC; after each, an incremental read of the local copy must
// yield, for every selection, what a full read of the DC (Accounts)
// yields, account for account. The sequences include DC switches, a
// restored DC, a garbled cookie, DirSync permission withdrawn and granted
// again, and crashes before the commit.

// world is the fake domain a sequence changes, with what the test made.
type world struct {
	t      *testing.T
	rng    *rand.Rand
	dir    *adtest.Directory
	srv    *adtest.Server
	copies *sourcestest.Copies
	n      int
	// groups are the groups changes may touch; deleted the DNs of deleted
	// users, for restores.
	groups  []string
	deleted []string
	// expect says what the next read must be ("" either).
	expect string
}

func (w *world) rel(dn string) string { return dn + "," + w.dir.BaseDN }

func (w *world) pick(list []string) string { return list[w.rng.IntN(len(list))] }

func (w *world) find(filter string) []string {
	dns, err := w.dir.Find(filter)
	if err != nil {
		w.t.Fatal(err)
	}
	return dns
}

func (w *world) users() []string {
	return w.find("(&(objectClass=user)(!(objectClass=computer))(!(sAMAccountName=krbtgt))(!(sAMAccountName=Administrator)))")
}

func (w *world) ous() []string {
	return []string{w.rel(adtest.OUSales), w.rel(adtest.OUEngineering), w.rel(adtest.OUAdmins), w.rel(adtest.OUBulk), w.rel(adtest.OUCorp), w.rel(adtest.OUStaff)}
}

func (w *world) must(err error) {
	if err != nil {
		w.t.Fatal(err)
	}
}

// op is one kind of change, with its weight in the random mix.
type op struct {
	name   string
	weight int
	do     func(w *world) string // returns what it did
}

var ops = []op{
	{"add user", 6, func(w *world) string {
		w.n++
		sam := fmt.Sprintf("new%03d", w.n)
		uac := 512
		if w.rng.IntN(4) == 0 {
			uac = 514
		}
		e := w.dir.AddUser(adtest.User{Parent: w.pick(w.ous()), SAM: sam, GivenName: "New", Surname: fmt.Sprintf("User %03d", w.n), Mail: sam + "@example.test", UAC: uac})
		if w.rng.IntN(2) == 0 {
			g := w.pick(w.groups)
			w.must(w.dir.AddMember(g, e.DN))
			return "add " + e.DN + " in " + g
		}
		return "add " + e.DN
	}},
	{"add member", 8, func(w *world) string {
		g, u := w.pick(w.groups), w.pick(w.users())
		w.must(w.dir.AddMember(g, u))
		return "add " + u + " to " + g
	}},
	{"remove member", 6, func(w *world) string {
		g := w.pick(w.groups)
		attrs, _ := w.dir.Lookup(g)
		if len(attrs["member"]) == 0 {
			return "nothing to remove from " + g
		}
		m := w.pick(attrs["member"])
		w.dir.RemoveMember(g, m)
		return "remove " + m + " from " + g
	}},
	{"nest group", 3, func(w *world) string {
		a, b := w.pick(w.groups), w.pick(w.groups)
		if a == b {
			return "no nesting"
		}
		w.must(w.dir.AddMember(a, b))
		return "nest " + b + " in " + a
	}},
	{"disable or enable", 5, func(w *world) string {
		u := w.pick(w.users())
		uac := "514"
		if attrs, _ := w.dir.Lookup(u); len(attrs["userAccountControl"]) > 0 && attrs["userAccountControl"][0] == "514" {
			uac = "512"
		}
		w.must(w.dir.Set(u, "userAccountControl", uac))
		return "userAccountControl " + uac + " on " + u
	}},
	{"rename user", 3, func(w *world) string {
		u := w.pick(w.users())
		w.n++
		to := fmt.Sprintf("CN=Renamed %03d,%s", w.n, strings.SplitN(u, ",", 2)[1])
		w.must(w.dir.Rename(u, to))
		return "rename " + u + " to " + to
	}},
	{"move user", 4, func(w *world) string {
		u := w.pick(w.users())
		ou := w.pick(w.ous())
		to := strings.SplitN(u, ",", 2)[0] + "," + ou
		if err := w.dir.Rename(u, to); err != nil {
			return "no move: " + err.Error()
		}
		return "move " + u + " to " + ou
	}},
	{"primary group", 4, func(w *world) string {
		u := w.pick(w.users())
		rids := []string{"513", "513", "512"}
		attrs, _ := w.dir.Lookup(w.pick(w.groups))
		if sid, err := ad.ParseSIDBytes([]byte(attrs["objectSid"][0])); err == nil {
			if rid, ok := sid.RID(); ok && sid.Domain().Equal(w.dir.SID) {
				rids = append(rids, strconv.FormatUint(uint64(rid), 10))
			}
		}
		rid := w.pick(rids)
		w.must(w.dir.Set(u, "primaryGroupID", rid))
		return "primaryGroupID " + rid + " on " + u
	}},
	{"delete user", 3, func(w *world) string {
		u := w.pick(w.users())
		w.must(w.dir.Delete(u))
		w.deleted = append(w.deleted, u)
		return "delete " + u
	}},
	{"restore user", 2, func(w *world) string {
		if len(w.deleted) == 0 {
			return "nothing to restore"
		}
		i := w.rng.IntN(len(w.deleted))
		dn := w.deleted[i]
		guid := w.dir.DeletedGUID(dn)
		if guid == "" {
			return "lost " + dn
		}
		if err := w.dir.Restore(guid, dn); err != nil {
			return "no restore: " + err.Error()
		}
		w.deleted = append(w.deleted[:i], w.deleted[i+1:]...)
		return "restore " + dn
	}},
	{"change mail", 3, func(w *world) string {
		u := w.pick(w.users())
		if w.rng.IntN(3) == 0 {
			w.must(w.dir.Set(u, "mail"))
			return "remove mail of " + u
		}
		w.n++
		w.must(w.dir.Set(u, "mail", fmt.Sprintf("changed%d@example.test", w.n)))
		return "change mail of " + u
	}},
	{"add group", 2, func(w *world) string {
		w.n++
		g := w.dir.AddGroup(fmt.Sprintf("CN=Team %03d,%s", w.n, w.rel(adtest.OUGroups)))
		w.groups = append(w.groups, g.DN)
		parent := w.pick(w.groups[:len(w.groups)-1])
		w.must(w.dir.AddMember(parent, g.DN))
		return "add group " + g.DN + " in " + parent
	}},
	{"delete group", 1, func(w *world) string {
		for i, g := range w.groups {
			if strings.HasPrefix(g, "CN=Team ") {
				w.must(w.dir.Delete(g))
				w.groups = append(w.groups[:i], w.groups[i+1:]...)
				return "delete group " + g
			}
		}
		return "no group to delete"
	}},
	{"move OU", 1, func(w *world) string {
		w.n++
		ou := fmt.Sprintf("OU=Unit %03d,%s", w.n, w.rel(adtest.OUEngineering))
		w.dir.AddOU(ou)
		for i := range 3 {
			e := w.dir.AddUser(adtest.User{Parent: ou, SAM: fmt.Sprintf("unit%03d%d", w.n, i), GivenName: "Unit", Surname: strconv.Itoa(i)})
			if i == 0 {
				w.must(w.dir.AddMember(w.rel(adtest.GroupTier3Ops), e.DN))
			}
		}
		if _, err := src(w).Read(context.Background(), w.copies, "acme", selections(w.dir.BaseDN)[0], sources.ReadOptions{}); err != nil {
			w.t.Fatal(err)
		}
		to := fmt.Sprintf("OU=Moved Unit %03d,%s", w.n, w.rel(adtest.OUBulk))
		w.must(w.dir.Rename(ou, to))
		return "move " + ou + " with its users to " + to
	}},
	{"broken value", 1, func(w *world) string {
		u := w.pick(w.users())
		if w.rng.IntN(2) == 0 {
			w.must(w.dir.Set(u, "displayName", "Broken \xfe\xff"))
			return "invalid UTF-8 in displayName of " + u
		}
		w.must(w.dir.Set(u, "userAccountControl", "enabled"))
		return "userAccountControl not a number on " + u
	}},
	{"switch DC", 1, func(w *world) string {
		w.n++
		w.dir.SwitchDC(fmt.Sprintf("dc%d", w.n))
		w.expect = sources.ReadFull
		return "switch to another DC"
	}},
	{"restore DC", 1, func(w *world) string {
		w.dir.RestoreDC()
		w.expect = sources.ReadFull
		return "restore the DC from a backup"
	}},
	{"garble cookie", 1, func(w *world) string {
		garbleCookie(w.t, w.copies, "acme")
		return "garble the stored cookie"
	}},
	{"DirSync permission", 1, func(w *world) string {
		deny := w.rng.IntN(2) == 0
		w.srv.DenyDirSync(deny)
		return fmt.Sprintf("deny DirSync: %v", deny)
	}},
}

// src is the world's reader.
func src(w *world) *ad.Source {
	cfg := w.srv.Config("acme")
	cfg.StartTLS, cfg.AllowPlaintext = false, true // TLS handshakes would dominate the test's time
	s, err := ad.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// garbleCookie corrupts the stored position's DirSync cookie, as a DC
// that lost its state would see it.
func garbleCookie(t *testing.T, copies *sourcestest.Copies, customer string) {
	ctx := context.Background()
	st, err := copies.CopyState(ctx, customer, "ad")
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	if err := json.Unmarshal(st.Token, &tok); err != nil {
		t.Fatal(err)
	}
	tok["cookie"] = []byte("MSDS garbled")
	st.Token, _ = json.Marshal(tok)
	if err := copies.ApplyCopy(ctx, customer, "ad", sources.CopyDelta{State: st}); err != nil {
		t.Fatal(err)
	}
}

// dc is how the fake DC of a differential run behaves.
type dc struct {
	// denyDirSync withholds the DirSync right (uSNChanged polling);
	// hideDeleted CN=Deleted Objects.
	denyDirSync, hideDeleted bool
	// maxPage and maxVal lower the page size (DirSync batches too) and
	// MaxValRange, so that reads take several batches and pages and big
	// groups need range retrieval. MaxValRange applies to every attribute,
	// as on a DC: below 8, Accounts itself would miss memberOf and
	// objectClass values.
	maxPage, maxVal int
}

func runDifferential(t *testing.T, seed uint64, steps int, behave dc) {
	denyDirSync := behave.denyDirSync
	dir := adtest.Generate(seed, 30)
	srv := adtest.NewServer(t, adtest.Options{Directory: dir, MaxPageSize: behave.maxPage, MaxValRange: behave.maxVal})
	srv.DenyDirSync(denyDirSync)
	srv.HideDeletedObjects(behave.hideDeleted)
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, 99)), dir: dir, srv: srv, copies: &sourcestest.Copies{}}
	for _, g := range []string{adtest.GroupAllStaff, adtest.GroupSalesTeam, adtest.GroupSalesEMEA, adtest.GroupTier2Ops, adtest.GroupTier3Ops,
		adtest.GroupBulkStaff, "CN=Domain Admins,CN=Users", "CN=Backup Operators,CN=Builtin"} {
		w.groups = append(w.groups, w.rel(g))
	}
	// A group bigger than a small MaxValRange, nested three deep.
	big := dir.AddGroup(w.rel("CN=Big Team," + adtest.OUGroups))
	w.must(dir.AddMember(w.rel(adtest.GroupSalesEMEA), big.DN))
	for _, u := range w.find("(sAMAccountName=*000*)")[:12] {
		w.must(dir.AddMember(big.DN, u))
	}
	w.groups = append(w.groups, big.DN)
	reader := src(w)
	sels := selections(dir.BaseDN)
	ctx := context.Background()
	readOnce(t, reader, w.copies, "acme", sels[0], sources.ReadOptions{})
	compareCopy(t, reader, w.copies, "acme", sels, "the first full read")
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	var log []string
	for step := 1; step <= steps; step++ {
		k := w.rng.IntN(total)
		var o op
		for _, o = range ops {
			if k -= o.weight; k < 0 {
				break
			}
		}
		if denyDirSync && o.name == "DirSync permission" {
			continue
		}
		w.expect = ""
		log = append(log, fmt.Sprintf("%d %s", step, o.do(w)))
		if len(log) > 8 {
			log = log[1:]
		}
		if w.rng.IntN(12) == 0 {
			// A crash before the commit: nothing of the read is kept.
			w.copies.FailApply = sourcestest.ErrCrash
			before := w.copies.Applied
			if _, err := reader.Read(ctx, w.copies, "acme", sels[0], sources.ReadOptions{}); !errors.Is(err, sourcestest.ErrCrash) {
				t.Fatalf("read with a crash before the commit: %v", err)
			}
			if w.copies.Applied != before {
				t.Fatal("a failed ApplyCopy changed the copy")
			}
		}
		rep := readOnce(t, reader, w.copies, "acme", sels[0], sources.ReadOptions{})
		if w.expect != "" && rep.Mode != w.expect {
			t.Fatalf("step %d: read %+v, want %s\n%s", step, rep, w.expect, strings.Join(log, "\n"))
		}
		// Every selection every fifth step and after a full read, two in
		// turn otherwise (a divergence stays until a full read).
		compared := sels
		if step%5 != 0 && rep.Mode == sources.ReadIncremental {
			compared = []sources.Selection{sels[step%len(sels)], sels[(step+3)%len(sels)]}
		}
		compareCopy(t, reader, w.copies, "acme", compared, fmt.Sprintf("seed %d step %d (%s)\nlast changes:\n%s\nread %+v", seed, step, o.name, strings.Join(log, "\n"), rep))
	}
	compareCopy(t, reader, w.copies, "acme", sels, "the end")
}

func TestDifferentialDirSync(t *testing.T) {
	for _, tc := range []struct {
		seed   uint64
		behave dc
	}{
		{1, dc{}},
		{2, dc{maxPage: 7, maxVal: 8}},
		{3, dc{maxPage: 5}},
	} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			t.Parallel()
			runDifferential(t, tc.seed, 45, tc.behave)
		})
	}
}

func TestDifferentialUSNPolling(t *testing.T) {
	for _, tc := range []struct {
		seed   uint64
		behave dc
	}{
		{4, dc{denyDirSync: true, maxPage: 6, maxVal: 8}},
		{5, dc{denyDirSync: true, hideDeleted: true, maxPage: 8, maxVal: 9}},
	} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			t.Parallel()
			runDifferential(t, tc.seed, 40, tc.behave)
		})
	}
}

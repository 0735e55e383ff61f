package store_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// copySnapshot is everything a CopyStore holds for one customer and source.
type copySnapshot struct {
	state   sources.SyncState
	objects []sources.CopyObject
	links   []sources.CopyLink
}

func snapshot(t *testing.T, c sources.CopyStore, customer, source string) copySnapshot {
	t.Helper()
	ctx := context.Background()
	var s copySnapshot
	var err error
	if s.state, err = c.CopyState(ctx, customer, source); err != nil {
		t.Fatal(err)
	}
	for o, err := range c.CopyObjects(ctx, customer, source) {
		if err != nil {
			t.Fatal(err)
		}
		s.objects = append(s.objects, o)
	}
	for l, err := range c.CopyLinks(ctx, customer, source) {
		if err != nil {
			t.Fatal(err)
		}
		s.links = append(s.links, l)
	}
	return s
}

func (a copySnapshot) diff(b copySnapshot) string {
	switch {
	case string(a.state.Token) != string(b.state.Token) || !a.state.FullAt.Equal(b.state.FullAt) || a.state.Selection != b.state.Selection:
		return fmt.Sprintf("state %+v, want %+v", a.state, b.state)
	case len(a.objects) != len(b.objects):
		return fmt.Sprintf("%d objects, want %d", len(a.objects), len(b.objects))
	case !slices.Equal(a.links, b.links):
		return fmt.Sprintf("%d links, want %d (%v vs %v)", len(a.links), len(b.links), head(a.links), head(b.links))
	}
	for i := range a.objects {
		x, y := a.objects[i], b.objects[i]
		if x.ID != y.ID || x.Kind != y.Kind || string(x.Doc) != string(y.Doc) {
			return fmt.Sprintf("object %d: %s %s %q, want %s %s %q", i, x.ID, x.Kind, x.Doc, y.ID, y.Kind, y.Doc)
		}
	}
	return ""
}

func head(l []sources.CopyLink) []sources.CopyLink { return l[:min(len(l), 5)] }

// randomDelta makes a delta over a small id space, so that upserts,
// deletes and links meet the same ids: full reads, repeated objects,
// links of deleted objects, links added twice, binary documents.
func randomDelta(rng *rand.Rand, step int) sources.CopyDelta {
	id := func() string { return fmt.Sprintf("id-%02d", rng.IntN(40)) }
	d := sources.CopyDelta{Full: rng.IntN(8) == 0}
	for range rng.IntN(12) {
		doc := make([]byte, rng.IntN(64))
		for i := range doc {
			doc[i] = byte(rng.IntN(256))
		}
		d.Upserts = append(d.Upserts, sources.CopyObject{Kind: []string{"user", "group", "container"}[rng.IntN(3)], ID: id(), Doc: doc})
	}
	if !d.Full {
		for range rng.IntN(4) {
			d.Deletes = append(d.Deletes, id())
		}
		for range rng.IntN(8) {
			d.LinksRemoved = append(d.LinksRemoved, sources.CopyLink{Group: id(), Member: id()})
		}
	}
	for range rng.IntN(15) {
		d.LinksAdded = append(d.LinksAdded, sources.CopyLink{Group: id(), Member: id()})
	}
	d.State = sources.SyncState{Token: []byte(fmt.Sprintf("token \x00\xff %d", step)), FullAt: time.UnixMicro(int64(1_700_000_000_000_000 + step)).UTC(), Selection: fmt.Sprint("sel", step%3)}
	return d
}

// The store keeps a copy exactly as the in-memory CopyStore the readers
// are tested with: the same random deltas give the same state, objects
// and links, on both dialects.
func TestCopyStoreMatchesTheContract(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		model := &sourcestest.Copies{}
		rng := rand.New(rand.NewPCG(7, 7))
		if st, err := s.CopyState(ctx, "acme", "ad"); err != nil || !st.Zero() {
			t.Fatalf("state of no copy: %+v %v", st, err)
		}
		for step := range 120 {
			d := randomDelta(rng, step)
			for _, c := range []sources.CopyStore{s, model} {
				if err := c.ApplyCopy(ctx, "acme", "ad", d); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
			if diff := snapshot(t, s, "acme", "ad").diff(snapshot(t, model, "acme", "ad")); diff != "" {
				t.Fatalf("step %d (full %v): %s", step, d.Full, diff)
			}
		}
	})
}

func TestCopiesArePerCustomerAndSource(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		put := func(customer, source, id string) {
			d := sources.CopyDelta{Full: true, Upserts: []sources.CopyObject{{Kind: "user", ID: id, Doc: []byte(id)}},
				LinksAdded: []sources.CopyLink{{Group: "g", Member: id}}, State: sources.SyncState{Token: []byte(customer + source)}}
			if err := s.ApplyCopy(ctx, customer, source, d); err != nil {
				t.Fatal(err)
			}
		}
		put("acme", "ad", "a1")
		put("acme", "m365", "m1")
		put("globex", "ad", "g1")
		put("acme", "ad", "a2") // a full read of acme's AD only
		for _, c := range []struct{ customer, source, id string }{{"acme", "ad", "a2"}, {"acme", "m365", "m1"}, {"globex", "ad", "g1"}} {
			snap := snapshot(t, s, c.customer, c.source)
			if len(snap.objects) != 1 || snap.objects[0].ID != c.id || len(snap.links) != 1 || string(snap.state.Token) != c.customer+c.source {
				t.Errorf("%s/%s: %+v", c.customer, c.source, snap)
			}
		}
	})
}

// A failed ApplyCopy leaves the old position and the old copy: the read
// is done again from there.
func TestFailedApplyCopyLeavesTheOldCopy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		first := sources.CopyDelta{Full: true, Upserts: []sources.CopyObject{{Kind: "user", ID: "u1", Doc: []byte("one")}, {Kind: "group", ID: "g1", Doc: []byte("g")}},
			LinksAdded: []sources.CopyLink{{Group: "g1", Member: "u1"}}, State: sources.SyncState{Token: []byte("old"), FullAt: time.UnixMicro(1).UTC(), Selection: "s"}}
		if err := s.ApplyCopy(ctx, "acme", "ad", first); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s, "acme", "ad")
		for name, bad := range map[string]sources.CopyDelta{
			"empty member id in the last step": {Deletes: []string{"u1"}, Upserts: []sources.CopyObject{{Kind: "user", ID: "u2", Doc: []byte("two")}},
				LinksRemoved: []sources.CopyLink{{Group: "g1", Member: "u1"}}, LinksAdded: []sources.CopyLink{{Group: "g1", Member: ""}}, State: sources.SyncState{Token: []byte("new")}},
			"object id too long": {Full: true, Upserts: []sources.CopyObject{{Kind: "user", ID: "u3"}, {Kind: "user", ID: strings.Repeat("x", 192)}}, State: sources.SyncState{Token: []byte("new")}},
		} {
			if err := s.ApplyCopy(ctx, "acme", "ad", bad); err == nil || !strings.Contains(err.Error(), "customer acme: save the ad copy") {
				t.Errorf("%s: ApplyCopy = %v, want an error naming the customer", name, err)
			}
			if diff := snapshot(t, s, "acme", "ad").diff(before); diff != "" {
				t.Errorf("%s: the failed ApplyCopy changed the copy: %s", name, diff)
			}
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.ApplyCopy(cancelled, "acme", "ad", sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("new")}}); err == nil {
			t.Error("ApplyCopy with a cancelled context succeeded")
		}
		if diff := snapshot(t, s, "acme", "ad").diff(before); diff != "" {
			t.Errorf("cancelled: %s", diff)
		}
	})
}

// Reads page through the copy: more objects and links than one page
// come whole and in order, and a consumer may stop early.
func TestCopyReadsPageThrough(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("t")}}
		for i := range 2503 {
			id := fmt.Sprintf("obj-%05d", i)
			d.Upserts = append(d.Upserts, sources.CopyObject{Kind: "user", ID: id, Doc: []byte(id)})
		}
		for g := range 3 {
			for m := range 5001 {
				d.LinksAdded = append(d.LinksAdded, sources.CopyLink{Group: fmt.Sprintf("grp-%d", g), Member: fmt.Sprintf("obj-%05d", m)})
			}
		}
		if err := s.ApplyCopy(ctx, "acme", "ad", d); err != nil {
			t.Fatal(err)
		}
		snap := snapshot(t, s, "acme", "ad")
		if len(snap.objects) != 2503 || len(snap.links) != 15003 {
			t.Fatalf("%d objects and %d links", len(snap.objects), len(snap.links))
		}
		if !slices.IsSortedFunc(snap.objects, func(a, b sources.CopyObject) int { return strings.Compare(a.ID, b.ID) }) ||
			!slices.IsSortedFunc(snap.links, func(a, b sources.CopyLink) int { return strings.Compare(a.Group+" "+a.Member, b.Group+" "+b.Member) }) {
			t.Error("not in order")
		}
		n := 0
		for range s.CopyObjects(ctx, "acme", "ad") {
			if n++; n == 10 {
				break
			}
		}
		if n != 10 {
			t.Errorf("stopped after %d", n)
		}
	})
}

// TestCopyObjectsOfSomeKinds: asked for some kinds, a copy yields exactly
// those of its objects, in the same order, across pages; the test
// store of the sources' tests keeps the same contract.
func TestCopyObjectsOfSomeKinds(t *testing.T) {
	kinds := []string{"user", "user", "group", "user", "role", "container"}
	d := sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("t")}}
	for i := range 2503 {
		id := fmt.Sprintf("obj-%05d", i)
		d.Upserts = append(d.Upserts, sources.CopyObject{Kind: kinds[i%len(kinds)], ID: id, Doc: []byte(id)})
	}
	check := func(t *testing.T, c sources.CopyStore) {
		ctx := context.Background()
		if err := c.ApplyCopy(ctx, "acme", "m365", d); err != nil {
			t.Fatal(err)
		}
		for _, want := range [][]string{{"group", "role"}, {"user"}, {"container"}, {"device"}, nil} {
			var got []sources.CopyObject
			for o, err := range c.CopyObjects(ctx, "acme", "m365", want...) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, o)
			}
			var all []sources.CopyObject
			for _, o := range d.Upserts {
				if len(want) == 0 || slices.Contains(want, o.Kind) {
					all = append(all, o)
				}
			}
			if !slices.EqualFunc(got, all, func(a, b sources.CopyObject) bool {
				return a.ID == b.ID && a.Kind == b.Kind && string(a.Doc) == string(b.Doc)
			}) {
				t.Errorf("kinds %v: %d objects, want %d", want, len(got), len(all))
			}
		}
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) { check(t, s) })
	t.Run("sourcestest", func(t *testing.T) { check(t, &sourcestest.Copies{}) })
}

// CopyHolds says which of the ids asked for the copy holds, over more ids
// than one statement takes, and nothing of another customer's or
// source's copy.
func TestCopyHolds(t *testing.T) {
	d := sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("t")}}
	var ask []string
	want := map[string]bool{}
	for i := range 1203 {
		id := fmt.Sprintf("obj-%05d", i)
		ask = append(ask, id)
		if i%3 != 0 {
			d.Upserts = append(d.Upserts, sources.CopyObject{Kind: "user", ID: id, Doc: []byte(id)})
			want[id] = true
		}
	}
	check := func(t *testing.T, c sources.CopyStore) {
		ctx := context.Background()
		if err := c.ApplyCopy(ctx, "acme", "m365", d); err != nil {
			t.Fatal(err)
		}
		got, err := c.CopyHolds(ctx, "acme", "m365", ask)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("acme's copy holds %d of %d ids (%v), want %d", len(got), len(ask), err, len(want))
		}
		for _, other := range [][2]string{{"bravo", "m365"}, {"acme", "ad"}} {
			if got, err := c.CopyHolds(ctx, other[0], other[1], ask); err != nil || len(got) != 0 {
				t.Errorf("%s's %s copy holds %d of them (%v), want none", other[0], other[1], len(got), err)
			}
		}
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) { check(t, s) })
	t.Run("sourcestest", func(t *testing.T) { check(t, &sourcestest.Copies{}) })
}

// A full read of a 100,000-object directory is written with multi-row
// statements: a few hundred, not one round trip per object or link.
func TestLargeCopyIsWrittenInBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 100_000
		d := sources.CopyDelta{Full: true, State: sources.SyncState{Token: []byte("t")}}
		doc := []byte(strings.Repeat("d", 300))
		for i := range n {
			id := fmt.Sprintf("%08d-0000-0000-0000-000000000000", i)
			d.Upserts = append(d.Upserts, sources.CopyObject{Kind: "account", ID: id, Doc: doc})
			d.LinksAdded = append(d.LinksAdded, sources.CopyLink{Group: fmt.Sprintf("group-%03d", i%100), Member: id})
		}
		start := time.Now()
		stmts, err := store.ApplyCopyCounting(s, ctx, "big", "ad", d)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("full copy of %d objects and %d links: %d statements in %v", n, n, stmts, time.Since(start).Round(time.Millisecond))
		if stmts > 2*n/500+10 {
			t.Errorf("%d statements for %d objects and %d links", stmts, n, n)
		}
		inc := sources.CopyDelta{State: sources.SyncState{Token: []byte("t2")}}
		for i := range 1000 {
			id := fmt.Sprintf("%08d-0000-0000-0000-000000000000", i*7)
			inc.Upserts = append(inc.Upserts, sources.CopyObject{Kind: "account", ID: id, Doc: []byte("changed")})
			inc.LinksRemoved = append(inc.LinksRemoved, sources.CopyLink{Group: fmt.Sprintf("group-%03d", (i*7)%100), Member: id})
			inc.Deletes = append(inc.Deletes, fmt.Sprintf("%08d-0000-0000-0000-000000000000", i*7+1))
		}
		start = time.Now()
		if stmts, err = store.ApplyCopyCounting(s, ctx, "big", "ad", inc); err != nil {
			t.Fatal(err)
		}
		t.Logf("1,000 changes, 1,000 deletes and 1,000 removed links: %d statements in %v", stmts, time.Since(start).Round(time.Millisecond))
		if stmts > 12 {
			t.Errorf("%d statements", stmts)
		}
		if snap := snapshot(t, s, "big", "ad"); len(snap.objects) != n-1000 || len(snap.links) != n-2000 {
			t.Errorf("%d objects, %d links", len(snap.objects), len(snap.links))
		}
	})
}

// A full read that staged its objects: ApplyCopy swaps them in with its
// Upserts and Deletes and its position, as the in-memory CopyStager does;
// staging that does not hold what the read staged fails the apply and
// leaves the copy; a read that never applied leaves the copy as it was,
// and the next one clears its staging first.
func TestStagedFullReadIsSwappedIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		model := &sourcestest.Copies{}
		stores := []sources.CopyStager{s, model}
		obj := func(id, doc string) sources.CopyObject {
			return sources.CopyObject{Kind: "account", ID: id, Doc: []byte(doc)}
		}
		each := func(what string, fn func(c sources.CopyStager) error) {
			t.Helper()
			for _, c := range stores {
				if err := fn(c); err != nil {
					t.Fatalf("%s: %T: %v", what, c, err)
				}
			}
			if diff := snapshot(t, s, "acme", "ad").diff(snapshot(t, model, "acme", "ad")); diff != "" {
				t.Fatalf("%s: %s", what, diff)
			}
		}
		each("a first copy", func(c sources.CopyStager) error {
			return c.ApplyCopy(ctx, "acme", "ad", sources.CopyDelta{Full: true, Upserts: []sources.CopyObject{obj("old", "o")}, State: sources.SyncState{Token: []byte("t0")}})
		})
		before := snapshot(t, s, "acme", "ad")

		// Staged and never applied (a crash): the copy is as it was.
		each("staged, not applied", func(c sources.CopyStager) error {
			return c.StageCopy(ctx, "acme", "ad", []sources.CopyObject{obj("lost", "l")})
		})
		if diff := snapshot(t, s, "acme", "ad").diff(before); diff != "" {
			t.Fatalf("staging changed the copy: %s", diff)
		}
		// The next full read clears it, stages in two batches (one object
		// twice) and applies.
		each("cleared", func(c sources.CopyStager) error { return c.ClearStagedCopy(ctx, "acme", "ad") })
		each("staged", func(c sources.CopyStager) error {
			if err := c.StageCopy(ctx, "acme", "ad", []sources.CopyObject{obj("a", "1"), obj("b", "1"), obj("c", "1")}); err != nil {
				return err
			}
			return c.StageCopy(ctx, "acme", "ad", []sources.CopyObject{obj("b", "2"), obj("d", "1")})
		})
		for _, c := range stores {
			if o, ok, err := c.StagedCopyObject(ctx, "acme", "ad", "b"); err != nil || !ok || string(o.Doc) != "2" || o.Kind != "account" {
				t.Fatalf("%T: staged b = %+v %v %v", c, o, ok, err)
			}
			if _, ok, err := c.StagedCopyObject(ctx, "acme", "ad", "lost"); err != nil || ok {
				t.Fatalf("%T: what the crashed read staged is still there (%v %v)", c, ok, err)
			}
		}
		// Staging that holds another number of objects than the read
		// staged fails, and changes nothing.
		for _, c := range stores {
			err := c.ApplyCopy(ctx, "acme", "ad", sources.CopyDelta{Full: true, Staged: 5, State: sources.SyncState{Token: []byte("bad")}})
			if err == nil || !strings.Contains(err.Error(), "staged 5") {
				t.Fatalf("%T: a count that does not match: %v", c, err)
			}
		}
		if diff := snapshot(t, s, "acme", "ad").diff(before); diff != "" {
			t.Fatalf("a refused apply changed the copy: %s", diff)
		}
		each("applied", func(c sources.CopyStager) error {
			return c.ApplyCopy(ctx, "acme", "ad", sources.CopyDelta{Full: true, Staged: 4, Upserts: []sources.CopyObject{obj("c", "3"), {Kind: "group", ID: "g", Doc: []byte("g")}},
				Deletes: []string{"d"}, LinksAdded: []sources.CopyLink{{Group: "g", Member: "a"}}, State: sources.SyncState{Token: []byte("t1")}})
		})
		got := snapshot(t, s, "acme", "ad")
		var ids []string
		for _, o := range got.objects {
			ids = append(ids, o.ID+"="+string(o.Doc))
		}
		if strings.Join(ids, " ") != "a=1 b=2 c=3 g=g" || string(got.state.Token) != "t1" || len(got.links) != 1 {
			t.Errorf("copy after the staged read: %v, %q, %v", ids, got.state.Token, got.links)
		}
		if _, ok, _ := s.StagedCopyObject(ctx, "acme", "ad", "a"); ok {
			t.Error("the staging still holds what was applied")
		}
	})
}

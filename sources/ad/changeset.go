package ad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/msp-tools/autoimport/sources"
)

// changeSet gathers the objects and memberships a read saw, and turns
// them into one CopyDelta: for a full read the whole copy, for an
// incremental read the changes to the stored copy (DirSync's partial
// objects merged into the stored ones, whole member lists diffed against
// the stored links, the objects below a renamed or moved container given
// their new DNs).
type changeSet struct {
	full bool
	objs map[string]*objChange
	// order is the order the objects of an incremental read came in (a
	// full read's delta is in id order).
	order []string
	// links are the membership changes of an incremental read, by link:
	// true added, false removed (the last word wins).
	links map[sources.CopyLink]bool
	// lists are whole member lists of an incremental read (searches), by
	// group id.
	lists map[string][]string
	// members is a full read's memberships: group id -> member ids.
	members  map[string]map[string]bool
	problems []problem
	// stage, when set, takes a full read's accounts to the store as they
	// come (see compactOrStage), so that a read never holds a whole domain:
	// of an account handed over, staged keeps a 16-byte key, no more.
	stage  *sources.Staging
	staged map[objectKey]struct{}
}

// objChange is what a read saw of one object.
type objChange struct {
	dn      string
	deleted bool
	// returned marks an object deleted and back within the read: its
	// stored links are gone.
	returned bool
	// whole says attrs is the whole object (a search), not the changed
	// attributes (DirSync).
	whole bool
	attrs map[string][][]byte
	// doc, in a full read, is the object encoded as the copy stores it,
	// in place of attrs: a full read holds every object of the domain it
	// does not stage, and an encoded one is a fraction of its attribute
	// map; kind is the copy's kind of it.
	doc  []byte
	kind string
	// inStore: the store's staging holds a version of this object, staged
	// before the read met it again.
	inStore bool
}

// problem is an entry, or a value of one, a read could not take in.
type problem struct{ entry, reason string }

func newChangeSet(full bool) *changeSet {
	return &changeSet{full: full, objs: map[string]*objChange{}, links: map[sources.CopyLink]bool{},
		lists: map[string][]string{}, members: map[string]map[string]bool{}, staged: map[objectKey]struct{}{}}
}

// empty reports a read that saw nothing.
func (cs *changeSet) empty() bool {
	return len(cs.objs) == 0 && len(cs.links) == 0 && len(cs.lists) == 0 && len(cs.problems) == 0
}

// add takes in one entry; whole says it is the whole object.
func (cs *changeSet) add(d dirEntry, whole bool) {
	for _, p := range d.problems {
		cs.problems = append(cs.problems, problem{entry: firstNonEmpty(d.dn, d.id), reason: p})
	}
	oc := cs.objs[d.id]
	if oc == nil {
		oc = &objChange{attrs: map[string][][]byte{}}
		cs.objs[d.id] = oc
		if !cs.full {
			cs.order = append(cs.order, d.id)
		}
	}
	if cs.full {
		key := keyOf(d.id)
		cs.unstage(key, d.id, oc)
		cs.expand(oc)
		defer cs.compactOrStage(key, d.id, oc)
	}
	if d.deleted {
		oc.deleted, oc.attrs = true, map[string][][]byte{}
		return
	}
	if oc.deleted {
		oc.deleted, oc.returned, oc.attrs = false, true, map[string][][]byte{}
	}
	if whole {
		oc.whole, oc.attrs = true, d.attrs
	} else {
		for k, v := range d.attrs {
			oc.attrs[k] = v
		}
	}
	if d.dn != "" {
		oc.dn = d.dn
	}
	m := d.members
	if m == nil && whole && hasValueFold(byteStrings(d.attrs["objectClass"]), "group") {
		m = &memberChange{whole: true} // a whole group without member values has none
	}
	if m != nil {
		cs.addMembers(d.id, m)
	}
}

// compact encodes a full read's object in place of its attributes.
func (cs *changeSet) compact(oc *objChange) {
	if oc.deleted || oc.attrs == nil {
		return
	}
	o := newCopyObject(oc.dn)
	for k, v := range oc.attrs {
		o.set(k, v)
	}
	// The DN is in the encoded object.
	oc.doc, oc.kind, oc.attrs, oc.dn = o.encode(), o.kind(), nil, ""
}

// compactOrStage compacts a full read's object and, with a stager, hands
// an account (the bulk of a domain) over to it, keeping only its key;
// groups and containers, which every account's selection needs, and
// objects deleted since stay.
func (cs *changeSet) compactOrStage(key objectKey, id string, oc *objChange) {
	cs.compact(oc)
	if cs.stage == nil || oc.deleted || oc.doc == nil || oc.kind != kindAccount {
		return
	}
	cs.stage.Add(sources.CopyObject{Kind: oc.kind, ID: id, Doc: oc.doc}, oc.inStore)
	delete(cs.objs, id)
	cs.staged[key] = struct{}{}
}

// stopStaging waits for what a full read's stager is writing, so that a
// read that gives up leaves nothing in flight. A nil change set has
// nothing to stop.
func (cs *changeSet) stopStaging() {
	if cs != nil {
		cs.stage.Stop()
	}
}

// unstage takes back into oc an account the read staged and meets
// again.
func (cs *changeSet) unstage(key objectKey, id string, oc *objChange) {
	if _, ok := cs.staged[key]; !ok {
		return
	}
	delete(cs.staged, key)
	oc.doc, oc.inStore, _ = cs.stage.Take(id) // on an error, fullDelta reports it
}

// objectKey is an object's id in 16 bytes, for the sets and maps that
// hold one per account (a full read's staged accounts, the selection's
// memberships): its objectGUID's bytes (ids are GUIDString's text), or
// for an id that is no GUID (see objectID) the first 16 bytes of its
// SHA-256, which no GUID meets by chance.
type objectKey [16]byte

func keyOf(id string) objectKey {
	var k objectKey
	if raw, err := GUIDBytes(id); err == nil {
		copy(k[:], raw)
		return k
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:16])
	return k
}

// expand turns a compacted object back into attributes, for an object a
// full read meets again (the rest of a long member list, say).
func (cs *changeSet) expand(oc *objChange) {
	if oc.doc == nil {
		return
	}
	o, err := decodeCopyObject(oc.doc)
	if err != nil {
		panic("ad: an object this read encoded does not decode: " + err.Error()) // a bug here
	}
	oc.attrs, oc.doc = o.attrs, nil
	if oc.dn == "" {
		oc.dn = o.dn
	}
}

func byteStrings(vals [][]byte) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func (cs *changeSet) addMembers(group string, m *memberChange) {
	if cs.full {
		set := cs.members[group]
		if set == nil || m.whole {
			set = map[string]bool{}
			cs.members[group] = set
		}
		for _, id := range m.all {
			set[id] = true
		}
		for _, id := range m.removed {
			delete(set, id)
		}
		for _, id := range m.added {
			set[id] = true
		}
		return
	}
	if m.whole {
		cs.lists[group] = m.all
		for l := range cs.links {
			if l.Group == group {
				delete(cs.links, l)
			}
		}
	}
	for _, id := range m.removed {
		cs.links[sources.CopyLink{Group: group, Member: id}] = false
	}
	for _, id := range m.added {
		cs.links[sources.CopyLink{Group: group, Member: id}] = true
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// problemObject records a problem in the copy, for CopyAccounts to report.
func problemObject(p problem) sources.CopyObject {
	o := newCopyObject(p.entry)
	o.set("reason", [][]byte{[]byte(p.reason)})
	sum := sha256.Sum256([]byte(p.entry + "\x00" + p.reason))
	return sources.CopyObject{Kind: kindProblem, ID: "problem:" + hex.EncodeToString(sum[:16]), Doc: o.encode()}
}

func copyObjectOf(id string, o *copyObject) sources.CopyObject {
	return sources.CopyObject{Kind: o.kind(), ID: id, Doc: o.encode()}
}

// fullDelta is a full read's copy: what it holds, and with a stager
// what it staged (sent to the store first).
func (cs *changeSet) fullDelta() (sources.CopyDelta, error) {
	d := sources.CopyDelta{Full: true}
	if cs.stage != nil {
		n, err := cs.stage.Done()
		if err != nil {
			return d, err
		}
		d.Staged = n
	}
	for _, id := range slices.Sorted(maps.Keys(cs.objs)) {
		oc := cs.objs[id]
		if oc.deleted {
			if oc.inStore {
				d.Deletes = append(d.Deletes, id) // staged, then deleted
			}
			continue
		}
		if oc.doc == nil {
			cs.compact(oc)
		}
		d.Upserts = append(d.Upserts, sources.CopyObject{Kind: oc.kind, ID: id, Doc: oc.doc})
	}
	groups := make([]string, 0, len(cs.members))
	for g := range cs.members {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		if oc := cs.objs[g]; oc == nil || oc.deleted {
			continue // a staged account is no group
		}
		ms := make([]string, 0, len(cs.members[g]))
		for m := range cs.members[g] {
			if oc := cs.objs[m]; oc == nil || !oc.deleted {
				ms = append(ms, m)
			}
		}
		sort.Strings(ms)
		for _, m := range ms {
			d.LinksAdded = append(d.LinksAdded, sources.CopyLink{Group: g, Member: m})
		}
	}
	for _, p := range cs.problems {
		d.Upserts = append(d.Upserts, problemObject(p))
	}
	return d, nil
}

// incrementalDelta turns the changes into a delta against the stored copy,
// reading it as far as the changes need: the stored objects when objects
// changed (a second time when a container moved), the stored links when
// whole member lists came.
//
// An object new to the copy that DirSync sent only in part (a restored
// tombstone: DirSync sends what the restore changed, not the classes and
// names it kept) is read whole through reread.
func (cs *changeSet) incrementalDelta(ctx context.Context, copies sources.CopyStore, customer string, reread func(ctx context.Context, id string) (*dirEntry, bool, error)) (sources.CopyDelta, error) {
	var d sources.CopyDelta
	if cs.empty() {
		return d, nil
	}
	stored := map[string]*copyObject{}
	if len(cs.objs) > 0 {
		for o, err := range copies.CopyObjects(ctx, customer, copySource) {
			if err != nil {
				return d, fmt.Errorf("read the local copy: %w", err)
			}
			if _, ok := cs.objs[o.ID]; !ok {
				continue
			}
			obj, err := decodeCopyObject(o.Doc)
			if err != nil {
				obj = newCopyObject("") // unreadable: the change replaces it
			}
			stored[o.ID] = obj
		}
	}
	if reread != nil {
		for _, id := range cs.order {
			oc := cs.objs[id]
			_, had := stored[id]
			if oc.deleted || oc.whole || (had && !oc.returned) || len(oc.attrs["objectClass"]) > 0 {
				continue
			}
			d, gone, err := reread(ctx, id)
			switch {
			case err != nil:
				return sources.CopyDelta{}, err
			case gone:
				d = &dirEntry{id: id, deleted: true}
			case d == nil:
				continue // cannot be asked for: keep what came
			}
			returned := oc.returned
			cs.add(*d, true)
			cs.objs[id].returned = returned || cs.objs[id].returned
		}
	}
	renames := map[string]string{} // old DN key -> new DN
	gone := map[string]bool{}
	for _, id := range cs.order {
		oc := cs.objs[id]
		old, had := stored[id]
		if oc.deleted {
			if had {
				d.Deletes = append(d.Deletes, id)
			}
			gone[id] = true
			continue
		}
		o := newCopyObject(oc.dn)
		if had && !oc.whole && !oc.returned {
			for k, v := range old.attrs {
				o.attrs[k] = v
			}
			if o.dn == "" {
				o.dn = old.dn
			}
		}
		for k, v := range oc.attrs {
			o.set(k, v)
		}
		if oc.returned && had {
			d.Deletes = append(d.Deletes, id) // its old links went with it
		}
		if had && old.dn != "" && dnKey(old.dn) != dnKey(o.dn) && o.kind() == kindContainer {
			renames[dnKey(old.dn)] = o.dn
		}
		d.Upserts = append(d.Upserts, copyObjectOf(id, o))
	}
	if len(renames) > 0 {
		moved, err := cs.movedBelow(ctx, copies, customer, renames)
		if err != nil {
			return d, err
		}
		d.Upserts = append(d.Upserts, moved...)
	}
	if err := cs.diffLists(ctx, copies, customer); err != nil {
		return d, err
	}
	links := make([]sources.CopyLink, 0, len(cs.links))
	for l := range cs.links {
		if !gone[l.Group] && !gone[l.Member] {
			links = append(links, l)
		}
	}
	sort.Slice(links, func(i, j int) bool {
		if links[i].Group != links[j].Group {
			return links[i].Group < links[j].Group
		}
		return links[i].Member < links[j].Member
	})
	for _, l := range links {
		if cs.links[l] {
			d.LinksAdded = append(d.LinksAdded, l)
		} else {
			d.LinksRemoved = append(d.LinksRemoved, l)
		}
	}
	for _, p := range cs.problems {
		d.Upserts = append(d.Upserts, problemObject(p))
	}
	return d, nil
}

// movedBelow gives the stored objects below a renamed or moved container
// their new DNs (the DC reports only the container).
func (cs *changeSet) movedBelow(ctx context.Context, copies sources.CopyStore, customer string, renames map[string]string) ([]sources.CopyObject, error) {
	var out []sources.CopyObject
	for o, err := range copies.CopyObjects(ctx, customer, copySource) {
		if err != nil {
			return nil, fmt.Errorf("read the local copy: %w", err)
		}
		if _, changed := cs.objs[o.ID]; changed || o.Kind == kindProblem {
			continue
		}
		obj, err := decodeCopyObject(o.Doc)
		if err != nil {
			continue
		}
		if dn, ok := movedDN(obj.dn, renames); ok {
			obj.dn = dn
			out = append(out, copyObjectOf(o.ID, obj))
		}
	}
	return out, nil
}

// movedDN is dn after the renames (old container DN key -> new DN), the
// deepest renamed container deciding.
func movedDN(dn string, renames map[string]string) (string, bool) {
	key := dnKey(dn)
	best := ""
	for old := range renames {
		if strings.HasSuffix(key, ","+old) && len(old) > len(best) {
			best = old
		}
	}
	if best == "" {
		return "", false
	}
	t := strings.TrimSpace(dn)
	if len(t) != len(key) { // lower-casing changed the length: leave it
		return "", false
	}
	return t[:len(key)-len(best)] + renames[best], true
}

// diffLists turns whole member lists into link changes against the stored
// links of those groups.
func (cs *changeSet) diffLists(ctx context.Context, copies sources.CopyStore, customer string) error {
	if len(cs.lists) == 0 {
		return nil
	}
	storedMembers := map[string]map[string]bool{}
	for l, err := range copies.CopyLinks(ctx, customer, copySource) {
		if err != nil {
			return fmt.Errorf("read the local copy's memberships: %w", err)
		}
		if oc := cs.objs[l.Group]; oc != nil && oc.returned {
			continue // its stored links are deleted with it
		}
		if _, ok := cs.lists[l.Group]; ok {
			if storedMembers[l.Group] == nil {
				storedMembers[l.Group] = map[string]bool{}
			}
			storedMembers[l.Group][l.Member] = true
		}
	}
	for g, list := range cs.lists {
		now := map[string]bool{}
		for _, m := range list {
			now[m] = true
			if !storedMembers[g][m] {
				cs.links[sources.CopyLink{Group: g, Member: m}] = true
			}
		}
		for m := range storedMembers[g] {
			if !now[m] {
				cs.links[sources.CopyLink{Group: g, Member: m}] = false
			}
		}
	}
	return nil
}

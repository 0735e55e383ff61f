// Package sourcestest holds test doubles for the sources package: an
// in-memory CopyStore with the same transaction semantics as the store's.
package sourcestest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/msp-tools/autoimport/sources"
)

// Copies is an in-memory sources.CopyStore. FailApply, when set, makes
// the next ApplyCopy fail without changing anything, as a crash before
// the commit would.
type Copies struct {
	mu        sync.Mutex
	copies    map[string]*memCopy
	FailApply error
	// Applied counts the deltas applied, Staged the objects staged.
	Applied, Staged int
}

type memCopy struct {
	state   sources.SyncState
	objects map[string]sources.CopyObject
	links   map[sources.CopyLink]bool
	// staged is what a full read staged and has not applied.
	staged map[string]sources.CopyObject
}

// ErrCrash is a convenient FailApply value.
var ErrCrash = errors.New("crashed before the commit")

func key(customer, source string) string { return customer + "\x00" + source }

func (c *Copies) get(customer, source string) *memCopy {
	if c.copies == nil {
		c.copies = map[string]*memCopy{}
	}
	m := c.copies[key(customer, source)]
	if m == nil {
		m = &memCopy{objects: map[string]sources.CopyObject{}, links: map[sources.CopyLink]bool{}, staged: map[string]sources.CopyObject{}}
		c.copies[key(customer, source)] = m
	}
	return m
}

// CopyState implements sources.CopyStore.
func (c *Copies) CopyState(_ context.Context, customer, source string) (sources.SyncState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.get(customer, source).state, nil
}

// CopyObjects implements sources.CopyStore, in id order.
func (c *Copies) CopyObjects(_ context.Context, customer, source string, kinds ...string) iter.Seq2[sources.CopyObject, error] {
	c.mu.Lock()
	m := c.get(customer, source)
	out := make([]sources.CopyObject, 0, len(m.objects))
	for _, o := range m.objects {
		if len(kinds) == 0 || slices.Contains(kinds, o.Kind) {
			out = append(out, o)
		}
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return func(yield func(sources.CopyObject, error) bool) {
		for _, o := range out {
			if !yield(o, nil) {
				return
			}
		}
	}
}

// CopyLinks implements sources.CopyStore, in (group, member) order.
func (c *Copies) CopyLinks(_ context.Context, customer, source string) iter.Seq2[sources.CopyLink, error] {
	c.mu.Lock()
	m := c.get(customer, source)
	out := make([]sources.CopyLink, 0, len(m.links))
	for l := range m.links {
		out = append(out, l)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Member < out[j].Member
	})
	return func(yield func(sources.CopyLink, error) bool) {
		for _, l := range out {
			if !yield(l, nil) {
				return
			}
		}
	}
}

// CopyHolds implements sources.CopyStore.
func (c *Copies) CopyHolds(_ context.Context, customer, source string, ids []string) (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.get(customer, source)
	held := map[string]bool{}
	for _, id := range ids {
		if _, ok := m.objects[id]; ok {
			held[id] = true
		}
	}
	return held, nil
}

// ApplyCopy implements sources.CopyStore: all of the delta or nothing.
func (c *Copies) ApplyCopy(_ context.Context, customer, source string, d sources.CopyDelta) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.FailApply; err != nil {
		c.FailApply = nil
		return err
	}
	m := c.get(customer, source)
	if d.Staged > 0 && len(m.staged) != d.Staged {
		return fmt.Errorf("the read staged %d objects, the store holds %d of them", d.Staged, len(m.staged))
	}
	if d.Full {
		m.objects = map[string]sources.CopyObject{}
		m.links = map[sources.CopyLink]bool{}
		if d.Staged > 0 {
			m.objects, m.staged = m.staged, map[string]sources.CopyObject{}
		}
	}
	for _, id := range d.Deletes {
		delete(m.objects, id)
		for l := range m.links {
			if l.Group == id || l.Member == id {
				delete(m.links, l)
			}
		}
	}
	for _, o := range d.Upserts {
		m.objects[o.ID] = o
	}
	for _, l := range d.LinksRemoved {
		delete(m.links, l)
	}
	for _, l := range d.LinksAdded {
		m.links[l] = true
	}
	version := m.state.Version
	if !d.Empty() {
		version++
	}
	m.state = d.State
	m.state.Version = version
	c.Applied++
	return nil
}

// ClearStagedCopy implements sources.CopyStager.
func (c *Copies) ClearStagedCopy(_ context.Context, customer, source string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get(customer, source).staged = map[string]sources.CopyObject{}
	return nil
}

// StageCopy implements sources.CopyStager. Staged counts the objects
// staged.
func (c *Copies) StageCopy(_ context.Context, customer, source string, objs []sources.CopyObject) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.get(customer, source)
	for _, o := range objs {
		m.staged[o.ID] = o
	}
	c.Staged += len(objs)
	return nil
}

// StagedCopyObject implements sources.CopyStager.
func (c *Copies) StagedCopyObject(_ context.Context, customer, source, id string) (sources.CopyObject, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.get(customer, source).staged[id]
	return o, ok, nil
}

var _ sources.CopyStager = (*Copies)(nil)

// Counting is a CopyStore that counts the objects its CopyObjects
// yields: what a reader fetched of a copy.
type Counting struct {
	sources.CopyStore
	objects atomic.Int64
}

// CopyObjects implements sources.CopyStore, counting.
func (c *Counting) CopyObjects(ctx context.Context, customer, source string, kinds ...string) iter.Seq2[sources.CopyObject, error] {
	return func(yield func(sources.CopyObject, error) bool) {
		for o, err := range c.CopyStore.CopyObjects(ctx, customer, source, kinds...) {
			c.objects.Add(1)
			if !yield(o, err) {
				return
			}
		}
	}
}

// Objects is how many objects CopyObjects yielded; Reset starts again.
func (c *Counting) Objects() int64 { return c.objects.Load() }
func (c *Counting) Reset()         { c.objects.Store(0) }

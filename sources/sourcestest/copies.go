// Package sourcestest holds test doubles for the sources package: an
// in-memory CopyStore with the same transaction semantics as the store's.
package sourcestest

import (
	"context"
	"errors"
	"iter"
	"sort"
	"sync"

	"github.com/msp-tools/autoimport/sources"
)

// Copies is an in-memory sources.CopyStore. FailApply, when set, makes
// the next ApplyCopy fail without changing anything, as a crash before
// the commit would.
type Copies struct {
	mu        sync.Mutex
	copies    map[string]*memCopy
	FailApply error
	// Applied counts the deltas applied.
	Applied int
}

type memCopy struct {
	state   sources.SyncState
	objects map[string]sources.CopyObject
	links   map[sources.CopyLink]bool
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
		m = &memCopy{objects: map[string]sources.CopyObject{}, links: map[sources.CopyLink]bool{}}
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
func (c *Copies) CopyObjects(_ context.Context, customer, source string) iter.Seq2[sources.CopyObject, error] {
	c.mu.Lock()
	m := c.get(customer, source)
	out := make([]sources.CopyObject, 0, len(m.objects))
	for _, o := range m.objects {
		out = append(out, o)
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

// ApplyCopy implements sources.CopyStore: all of the delta or nothing.
func (c *Copies) ApplyCopy(_ context.Context, customer, source string, d sources.CopyDelta) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.FailApply; err != nil {
		c.FailApply = nil
		return err
	}
	m := c.get(customer, source)
	if d.Full {
		m.objects = map[string]sources.CopyObject{}
		m.links = map[sources.CopyLink]bool{}
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
	m.state = d.State
	c.Applied++
	return nil
}

var _ sources.CopyStore = (*Copies)(nil)

package sources_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// failingStager is a stager whose StageCopy or StagedCopyObject fails.
type failingStager struct {
	*sourcestest.Copies
	stageErr, takeErr error
}

func (f failingStager) StageCopy(ctx context.Context, customer, source string, objs []sources.CopyObject) error {
	if f.stageErr != nil {
		return f.stageErr
	}
	return f.Copies.StageCopy(ctx, customer, source, objs)
}

func (f failingStager) StagedCopyObject(ctx context.Context, customer, source, id string) (sources.CopyObject, bool, error) {
	if f.takeErr != nil {
		return sources.CopyObject{}, false, f.takeErr
	}
	return f.Copies.StagedCopyObject(ctx, customer, source, id)
}

func obj(id string) sources.CopyObject {
	return sources.CopyObject{Kind: "user", ID: id, Doc: []byte("doc of " + id)}
}

// Staging sends its objects a batch at a time, counts each distinct
// object the store holds once, gives back an object met again from the
// batch not yet sent or from the store, and drops what an earlier read
// staged and never applied.
func TestStaging(t *testing.T) {
	ctx := context.Background()
	copies := &sourcestest.Copies{}
	if err := copies.StageCopy(ctx, "acme", "ad", []sources.CopyObject{obj("left-over")}); err != nil {
		t.Fatal(err)
	}
	s, err := sources.NewStaging(ctx, copies, "acme", "ad", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := copies.StagedCopyObject(ctx, "acme", "ad", "left-over"); found {
		t.Fatal("what an earlier read staged is still staged")
	}
	in := map[string]bool{} // what Take said of each object
	add := func(id string) { s.Add(obj(id), in[id]) }
	take := func(id string) string {
		t.Helper()
		doc, inStore, ok := s.Take(id)
		if !ok {
			t.Fatalf("Take(%s) failed", id)
		}
		in[id] = inStore
		return string(doc)
	}
	add("a")
	add("b") // the batch of 2 is sent
	add("c")
	if doc := take("c"); doc != "doc of c" || in["c"] {
		t.Fatalf("taking back an object of the pending batch: %q, said to be in the store: %v", doc, in["c"])
	}
	if doc := take("a"); doc != "doc of a" || !in["a"] {
		t.Fatalf("taking back a staged object: %q, said to be in the store: %v", doc, in["a"])
	}
	add("a") // met again and staged again: still one object
	if doc := take("a"); doc != "doc of a" || !in["a"] {
		t.Fatalf("taking back, from the pending batch, an object whose earlier version is in the store: %q, said to be in the store: %v", doc, in["a"])
	}
	add("a")
	add("c")
	add("d")
	n, err := s.Done()
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("Done counts %d objects, want 4 (a, b, c, d)", n)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, found, _ := copies.StagedCopyObject(ctx, "acme", "ad", id); !found {
			t.Errorf("%s is not staged", id)
		}
	}
}

// heldStager is a stager whose StageCopy waits to be let go.
type heldStager struct {
	*sourcestest.Copies
	writing chan string // the first id of each batch it starts writing
	letGo   chan struct{}
}

func (h heldStager) StageCopy(ctx context.Context, customer, source string, objs []sources.CopyObject) error {
	h.writing <- objs[0].ID
	<-h.letGo
	return h.Copies.StageCopy(ctx, customer, source, objs)
}

// A batch is written while the read goes on, one batch at a time: the
// next batch, taking an object back from the store, Done and Stop each
// wait for the batch being written.
func TestStagingWritesWhileTheReadGoesOn(t *testing.T) {
	ctx := context.Background()
	h := heldStager{Copies: &sourcestest.Copies{}, writing: make(chan string, 4), letGo: make(chan struct{})}
	s, err := sources.NewStaging(ctx, h, "acme", "ad", 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(obj("a"), false) // returns while a is being written
	if id := <-h.writing; id != "a" {
		t.Fatalf("the store is writing %s, want a", id)
	}
	waits := func(name string, do func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { do(); close(done) }()
		select {
		case <-done:
			t.Fatalf("%s returned while a batch was being written", name)
		case <-time.After(50 * time.Millisecond):
		}
		h.letGo <- struct{}{}
		<-done
	}
	waits("the next batch", func() { s.Add(obj("b"), false) })
	<-h.writing // b
	waits("taking back a written object", func() {
		if doc, inStore, ok := s.Take("a"); !ok || !inStore || string(doc) != "doc of a" {
			t.Errorf("Take(a) = %q, %v, %v", doc, inStore, ok)
		}
	})
	s.Add(obj("c"), false)
	<-h.writing // c
	waits("Stop", s.Stop)
	s.Add(obj("d"), false)
	<-h.writing // d
	var n int
	waits("Done", func() { n, err = s.Done() })
	if err != nil || n != 4 {
		t.Fatalf("Done = %d, %v; want 4 objects", n, err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, found, _ := h.StagedCopyObject(ctx, "acme", "ad", id); !found {
			t.Errorf("%s is not staged", id)
		}
	}
}

func TestStagingErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		st   failingStager
		do   func(s *sources.Staging)
		want string
	}{
		{"a batch the store refuses", failingStager{Copies: &sourcestest.Copies{}, stageErr: errors.New("disk full")},
			func(s *sources.Staging) { s.Add(obj("a"), false) }, "disk full"},
		{"an object the store cannot give back", failingStager{Copies: &sourcestest.Copies{}, takeErr: errors.New("connection reset")},
			func(s *sources.Staging) {
				s.Add(obj("a"), false)
				if _, _, ok := s.Take("a"); ok {
					t.Error("Take succeeded although the store failed")
				}
			}, "connection reset"},
		{"an object the store lost", failingStager{Copies: &sourcestest.Copies{}},
			func(s *sources.Staging) {
				if _, _, ok := s.Take("never-staged"); ok {
					t.Error("Take gave back an object never staged")
				}
			}, "missing from the store's staging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sources.NewStaging(ctx, tc.st, "acme", "ad", 1)
			if err != nil {
				t.Fatal(err)
			}
			tc.do(s)
			s.Add(obj("later"), false) // ignored after the first error
			if _, err := s.Done(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Done: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

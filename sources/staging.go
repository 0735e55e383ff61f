package sources

import (
	"context"
	"fmt"
)

// Staging hands a full read's objects to a CopyStager in batches as the
// read goes, so that the read holds only the objects it must (see
// CopyStager). A batch is written while the read goes on decoding the
// next one; at most one batch is being written at a time. It counts the
// distinct objects the store's staging holds, for CopyDelta.Staged. Its
// first error ends it; Done reports it.
type Staging struct {
	ctx      context.Context
	store    CopyStager
	customer string
	source   string
	batch    int
	// pending are the objects not yet sent, and for each whether the
	// store's staging already holds a version of it (counted then).
	pending   []CopyObject
	pendingIn []bool
	// writing, while a batch is being written, gives its outcome.
	writing chan error
	inStore int
	err     error
}

// StageBatch is how many objects a reader's Staging sends to the store
// at once.
const StageBatch = 500

// StagingFor starts staging a full read of customer's source into copies
// when they can stage (a CopyStager), StageBatch objects at a time, and
// returns nil when they cannot: the read then holds what it reads.
func StagingFor(ctx context.Context, copies CopyStore, customer, source string) (*Staging, error) {
	st, ok := copies.(CopyStager)
	if !ok {
		return nil, nil
	}
	return NewStaging(ctx, st, customer, source, StageBatch)
}

// NewStaging starts staging a full read of customer's source into
// store: what an earlier full read staged and never applied is dropped
// first. Objects go to the store batch at a time.
func NewStaging(ctx context.Context, store CopyStager, customer, source string, batch int) (*Staging, error) {
	if err := store.ClearStagedCopy(ctx, customer, source); err != nil {
		return nil, err
	}
	return &Staging{ctx: ctx, store: store, customer: customer, source: source, batch: batch}, nil
}

// Add stages o. inStore says that the store's staging already holds a
// version of o (Take said so when the read met o again), which is then
// not counted again. Once o's batch is written, nothing of o is held
// here.
func (s *Staging) Add(o CopyObject, inStore bool) {
	if s.err != nil {
		return
	}
	s.pending = append(s.pending, o)
	s.pendingIn = append(s.pendingIn, inStore)
	if len(s.pending) >= s.batch {
		s.Flush()
	}
}

// Take returns the staged document of an object the read meets again,
// from the batch not yet sent or, once the batch being written is, from
// the store, and forgets it in the batch. inStore says that the store's
// staging holds a version of it, so that a read that then finds it
// deleted deletes it from the copy. ok is false after an error.
func (s *Staging) Take(id string) (doc []byte, inStore, ok bool) {
	for i, p := range s.pending {
		if p.ID == id {
			inStore = s.pendingIn[i]
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			s.pendingIn = append(s.pendingIn[:i], s.pendingIn[i+1:]...)
			return p.Doc, inStore, true
		}
	}
	if s.wait(); s.err != nil {
		return nil, false, false
	}
	o, found, err := s.store.StagedCopyObject(s.ctx, s.customer, s.source, id)
	switch {
	case err != nil:
		s.err = err
	case !found:
		s.err = fmt.Errorf("object %s, staged by this read, is missing from the store's staging", id)
	default:
		return o.Doc, true, true
	}
	return nil, false, false
}

// Flush hands the pending objects to the store, once the batch before
// them is written, and returns while they are written.
func (s *Staging) Flush() {
	if s.wait(); s.err != nil || len(s.pending) == 0 {
		return
	}
	batch := s.pending
	for _, in := range s.pendingIn {
		if !in {
			s.inStore++
		}
	}
	s.pending, s.pendingIn = make([]CopyObject, 0, s.batch), s.pendingIn[:0]
	s.writing = make(chan error, 1)
	go func(done chan<- error) {
		done <- s.store.StageCopy(s.ctx, s.customer, s.source, batch)
	}(s.writing)
}

// wait waits for the batch being written, if any, and keeps its error.
func (s *Staging) wait() {
	if s.writing == nil {
		return
	}
	if err := <-s.writing; err != nil && s.err == nil {
		s.err = err
	}
	s.writing = nil
}

// Stop waits for the batch being written, if any: a read that gives up
// calls it before anything else (a new full read's NewStaging above all)
// touches the staging. A nil Staging stops at once.
func (s *Staging) Stop() {
	if s != nil {
		s.wait()
	}
}

// Done writes what is pending, waits for it, and returns how many
// distinct objects the store's staging holds (CopyDelta.Staged), or the
// first error.
func (s *Staging) Done() (int, error) {
	s.Flush()
	if s.wait(); s.err != nil {
		return 0, fmt.Errorf("stage what the read read: %w", s.err)
	}
	return s.inStore, nil
}

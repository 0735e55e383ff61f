package sourcestest

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/msp-tools/autoimport/sources"
)

// Reading is what CheckFullTurns needs of a reader's test: Read reads
// Customer's directory into copies, where it keeps it as Source; Refuse makes the directory refuse the
// position the next read resumes from (another DC, an expired delta
// link), so that read falls back to a full one; Requests counts the
// requests the directory has answered.
type Reading struct {
	Customer, Source string
	Read             func(ctx context.Context, copies sources.CopyStore, opt sources.ReadOptions) (sources.ReadReport, error)
	Refuse           func()
	Requests         func() int64
}

// CheckFullTurns checks that a reader takes its turn among
// ReadOptions.FullReads as the sources package says: a full read waits
// for a turn before it asks the directory for anything, holds it until
// its copy is written and gives it back; an incremental read needs none;
// a read that falls back to full waits for one then, and writes nothing
// until it has it.
func CheckFullTurns(t *testing.T, r Reading) {
	t.Helper()
	ctx := context.Background()
	turns := semaphore.NewWeighted(1)
	copies := &turnCopies{Copies: &Copies{}, turns: turns}
	opt := sources.ReadOptions{FullReads: turns}
	within := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return c
	}

	if err := turns.Acquire(ctx, 1); err != nil { // another customer's full read
		t.Fatal(err)
	}
	before := r.Requests()
	if _, err := r.Read(within(50*time.Millisecond), copies, opt); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a first read while every turn is taken: %v, want it to wait for one until its context ends", err)
	}
	if n := r.Requests() - before; n != 0 || copies.Applied != 0 {
		t.Fatalf("waiting for its turn, the read made %d requests and wrote its copy %d times, want none", n, copies.Applied)
	}
	turns.Release(1)

	rep, err := r.Read(within(time.Minute), copies, opt)
	if err != nil || rep.Mode != sources.ReadFull {
		t.Fatalf("first read with a free turn: %+v %v, want a full read", rep, err)
	}
	if copies.fullWithoutTurn != 0 {
		t.Errorf("a full read wrote its copy without holding its turn")
	}
	if !turns.TryAcquire(1) {
		t.Fatal("the full read kept its turn")
	}

	// Every turn taken again: an incremental read does not wait.
	if rep, err := r.Read(within(time.Minute), copies, opt); err != nil || rep.Mode != sources.ReadIncremental {
		t.Fatalf("incremental read while every turn is taken: %+v %v", rep, err)
	}
	state, _ := copies.CopyState(ctx, r.Customer, r.Source)
	r.Refuse()
	applied := copies.Applied
	if _, err := r.Read(within(200*time.Millisecond), copies, opt); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read that must fall back to full while every turn is taken: %v, want it to wait", err)
	}
	if after, _ := copies.CopyState(ctx, r.Customer, r.Source); copies.Applied != applied || string(after.Token) != string(state.Token) {
		t.Fatal("the read that waited for its turn wrote its copy")
	}
	turns.Release(1)
	rep, err = r.Read(within(time.Minute), copies, opt)
	if err != nil || rep.Mode != sources.ReadFull || rep.Reason == "" {
		t.Fatalf("the read after its turn came: %+v %v, want a full read saying why", rep, err)
	}
	if copies.fullWithoutTurn != 0 {
		t.Errorf("the read that fell back to full wrote its copy without holding its turn")
	}
	if !turns.TryAcquire(1) {
		t.Fatal("the read that fell back to full kept its turn")
	}
}

// turnCopies counts the full copies written without holding a turn.
type turnCopies struct {
	*Copies
	turns           *semaphore.Weighted
	fullWithoutTurn int
}

func (c *turnCopies) ApplyCopy(ctx context.Context, customer, source string, d sources.CopyDelta) error {
	if d.Full && c.turns.TryAcquire(1) {
		c.turns.Release(1)
		c.fullWithoutTurn++
	}
	return c.Copies.ApplyCopy(ctx, customer, source, d)
}

package sources

import (
	"context"
	"fmt"
	"iter"
	"time"

	"golang.org/x/sync/semaphore"
)

// A directory read incrementally (AD DirSync or uSNChanged, Graph delta)
// keeps a local copy of what it read: the objects the selection is
// computed from and the direct membership links between them, with the
// position (token, cookie) the next read resumes from. Each reader
// serialises its own objects; the store keeps them opaque.

// CopyObject is one object of a local copy (a user, a group, a role), as
// its reader serialised it.
type CopyObject struct {
	// Kind is the reader's own name for what the object is ("user",
	// "group", "role", ...).
	Kind string
	// ID is the object's stable identity (objectGUID, Graph object id).
	ID string
	// Doc is the reader's serialisation of the object.
	Doc []byte
}

// CopyLink is one direct membership: Member is a direct member of Group
// (a group or a role), both by ID.
type CopyLink struct {
	Group, Member string
}

// SyncState is where an incremental read resumes.
type SyncState struct {
	// Token is the reader's own position (Graph delta links, a DirSync
	// cookie and the DC it is bound to, a highest USN with the DC's
	// invocationId), opaque to the store.
	Token []byte
	// FullAt is when the last full, reconciling read finished.
	FullAt time.Time
	// Selection is a digest of the selection the copy was read for; a
	// different one forces a full read.
	Selection string
	// Version counts the writes that changed the copy's objects or links
	// (ApplyCopy of a delta that is not Empty); the store keeps it, a
	// reader's own value is ignored. An unchanged version is an unchanged
	// copy.
	Version int64
}

// Zero reports that there is no state: the next read is full.
func (s SyncState) Zero() bool { return len(s.Token) == 0 }

// CopyDelta is what one read changed in a local copy. Applied in one
// transaction with its State, so a crash before the commit re-reads from
// the old position and never skips a change.
type CopyDelta struct {
	// Full replaces the whole copy with Upserts and LinksAdded (a full,
	// reconciling read: what it did not see is gone).
	Full         bool
	Upserts      []CopyObject
	Deletes      []string // object ids; their links go with them
	LinksAdded   []CopyLink
	LinksRemoved []CopyLink
	State        SyncState
	// Staged, in a full delta, counts the objects the read handed to the
	// store as it went (CopyStager.StageCopy) instead of holding them: the
	// copy becomes those objects and Upserts (an Upsert replacing a staged
	// object of its id), less Deletes.
	Staged int
}

// Changes counts the objects and links a delta changes (a read's report).
func (d CopyDelta) Changes() int {
	return d.Staged + len(d.Upserts) + len(d.Deletes) + len(d.LinksAdded) + len(d.LinksRemoved)
}

// Empty reports a delta that changes nothing but the state.
func (d CopyDelta) Empty() bool {
	return !d.Full && d.Staged == 0 && len(d.Upserts) == 0 && len(d.Deletes) == 0 && len(d.LinksAdded) == 0 && len(d.LinksRemoved) == 0
}

// CopyStore keeps the local copies, per customer and source ("ad",
// "m365"). sql/store implements it on both dialects.
type CopyStore interface {
	// CopyState returns the copy's position; the zero state when there is
	// no copy.
	CopyState(ctx context.Context, customer, source string) (SyncState, error)
	// CopyObjects streams the copy's objects (only those of kinds, when
	// kinds are given), and CopyLinks its links.
	CopyObjects(ctx context.Context, customer, source string, kinds ...string) iter.Seq2[CopyObject, error]
	CopyLinks(ctx context.Context, customer, source string) iter.Seq2[CopyLink, error]
	// CopyHolds says which of ids the copy holds as objects.
	CopyHolds(ctx context.Context, customer, source string, ids []string) (map[string]bool, error)
	// ApplyCopy applies a delta and its state in one transaction.
	ApplyCopy(ctx context.Context, customer, source string, d CopyDelta) error
}

// CopyStager is a CopyStore that can take a full read's objects as the
// read goes, so that a reader never holds a whole directory: staged
// objects are not part of the copy until the read's ApplyCopy (with
// CopyDelta.Staged) swaps them in with its position, in one transaction;
// a read that never gets there (a crash, an error) leaves the copy as it
// was, and the next full read clears what it staged.
type CopyStager interface {
	CopyStore
	// ClearStagedCopy drops whatever an earlier full read staged and
	// never applied.
	ClearStagedCopy(ctx context.Context, customer, source string) error
	// StageCopy adds objects to the staging of the copy (an object of an
	// id staged before replaces it), in a transaction of its own.
	StageCopy(ctx context.Context, customer, source string, objs []CopyObject) error
	// StagedCopyObject returns a staged object, for a read that meets it
	// again.
	StagedCopyObject(ctx context.Context, customer, source, id string) (CopyObject, bool, error)
}

// ReadOptions change how an incremental read starts.
type ReadOptions struct {
	// Full forces a full, reconciling read (run --once --full).
	Full bool
	// FullEvery is the longest time between two full reads (default 7
	// days, below Graph's delta token lifetime).
	FullEvery time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// FullReads, when set, is shared by the reads of a run's customers
	// and limits how many of them read in full at once: a full read takes
	// one of its slots before it asks the directory for
	// everything and gives it back once its copy is written. A full read
	// decodes and writes a whole directory and holds its groups while it
	// does; begun for every customer at once, the reads share the CPU and
	// the store until they all end together, and no customer reaches its
	// vault or PSA before then. Nil: no limit. See FullTurn.
	FullReads *semaphore.Weighted
}

// A FullTurn is one read's turn among ReadOptions.FullReads. Take waits
// for it (once: taking it again does nothing); Release gives it back.
type FullTurn struct {
	slots  *semaphore.Weighted
	held   bool
	waited time.Duration
}

// FullTurn returns the read's turn, not yet taken.
func (opt ReadOptions) FullTurn() *FullTurn { return &FullTurn{slots: opt.FullReads} }

// Take waits for the turn, at once when there is no limit.
func (t *FullTurn) Take(ctx context.Context) error {
	if t.held || t.slots == nil {
		return nil
	}
	start := time.Now()
	err := t.slots.Acquire(ctx, 1)
	t.waited += time.Since(start)
	if err != nil {
		return fmt.Errorf("wait for a turn to read in full: %w", err)
	}
	t.held = true
	return nil
}

// Release gives the turn back, if it was taken.
func (t *FullTurn) Release() {
	if t.held {
		t.slots.Release(1)
		t.held = false
	}
}

// Waited is how long Take waited, in seconds (ReadReport.Waited).
func (t *FullTurn) Waited() float64 { return t.waited.Seconds() }

// Read modes, as a read reports them.
const (
	ReadFull        = "full"
	ReadIncremental = "incremental"
)

// ReadReport says what one read of one customer's source did: full or
// incremental and why, and what it cost.
type ReadReport struct {
	Source Kind   `json:"source"`
	Mode   string `json:"mode"`
	// Reason says why a read was full ("no state", "the delta token
	// expired (syncStateNotFound)", "another DC", "the selection
	// changed", "the last full read is older than 7 days", "asked for");
	// empty for an incremental read.
	Reason string `json:"reason,omitempty"`
	// Requests counts the directory round trips (LDAP searches and pages,
	// Graph requests); Changes the objects and links the read changed.
	Requests int `json:"requests"`
	Changes  int `json:"changes"`
	// Seconds is how long the read took, its copy written, less
	// Waited: how long a full read waited for its turn
	// (ReadOptions.FullReads).
	Seconds float64 `json:"seconds"`
	Waited  float64 `json:"waited_s,omitempty"`
}

// String says how a source was read: "ad incremental, 1 request, 0
// changes" or "m365 full (no state), 12 requests, 530 changes", and how
// long a full read waited for its turn when that was a second or more.
func (r ReadReport) String() string {
	mode := r.Mode
	if r.Reason != "" {
		mode += " (" + r.Reason + ")"
	}
	requests := "requests"
	if r.Requests == 1 {
		requests = "request"
	}
	out := fmt.Sprintf("%s %s, %d %s, %d changes", r.Source, mode, r.Requests, requests, r.Changes)
	if r.Waited >= 1 {
		out += fmt.Sprintf(", after waiting %.0fs for its turn to read in full", r.Waited)
	}
	return out
}

package jobs

import (
	"errors"
	"time"
)

// The states of a rotation. A rotation is recorded pending (the new
// password sealed) before the directory is changed, set once the
// directory took it, and done once a read-back shows the vault holds it.
// failed means the directory refused the only call made for it (the old
// password stands). abandoned is a state of rotations before rolling
// forward existed; none is made any more.
const (
	RotationPending   = "pending"
	RotationSet       = "set"
	RotationDone      = "done"
	RotationFailed    = "failed"
	RotationAbandoned = "abandoned"
)

// PasswordRotation is an administrator account's latest password rotation.
type PasswordRotation struct {
	Customer string `json:"customer"`
	Source   string `json:"source"`
	SourceID string `json:"source_id"`
	// ID names this rotation among the account's rotations; Attempt
	// counts the directory calls made for it, each recorded before it is
	// made.
	ID       string `json:"id"`
	Attempt  int    `json:"attempt"`
	Username string `json:"username"`
	State    string `json:"state"`
	// Sealed is the new password sealed with the secret key, kept while
	// the rotation is open; never printed.
	Sealed string `json:"-"`
	// Target is where the password is set: "Active Directory" or
	// "Microsoft 365".
	Target string `json:"target"`
	// Marker is what the directory said before the change (Graph: the
	// last password change time), for Took.
	Marker           string    `json:"-"`
	VaultIntegration string    `json:"vault_integration,omitempty"`
	VaultRef         string    `json:"vault_ref,omitempty"`
	StartedAt        time.Time `json:"started_at"`
	SetAt            time.Time `json:"set_at,omitzero"`
	DoneAt           time.Time `json:"done_at,omitzero"`
	Error            string    `json:"error,omitempty"`
}

// Open reports a rotation the next pass must finish: pending or set.
func (r PasswordRotation) Open() bool { return r.State == RotationPending || r.State == RotationSet }

// Version is what a state change of r is conditional on.
func (r PasswordRotation) Version() RotationVersion {
	return RotationVersion{ID: r.ID, State: r.State, Attempt: r.Attempt}
}

// RotationVersion is the version of a rotation a writer read: a change is
// made only while the row is still that version.
type RotationVersion struct {
	ID      string
	State   string
	Attempt int
}

var (
	// ErrStale is returned by a conditional write whose row changed since
	// the writer read it: another holder went on with it.
	ErrStale = errors.New("changed by another autoimport since this one read it")
	// ErrLeaseLost is returned by a write made without the customer's
	// lease.
	ErrLeaseLost = errors.New("this autoimport no longer holds the customer's lease")
)

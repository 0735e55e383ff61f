package jobs

import "time"

// The states of a rotation. A rotation is recorded pending (the new
// password sealed) before the directory is changed, set once the
// directory took it, and done once the vault holds it. failed means the
// directory refused it (the old password stands); abandoned means a
// pending rotation the directory never took, found by a later pass.
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
	Username string `json:"username"`
	State    string `json:"state"`
	// Sealed is the new password sealed with the secret key, kept while
	// the rotation is pending or set; never printed.
	Sealed string `json:"-"`
	// Target is where the password is set: "Active Directory" or
	// "Microsoft 365".
	Target string `json:"target"`
	// Marker is what the directory said before the change (Graph: the
	// last password change time), compared after a crash to learn whether
	// the change took.
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

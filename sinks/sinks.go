// Package sinks defines where imported accounts go: a password vault (IT
// Glue, Hudu, the Technician Vault), a PSA (ConnectWise PSA, Autotask,
// HaloPSA) and the welcome email. Each integration lives in its own
// subpackage; the matching rules live here, once.
package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// VaultScope is one customer's place in a vault.
type VaultScope struct {
	// Customer is autoimport's customer id, used in error messages.
	Customer string
	// Container is the customer's id inside the vault: the IT Glue
	// organization id, the Hudu company id, or the customer id itself for
	// the Technician Vault.
	Container string
}

// EntryInfo is what a technician may see of a Technician Vault entry
// without revealing it: everything but the password.
type EntryInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Username string    `json:"username"`
	Category string    `json:"category,omitempty"`
	Notes    string    `json:"notes,omitempty"`
	Created  time.Time `json:"created_at"`
	// HasPassword is false while the entry holds no password yet (the
	// import stores an administrator's entry without one; its first
	// rotation writes it).
	HasPassword bool `json:"has_password"`
}

// VaultEntry is an existing password entry.
type VaultEntry struct {
	// Ref is the integration's id of the entry.
	Ref      string
	Name     string
	Username string
	// Category is the IT Glue password category or Hudu password type name,
	// empty when the entry has none.
	Category string
}

// NewVaultEntry is a password entry to create.
type NewVaultEntry struct {
	Name     string // e.g. "Jane Doe (Active Directory)"
	Username string
	Category string // one of CategoryNames(source)
	Notes    string
	// Password is the initial secret value; autoimport does not know user
	// passwords, so it is usually empty and written back later.
	Password string
}

// Vault stores password entries for customers.
type Vault interface {
	// Name is the integration's name for messages ("IT Glue", "Hudu", ...).
	Name() string
	// Index lists every existing entry of one customer (all pages), once per run.
	Index(ctx context.Context, scope VaultScope) (*VaultIndex, error)
	// Create creates one entry. It is never retried blindly: the caller
	// matches against a fresh index before creating again.
	Create(ctx context.Context, scope VaultScope, e NewVaultEntry) (VaultEntry, error)
}

// ErrNotFound marks a vault entry or PSA contact, asked for by id, that
// does not exist or is one the index leaves out of matching (an archived
// entry; in IT Glue also a personal or restricted one). The error's
// message says which.
var ErrNotFound = errors.New("not found")

// ErrWrongCustomer marks a vault entry or PSA contact, asked for by id,
// that belongs to another organization or company than the customer's.
// The error's message names the one it belongs to.
var ErrWrongCustomer = errors.New("belongs to another customer")

// VaultEntryReader reads one entry by id, for a technician's manual match.
// It is optional: a consumer type-asserts a Vault to it.
type VaultEntryReader interface {
	// Entry returns the entry ref of the scope's container. It fails with
	// an error wrapping ErrNotFound or ErrWrongCustomer as described there.
	Entry(ctx context.Context, scope VaultScope, ref string) (VaultEntry, error)
}

// PasswordWriter writes an account's new password into its vault entry
// and reads it back, for password rotation. It is optional: a consumer
// type-asserts a Vault to it. Both calls refuse an entry that Entry would
// refuse, with the same errors.
type PasswordWriter interface {
	// SetPassword replaces the entry's password. A non-empty notes
	// replaces the entry's note too (such as the placeholder note an
	// import wrote); an empty one leaves the note as it is. It is safe to
	// retry: writing the same value twice leaves the same entry.
	SetPassword(ctx context.Context, scope VaultScope, ref, password, notes string) error
	// Password reads the entry's current password.
	Password(ctx context.Context, scope VaultScope, ref string) (string, error)
}

// PSAScope is one customer's company in a PSA.
type PSAScope struct {
	Customer  string // autoimport's customer id, for messages
	CompanyID string // the company id in the PSA
}

// Contact is an existing PSA contact.
type Contact struct {
	Ref       string
	FirstName string
	LastName  string
	Email     string
}

// NewContact is a contact to create in the customer's company.
type NewContact struct {
	FirstName string
	LastName  string
	Email     string
}

// PSA holds customer contacts.
type PSA interface {
	Name() string
	// Index lists every contact of one customer's company (all pages), once per run.
	Index(ctx context.Context, scope PSAScope) (*ContactIndex, error)
	// Create creates one contact in the customer's company.
	Create(ctx context.Context, scope PSAScope, c NewContact) (Contact, error)
}

// ContactReader reads one contact by id, for a technician's manual match.
// It is optional: a consumer type-asserts a PSA to it.
type ContactReader interface {
	// Contact returns the contact ref, active or not, of the scope's
	// company. It fails with an error wrapping ErrNotFound when there is
	// no such contact, or ErrWrongCustomer when the contact's company is
	// not the scope's (the message names it).
	Contact(ctx context.Context, scope PSAScope, ref string) (Contact, error)
}

// Welcome is one welcome email.
type Welcome struct {
	Customer      string // autoimport's customer id
	CustomerName  string
	To            string // the account's email address
	DisplayName   string
	Username      string
	EnrollmentURL string
	// MessageID is stable per account and customer so that a retried send is
	// recognisable, e.g. "<acme.3f2a...@autoimport>".
	MessageID string
}

// Mailer sends welcome emails.
type Mailer interface {
	// SendWelcome sends one welcome email. A failure says, by what it
	// wraps, whether the message may be sent again:
	//
	//   - ErrUnconfirmed: the message was handed over but never
	//     confirmed; it may have been delivered and must not be resent.
	//   - ErrNotSent: the relay certainly did not accept it; sending it
	//     again later cannot duplicate it. When the error also wraps
	//     ErrRelayUnavailable, the relay rather than this message is why,
	//     and every other message would fail the same way for now.
	//   - anything else: the message was refused for good (for example a
	//     5xx reply to this recipient); sending it again would fail again.
	SendWelcome(ctx context.Context, w Welcome) error
}

// ErrUnconfirmed marks a send whose outcome is unknown.
var ErrUnconfirmed = errors.New("sent but not confirmed by the server")

// ErrNotSent marks a send the relay certainly did not accept: nothing was
// delivered, so the message may be sent again later.
var ErrNotSent = errors.New("not sent; safe to send again later")

// ErrRelayUnavailable marks a send that failed because of the relay, not
// of this message: it could not be reached, refused TLS, the login or the
// sender, or answered with a temporary (4xx) failure. Such a message was
// not sent: ErrRelayUnavailable wraps ErrNotSent.
var ErrRelayUnavailable = fmt.Errorf("the mail relay refused or could not be reached: %w", ErrNotSent)

// WelcomeMessageID is the Message-ID of an account's welcome email: the
// same for the same customer and account, so a resend would be
// recognisable, and different for every other account.
func WelcomeMessageID(customer, account string) string {
	sum := sha256.Sum256([]byte(customer + "\x00" + account))
	return "<welcome." + hex.EncodeToString(sum[:12]) + "@autoimport.invalid>"
}

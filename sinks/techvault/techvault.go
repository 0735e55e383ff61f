// Package techvault is the Technician Vault: the MSP's built-in password
// vault, kept in autoimport's own database. Entries are stored through a
// Store; password values are sealed with the secret key before they reach
// it, so the database never holds a plaintext password.
package techvault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
)

// Entry is one stored Technician Vault entry.
type Entry struct {
	ID       string // random, 16 bytes hex
	Customer string
	Name     string
	Username string
	Category string
	Notes    string
	// Sealed is the password sealed with secret.Key.SealFor for its place
	// (SealedPlace); "" when none.
	Sealed    string
	CreatedAt time.Time
}

// Store keeps Technician Vault entries.
type Store interface {
	TechVaultEntries(ctx context.Context, customer string) ([]Entry, error)
	InsertTechVaultEntry(ctx context.Context, e Entry) error
	// TechVaultEntry returns the customer's entry id. When there is no
	// entry id the error wraps sinks.ErrNotFound; when entry id is another
	// customer's it wraps sinks.ErrWrongCustomer and names that customer.
	TechVaultEntry(ctx context.Context, customer, id string) (Entry, error)
	// UpdateTechVaultEntry replaces the stored name, username, category,
	// notes and sealed value of entry e.ID of customer e.Customer, with the
	// errors of TechVaultEntry when there is no such entry.
	UpdateTechVaultEntry(ctx context.Context, e Entry) error
}

// Vault is the Technician Vault as a sinks.Vault.
type Vault struct {
	store Store
	key   *secret.Key
	// Now is the clock used for CreatedAt; time.Now when nil.
	Now func() time.Time
}

var _ sinks.Vault = (*Vault)(nil)

// New returns the Technician Vault over store. key seals password values;
// it may be nil only as long as no entry is created with a password.
func New(store Store, key *secret.Key) *Vault {
	return &Vault{store: store, key: key}
}

// Name is "Technician Vault".
func (v *Vault) Name() string { return "Technician Vault" }

// customerOf is the customer whose entries a scope addresses: the
// container when set (it is the customer id for this vault), else the
// customer.
func customerOf(scope sinks.VaultScope) string {
	if c := strings.TrimSpace(scope.Container); c != "" {
		return c
	}
	return strings.TrimSpace(scope.Customer)
}

func (v *Vault) errorf(scope sinks.VaultScope, format string, args ...any) error {
	name := scope.Customer
	if name == "" {
		name = scope.Container
	}
	return fmt.Errorf("Technician Vault: customer %s: "+format, append([]any{name}, args...)...)
}

// Index lists every entry of the scope's customer.
func (v *Vault) Index(ctx context.Context, scope sinks.VaultScope) (*sinks.VaultIndex, error) {
	customer := customerOf(scope)
	if customer == "" {
		return nil, errors.New("Technician Vault: no customer given")
	}
	entries, err := v.store.TechVaultEntries(ctx, customer)
	if err != nil {
		return nil, v.errorf(scope, "list entries: %w", err)
	}
	out := make([]sinks.VaultEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, toVaultEntry(e))
	}
	return sinks.NewVaultIndex(out), nil
}

// Create seals the entry's password, if any, and stores the entry.
func (v *Vault) Create(ctx context.Context, scope sinks.VaultScope, ne sinks.NewVaultEntry) (sinks.VaultEntry, error) {
	customer := customerOf(scope)
	if customer == "" {
		return sinks.VaultEntry{}, errors.New("Technician Vault: no customer given")
	}
	if strings.TrimSpace(ne.Name) == "" && strings.TrimSpace(ne.Username) == "" {
		return sinks.VaultEntry{}, v.errorf(scope, "create entry: an entry needs a name or a username")
	}
	for _, f := range []struct{ name, value string }{{"name", ne.Name}, {"username", ne.Username}, {"category", ne.Category}, {"notes", ne.Notes}} {
		if !utf8.ValidString(f.value) {
			return sinks.VaultEntry{}, v.errorf(scope, "create entry %q: %s is not valid UTF-8", strings.ToValidUTF8(ne.Name, "?"), f.name)
		}
	}
	e := Entry{
		Customer: customer,
		Name:     ne.Name,
		Username: ne.Username,
		Category: ne.Category,
		Notes:    ne.Notes,
	}
	id, err := newID()
	if err != nil {
		return sinks.VaultEntry{}, v.errorf(scope, "create entry %q: %w", ne.Name, err)
	}
	e.ID = id
	if ne.Password != "" {
		if v.key == nil {
			return sinks.VaultEntry{}, v.errorf(scope, "create entry %q: AUTOIMPORT_SECRET_KEY is not set, so the password cannot be sealed", ne.Name)
		}
		e.Sealed = v.key.SealFor([]byte(ne.Password), SealedPlace(e.Customer, e.ID))
	}
	if v.Now != nil {
		e.CreatedAt = v.Now().UTC()
	} else {
		e.CreatedAt = time.Now().UTC()
	}
	if err := fence.Check(ctx); err != nil {
		return sinks.VaultEntry{}, v.errorf(scope, "create entry %q: %w", ne.Name, err)
	}
	if err := v.store.InsertTechVaultEntry(ctx, e); err != nil {
		return sinks.VaultEntry{}, v.errorf(scope, "create entry %q: %w", ne.Name, err)
	}
	return toVaultEntry(e), nil
}

func toVaultEntry(e Entry) sinks.VaultEntry {
	return sinks.VaultEntry{Ref: e.ID, Name: e.Name, Username: e.Username, Category: e.Category}
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("no randomness for an entry id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

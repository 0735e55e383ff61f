package techvault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sinks"
)

var (
	_ sinks.VaultEntryReader = (*Vault)(nil)
	_ sinks.PasswordWriter   = (*Vault)(nil)
)

// entry reads the scope customer's entry ref from the store.
func (v *Vault) entry(ctx context.Context, scope sinks.VaultScope, ref, op string) (Entry, error) {
	customer := customerOf(scope)
	if customer == "" {
		return Entry{}, errors.New("Technician Vault: no customer given")
	}
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Entry{}, v.errorf(scope, "%s: no entry id given", op)
	}
	e, err := v.store.TechVaultEntry(ctx, customer, ref)
	if err != nil {
		return Entry{}, v.errorf(scope, "%s %s: %w", op, ref, err)
	}
	return e, nil
}

// Entry reads the customer's entry ref, for a technician's manual match.
// An entry that does not exist is sinks.ErrNotFound; another customer's is
// sinks.ErrWrongCustomer.
func (v *Vault) Entry(ctx context.Context, scope sinks.VaultScope, ref string) (sinks.VaultEntry, error) {
	e, err := v.entry(ctx, scope, ref, "read entry")
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	return toVaultEntry(e), nil
}

// SetPassword seals password with the key and stores it in the customer's
// entry ref, with notes replacing the entry's notes when not empty. The
// database only ever sees the sealed value.
func (v *Vault) SetPassword(ctx context.Context, scope sinks.VaultScope, ref, password, notes string) error {
	if password == "" || !utf8.ValidString(password) || !utf8.ValidString(notes) {
		return v.errorf(scope, "set password of entry %s: the password must be non-empty valid UTF-8, and the notes valid UTF-8", strings.ToValidUTF8(ref, "?"))
	}
	if v.key == nil {
		return v.errorf(scope, "set password of entry %s: AUTOIMPORT_SECRET_KEY is not set, so the password cannot be sealed", ref)
	}
	e, err := v.entry(ctx, scope, ref, "set password of entry")
	if err != nil {
		return err
	}
	e.Sealed = v.key.SealFor([]byte(password), SealedPlace(e.Customer, e.ID))
	if notes != "" {
		e.Notes = notes
	}
	if err := fence.Check(ctx); err != nil {
		return v.errorf(scope, "set password of entry %s: %w", e.ID, err)
	}
	if err := v.store.UpdateTechVaultEntry(ctx, e); err != nil {
		return v.errorf(scope, "set password of entry %s: %w", e.ID, err)
	}
	return nil
}

// Password opens the sealed password of the customer's entry ref; it is
// empty when the entry holds none yet.
func (v *Vault) Password(ctx context.Context, scope sinks.VaultScope, ref string) (string, error) {
	e, err := v.entry(ctx, scope, ref, "read the password of entry")
	if err != nil {
		return "", err
	}
	if e.Sealed == "" {
		return "", nil
	}
	if v.key == nil {
		return "", v.errorf(scope, "read the password of entry %s: AUTOIMPORT_SECRET_KEY is not set, so the password cannot be opened", e.ID)
	}
	pt, err := v.key.OpenFor(e.Sealed, SealedPlace(e.Customer, e.ID))
	if err != nil {
		return "", v.errorf(scope, "read the password of entry %s: %w", e.ID, err)
	}
	return string(pt), nil
}

// SealedPlace is where an entry's sealed password belongs: it opens for
// that customer's entry only, so a sealed value copied into another
// customer's entry, or another entry, does not open there.
func SealedPlace(customer, id string) string {
	return "techvault/" + customer + "/" + id + "/password"
}

// BindSealed seals again for its place every password of the customer's
// entries that was sealed before values were bound to their place, and
// returns how many it sealed again.
func (v *Vault) BindSealed(ctx context.Context, customer string) (int, error) {
	entries, err := v.store.TechVaultEntries(ctx, customer)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.Sealed == "" || secret.Bound(e.Sealed) {
			continue
		}
		pt, err := v.key.Open(e.Sealed)
		if err != nil {
			return n, fmt.Errorf("Technician Vault of customer %s: entry %s: %w", customer, e.ID, err)
		}
		e.Sealed = v.key.SealFor(pt, SealedPlace(e.Customer, e.ID))
		if err := v.store.UpdateTechVaultEntry(ctx, e); err != nil {
			return n, fmt.Errorf("Technician Vault of customer %s: entry %s: %w", customer, e.ID, err)
		}
		n++
	}
	return n, nil
}

package techvault

import (
	"context"
	"errors"

	"github.com/msp-tools/autoimport/sinks"
)

func infoOf(e Entry) sinks.EntryInfo {
	return sinks.EntryInfo{ID: e.ID, Name: e.Name, Username: e.Username, Category: e.Category, Notes: e.Notes, Created: e.CreatedAt, HasPassword: e.Sealed != ""}
}

// List returns the metadata of every entry of a customer, oldest first.
func (v *Vault) List(ctx context.Context, customer string) ([]sinks.EntryInfo, error) {
	if customer == "" {
		return nil, errors.New("Technician Vault: no customer given")
	}
	entries, err := v.store.TechVaultEntries(ctx, customer)
	if err != nil {
		return nil, v.errorf(scopeOf(customer), "list entries: %w", err)
	}
	out := make([]sinks.EntryInfo, len(entries))
	for i, e := range entries {
		out[i] = infoOf(e)
	}
	return out, nil
}

// Info returns the metadata of the customer's entry ref, with the errors
// of Entry.
func (v *Vault) Info(ctx context.Context, customer, ref string) (sinks.EntryInfo, error) {
	e, err := v.entry(ctx, scopeOf(customer), ref, "read entry")
	if err != nil {
		return sinks.EntryInfo{}, err
	}
	return infoOf(e), nil
}

// Reveal opens the password of the customer's entry ref for a technician:
// "" when the entry holds none yet.
func (v *Vault) Reveal(ctx context.Context, customer, ref string) (string, error) {
	return v.Password(ctx, scopeOf(customer), ref)
}

// scopeOf is the scope of a customer's entries.
func scopeOf(customer string) sinks.VaultScope {
	return sinks.VaultScope{Customer: customer, Container: customer}
}

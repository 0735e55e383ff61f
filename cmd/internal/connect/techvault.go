package connect

import (
	"context"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/techvault"
)

// TechVaultReader is the Technician Vault as a technician reads it (vault
// list, show and reveal); nil when the Connector has no store for it.
func (c *Connector) TechVaultReader() jobs.TechVaultReader {
	if c.TechVault == nil {
		return nil
	}
	return techVaultReader{techvault.New(c.TechVault, c.Key)}
}

// techVaultReader adapts the Technician Vault to jobs.TechVaultReader.
type techVaultReader struct{ v *techvault.Vault }

func (r techVaultReader) Name() string { return r.v.Name() }

func (r techVaultReader) Entries(ctx context.Context, customer string) ([]jobs.TechVaultEntry, error) {
	infos, err := r.v.List(ctx, customer)
	if err != nil {
		return nil, err
	}
	out := make([]jobs.TechVaultEntry, len(infos))
	for i, e := range infos {
		out[i] = entryOf(e)
	}
	return out, nil
}

func (r techVaultReader) Entry(ctx context.Context, customer, id string) (jobs.TechVaultEntry, error) {
	e, err := r.v.Info(ctx, customer, id)
	if err != nil {
		return jobs.TechVaultEntry{}, err
	}
	return entryOf(e), nil
}

func (r techVaultReader) Password(ctx context.Context, customer, id string) (string, error) {
	return r.v.Reveal(ctx, customer, id)
}

func entryOf(e techvault.Info) jobs.TechVaultEntry {
	return jobs.TechVaultEntry{ID: e.ID, Name: e.Name, Username: e.Username, Category: e.Category, Notes: e.Notes, Created: e.Created, HasPassword: e.HasPassword}
}

package connect

import (
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/techvault"
)

// TechVaultReader is the Technician Vault as a technician reads it (vault
// list, show and reveal); nil when the Connector has no store for it.
func (c *Connector) TechVaultReader() jobs.TechVaultReader {
	if c.TechVault == nil {
		return nil
	}
	return techvault.New(c.TechVault, c.Key)
}

package connect

import "github.com/msp-tools/autoimport/internal/secret"

// Secrets is how the Connector opens secret references: for what must
// know a credential without connecting, such as the accounts autoimport
// signs in as, which are never rotated.
func (c *Connector) Secrets() *secret.Resolver { return c.secrets() }

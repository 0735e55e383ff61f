package ad

import (
	"context"

	"github.com/go-ldap/ldap/v3"
)

// DialBind connects and binds as the source's bind account, for tests
// that look at the connection itself.
func (s *Source) DialBind(ctx context.Context) (*ldap.Conn, error) { return s.dialBind(ctx) }

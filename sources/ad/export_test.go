package ad

import (
	"context"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// DialBind connects and binds as the source's bind account, for tests
// that look at the connection itself.
func (s *Source) DialBind(ctx context.Context) (*ldap.Conn, error) { return s.dialBind(ctx) }

// IdleConns is how many connections the source keeps idle.
func (s *Source) IdleConns() int {
	s.idle.mu.Lock()
	defer s.idle.mu.Unlock()
	return len(s.idle.conns)
}

// SetIdleFor sets how long connections wait idle until the test ends.
func SetIdleFor(t interface{ Cleanup(func()) }, d time.Duration) {
	old := idleFor
	idleFor = d
	t.Cleanup(func() { idleFor = old })
}

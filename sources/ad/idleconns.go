package ad

import (
	"slices"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// A password change is two short exchanges with the DC — a lookup, then
// the change — and a rotation makes one for each administrator, a few at
// once. Dialling, handshaking and binding for each exchange cost more
// round trips than the exchange itself, so a source keeps the bind
// account's connections that ended cleanly, a few and briefly, for its
// next exchange. An idle connection is closed after idleFor (well within
// a DC's idle limit, 900 s on Windows by default), so a source that is
// dropped leaves nothing open for long; one the DC closed meanwhile is
// noticed when taken, or by the first request on it, which then dials
// again (see session.passwordEntry).
const maxIdle = 4

// idleFor is how long a connection waits idle (a variable for tests).
var idleFor = 30 * time.Second

// idleConns are a source's connections bound as its bind account and
// waiting for their next exchange.
type idleConns struct {
	mu    sync.Mutex
	conns []*idleConn
}

type idleConn struct {
	conn  *ldap.Conn
	timer *time.Timer
}

// take returns the most recently idle connection that is still open, or
// nil.
func (p *idleConns) take() *ldap.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.conns) > 0 {
		ic := p.conns[len(p.conns)-1]
		p.conns = p.conns[:len(p.conns)-1]
		if !ic.timer.Stop() {
			continue // expiring: its timer closes it
		}
		if ic.conn.IsClosing() {
			ic.conn.Close()
			continue
		}
		return ic.conn
	}
	return nil
}

// put keeps conn for the next exchange, or closes it when enough wait.
func (p *idleConns) put(conn *ldap.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) >= maxIdle || conn.IsClosing() {
		conn.Close()
		return
	}
	ic := &idleConn{conn: conn}
	ic.timer = time.AfterFunc(idleFor, func() { p.expire(ic) })
	p.conns = append(p.conns, ic)
}

// expire closes a connection idle for idleFor.
func (p *idleConns) expire(ic *idleConn) {
	p.mu.Lock()
	p.conns = slices.DeleteFunc(p.conns, func(c *idleConn) bool { return c == ic })
	p.mu.Unlock()
	ic.conn.Close()
}

// closeAll closes every idle connection now.
func (p *idleConns) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, ic := range conns {
		if ic.timer.Stop() {
			ic.conn.Close()
		}
	}
}

// CloseIdleConnections closes the connections the source keeps idle
// between password exchanges; one that is in use stays open. A source
// that is done with is best closed so; else its idle connections close
// on their own after a short while.
func (s *Source) CloseIdleConnections() { s.idle.closeAll() }

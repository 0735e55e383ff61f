// Package loopback dials this machine only. autoimport sends credentials
// without TLS in two cases, an http:// API on this host and an SMTP relay
// with tls: none, and both are allowed by the address the connection
// reaches, not by the name it was given: "evil.localhost", or any name,
// may resolve to another machine (DNS, /etc/hosts, a Kubernetes search
// domain), so the name is resolved here, only loopback addresses are
// dialled, and the socket's address is checked again just before it
// connects.
package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrNotLoopback marks a connection refused because its address is not
// this machine.
var ErrNotLoopback = errors.New("not an address of this machine (127.0.0.0/8, ::1)")

// Dialer dials TCP connections to loopback addresses only.
type Dialer struct {
	// Timeout bounds the connection (default 30 s).
	Timeout time.Duration
	// LookupNetIP resolves a host name (default net.DefaultResolver's);
	// tests give names the answers they need.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialContext resolves addr's host, keeps its loopback addresses and
// dials the first that answers. An address that is not loopback, however
// the name resolved, is refused with an error wrapping ErrNotLoopback
// that names the host and what it resolved to; nothing is sent to it.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	var local []netip.Addr
	for _, a := range addrs {
		if a.Unmap().IsLoopback() {
			local = append(local, a.Unmap())
		}
	}
	if len(local) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%s resolves to %v: %w", host, addrs, ErrNotLoopback)}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	nd := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: checkSocketAddress}
	var firstErr error
	for _, a := range local {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func (d *Dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	lookup := d.LookupNetIP
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	addrs, err := lookup(ctx, ipNet, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// checkSocketAddress is the net.Dialer's last word, called with the
// numeric address the socket is about to connect to.
func checkSocketAddress(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("%s: %w", address, ErrNotLoopback)
	}
	return nil
}

// IsLoopbackName reports whether host, as written in configuration, names
// this machine by its form: a loopback IP literal, "localhost" or a name
// under ".localhost". It is the early check of a tenant file; the address
// the connection reaches, which a Dialer checks, is what decides.
func IsLoopbackName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

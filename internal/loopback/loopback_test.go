package loopback

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// names answers lookups from a table, as DNS or /etc/hosts would.
func names(table map[string][]string) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range table[host] {
			out = append(out, netip.MustParseAddr(s))
		}
		if out == nil {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return out, nil
	}
}

// A name is only as local as the address it resolves to: evil.localhost
// resolving to another machine is refused before any connection, and a
// name of any form that resolves to loopback is dialled.
func TestDialsTheAddressNotTheName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &Dialer{LookupNetIP: names(map[string][]string{
		"evil.localhost":  {"10.0.0.5"},
		"mixed.localhost": {"10.0.0.5", "127.0.0.1"},
		"relay.internal":  {"127.0.0.1"},
		"mapped.example":  {"::ffff:10.1.2.3"},
	})}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"evil.localhost", false},
		{"mapped.example", false},
		{"10.255.255.1", false}, // unroutable: refused before connecting, so no wait
		{"192.0.2.1", false},
		{"mixed.localhost", true}, // only its loopback address is dialled
		{"relay.internal", true},
		{"127.0.0.1", true},
	} {
		c, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort(tc.host, port))
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v, want a connection", tc.host, err)
				continue
			}
			c.Close()
			<-accepted
			continue
		}
		if err == nil {
			c.Close()
			t.Errorf("%s: connected, want it refused", tc.host)
			continue
		}
		if !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), tc.host) {
			t.Errorf("%s: %v, want ErrNotLoopback naming the host", tc.host, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("a refused address reached the listener")
	default:
	}
}

// The socket's own address is checked again just before it connects.
func TestCheckSocketAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:25":          true,
		"127.9.9.9:25":          true,
		"[::1]:25":              true,
		"[::ffff:127.0.0.1]:25": true,
		"10.0.0.1:25":           false,
		"[2001:db8::1]:25":      false,
		"[::ffff:10.0.0.1]:25":  false,
	} {
		if err := checkSocketAddress("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("checkSocketAddress(%s) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestIsLoopbackName(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "relay.localhost": true, "127.0.0.1": true, "[::1]": true, "::1": true,
		"127.0.0.1.evil.example": false, "localhost.evil.example": false, "10.0.0.5": false, "smtp.example": false, "": false,
	} {
		if got := IsLoopbackName(host); got != want {
			t.Errorf("IsLoopbackName(%q) = %v, want %v", host, got, want)
		}
	}
}

package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// The scheduler's /healthz and /metrics server bounds how long a client
// may take to send its request, to read the answer and to keep an idle
// connection: 300 idle keep-alive connections used to stay open for good.
func TestStatusServerHasTimeouts(t *testing.T) {
	srv := newStatusServer(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %v, want a bound of at most 2m", name, d)
		}
	}
	// A client that never finishes its headers is cut off.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(statusReadHeaderTimeout + time.Minute))
	_, err = bufio.NewReader(c).ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held a half-sent request after %v", statusReadHeaderTimeout+time.Minute)
	}
}

// By default the server listens on loopback only; a container says
// 0.0.0.0:9090 for its scraper.
func TestStatusServerListensOnLoopbackByDefault(t *testing.T) {
	freshDir(t)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9090" {
		t.Fatalf("AUTOIMPORT_HTTP_ADDR defaults to %q, want 127.0.0.1:9090", c.HTTPAddr)
	}
	if os.Getenv("AUTOIMPORT_HTTP_ADDR") != "" {
		t.Fatal("freshDir left AUTOIMPORT_HTTP_ADDR set")
	}
}

// Package redirecttest stands in for a vendor API that redirects a
// credentialed request to another host: a server that answers with a 307
// to the same path on another origin, and that other origin, which
// records whatever reaches it. A client that follows the redirect hands
// its API key, bearer token or OAuth client secret to the recorder.
package redirecttest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Seen is one request that reached the other origin.
type Seen struct {
	Method, Path string
	Header       http.Header
	Body         string
}

// Server redirects requests to Target, another host and port.
type Server struct {
	// URL is the redirecting server's base URL (http://127.0.0.1:PORT).
	URL string
	// Target is the other origin's base URL (http://127.0.0.2:PORT where
	// the machine allows it, else another port of 127.0.0.1).
	Target string

	mu   sync.Mutex
	seen []Seen
}

// Start starts both servers, closed when the test ends. Requests for
// which redirect returns true (all when it is nil) are answered 307 with
// Location Target plus the request's path and query; the others go to
// next (a fake's handler), when given, else get 404.
func Start(t testing.TB, next http.Handler, redirect func(*http.Request) bool) *Server {
	t.Helper()
	s := &Server{}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.seen = append(s.seen, Seen{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"stolen","token_type":"Bearer","expires_in":3600}`)
	}))
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		other.Listener.Close()
		other.Listener = ln
	}
	other.Start()
	t.Cleanup(other.Close)
	s.Target = other.URL
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirect == nil || redirect(r) {
			w.Header().Set("Location", s.Target+r.URL.RequestURI())
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		if next == nil {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	s.URL = front.URL
	return s
}

// Reached returns the requests that reached Target.
func (s *Server) Reached() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.seen...)
}

// CheckRefused fails the test unless err names the integration and the
// target's host and port, and nothing reached the target. secrets, when
// given, must appear neither in the error nor anywhere else.
func (s *Server) CheckRefused(t testing.TB, err error, integration string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error: the redirect to %s was followed", s.Target)
	}
	host := strings.TrimPrefix(s.Target, "http://")
	for _, want := range []string{integration, host} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(err.Error(), sec) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
	if got := s.Reached(); len(got) > 0 {
		t.Fatalf("%d requests reached the other origin; the first: %s %s %v %q", len(got), got[0].Method, got[0].Path, got[0].Header, got[0].Body)
	}
}

// Forward is a next handler for Start that passes requests on to a fake
// at rawURL, so that only chosen requests are redirected.
func Forward(t testing.TB, rawURL string) http.Handler {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return httputil.NewSingleHostReverseProxy(u)
}

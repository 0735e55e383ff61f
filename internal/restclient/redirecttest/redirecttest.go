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

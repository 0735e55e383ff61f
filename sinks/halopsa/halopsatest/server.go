// Package halopsatest is a fake HaloPSA API for tests, benchmarks and the
// sandbox. It serves the client-credentials token endpoint (with the
// hosted tenant parameter) and the calls autoimport makes — users of a
// client (paged with pageinate/page_size/page_no and record_count, fuzzy
// search, advanced_search), one user by id, user creation, sites and
// clients — and enforces what the real API does: bearer tokens that
// expire, POST bodies that must be JSON arrays, ids that must be integers
// (95.0 is refused), sites that belong to the client. Faults (429 with
// Retry-After, 5xx, malformed bodies, latency) are injected per request
// kind, and every request is counted by kind.
//
// It runs on loopback through net/http/httptest and needs no *testing.T:
//
//	srv := halopsatest.NewServer(halopsatest.Options{})
//	defer srv.Close()
//	srv.AddClient(12, "Acme")
//	srv.Generate(12, 5000, 1)
//	// halopsa.Config{URL: srv.URL, Tenant: srv.Tenant, ClientID: srv.ClientID,
//	//   ClientSecret: srv.ClientSecret, Transport: srv.Client().Transport}
package halopsatest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fakeapi"
)

// Default credentials of a Server.
const (
	DefaultTenant       = "acmemsp"
	DefaultClientID     = "7e1c9a54-2b3d-4f60-9a8b-1c2d3e4f5a6b"
	DefaultClientSecret = "fake-halo-client-secret-value"
)

// Request kinds counted by the server and addressed by faults.
const (
	KindToken       = "token"
	KindListUsers   = "users.list"
	KindCreateUsers = "users.create"
	KindGetUser     = "users.get"
	KindSites       = "sites"
	KindClient      = "client"
	KindOther       = "other"
)

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:8081" for a sandbox
	// (default a free loopback port).
	Addr string
	// Tenant the token endpoint requires as ?tenant= (default
	// DefaultTenant). SelfHosted drops the requirement.
	Tenant     string
	SelfHosted bool
	// ClientID and ClientSecret of the API application.
	ClientID, ClientSecret string
	// TokenLifetime of issued tokens (default 1 h).
	TokenLifetime time.Duration
	// RequireSite refuses a user without site_id instead of putting it on
	// the client's first site.
	RequireSite bool
	// EchoObject answers a create with the saved record as an object
	// instead of an array of records.
	EchoObject bool
	// Latency delays every answer.
	Latency time.Duration
}

// Fault is an injected failure.
type Fault = fakeapi.Fault

// User is a customer contact as the fake stores it.
type User struct {
	ID           int
	ClientID     int
	SiteID       int
	Name         string
	FirstName    string
	Surname      string
	EmailAddress string
	NetworkLogin string
	Inactive     bool
}

type client struct {
	id    int
	name  string
	sites []site
}

type site struct {
	id   int
	name string
}

// Server is a running fake.
type Server struct {
	// URL is the instance root: the resource server is URL+"/api", the
	// authorisation server URL+"/auth".
	URL string
	// The accepted credentials.
	Tenant, ClientID, ClientSecret string

	opts Options
	srv  *httptest.Server

	fakeapi.Traffic // counters, arrivals, rate limit, faults, latency

	mu       sync.Mutex
	clients  map[int]*client
	users    map[int]*User
	nextID   int
	nextSite int
	tokens   map[string]time.Time
}

// NewServer starts a fake on loopback; it panics when it cannot listen on
// Options.Addr (use Start to get the error instead).
func NewServer(o Options) *Server {
	s, err := Start(o)
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a fake on Options.Addr, or on a free loopback port.
func Start(o Options) (*Server, error) {
	if o.Tenant == "" && !o.SelfHosted {
		o.Tenant = DefaultTenant
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	s := &Server{
		Tenant: o.Tenant, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		opts:     o,
		clients:  map[int]*client{},
		users:    map[int]*User{},
		nextID:   100,
		nextSite: 30,
		tokens:   map[string]time.Time{},
	}
	s.SetLatency(o.Latency)
	srv, err := fakeapi.Serve(o.Addr, http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, err
	}
	s.srv = srv
	s.URL = s.srv.URL
	return s, nil
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server (its Transport is what
// halopsa.Config.Transport wants).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AddClient adds a customer client with one site named "Main" and returns
// the site's id.
func (s *Server) AddClient(id int, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addClientLocked(id, name)
}

func (s *Server) addClientLocked(id int, name string) int {
	c := s.clients[id]
	if c == nil {
		c = &client{id: id}
		s.clients[id] = c
	}
	c.name = name
	if len(c.sites) == 0 {
		s.nextSite++
		c.sites = append(c.sites, site{id: s.nextSite, name: "Main"})
	}
	return c.sites[0].id
}

// AddSite adds a site to a client and returns its id.
func (s *Server) AddSite(clientID int, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[clientID]
	if c == nil {
		s.addClientLocked(clientID, fmt.Sprintf("Client %d", clientID))
		c = s.clients[clientID]
	}
	s.nextSite++
	c.sites = append(c.sites, site{id: s.nextSite, name: name})
	return s.nextSite
}

// AddUser stores a user and returns its id; a zero ID is assigned, a zero
// SiteID is the client's first site, an empty Name is "first surname".
func (s *Server) AddUser(u User) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(u)
}

func (s *Server) addLocked(u User) int {
	if u.ID == 0 {
		s.nextID++
		u.ID = s.nextID
	} else if u.ID > s.nextID {
		s.nextID = u.ID
	}
	if c := s.clients[u.ClientID]; c != nil && u.SiteID == 0 && len(c.sites) > 0 {
		u.SiteID = c.sites[0].id
	}
	if u.Name == "" {
		u.Name = strings.TrimSpace(u.FirstName + " " + u.Surname)
	}
	uu := u
	s.users[u.ID] = &uu
	return u.ID
}

// Users returns a client's users by id.
func (s *Server) Users(clientID int) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, u := range s.users {
		if u.ClientID == clientID {
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

var (
	firstNames = []string{"Jane", "John", "Maria", "Ahmed", "Li", "Olga", "Pedro", "Fatima", "Tom", "Aiko", "Noah", "Emma", "Lucas", "Mia", "Omar", "Sara"}
	lastNames  = []string{"Doe", "Smith", "Garcia", "Khan", "Wei", "Ivanova", "Silva", "Haddad", "Brown", "Sato", "Miller", "Jones", "Martin", "Rossi", "Nagy", "Berg"}
)

// Generate adds n deterministic users to a client (created when missing)
// from a seed: emails are unique, about one in twenty repeats an earlier
// user's first name and surname, some have no email and a few are
// inactive. It returns the new ids.
func (s *Server) Generate(clientID, n int, seed uint64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[clientID] == nil {
		s.addClientLocked(clientID, fmt.Sprintf("Client %d", clientID))
	}
	x := seed*6364136223846793005 + 1442695040888963407
	next := func() uint64 { x = x*6364136223846793005 + 1442695040888963407; return x >> 33 }
	ids := make([]int, 0, n)
	var prev []User
	for i := range n {
		r := next()
		u := User{ClientID: clientID, FirstName: firstNames[r%16], Surname: fmt.Sprintf("%s%d", lastNames[(r>>4)%16], i), Inactive: r%97 == 3}
		if len(prev) > 0 && r%20 == 0 {
			p := prev[int(r>>8)%len(prev)]
			u.FirstName, u.Surname = p.FirstName, p.Surname
		}
		if r%50 != 1 {
			u.EmailAddress = fmt.Sprintf("%s.%s.%d.%d@c%d.example", strings.ToLower(u.FirstName), strings.ToLower(u.Surname), seed, i, clientID)
			u.NetworkLogin = strings.ToLower(u.FirstName[:1] + u.Surname)
		}
		u.ID = s.addLocked(u)
		prev = append(prev, u)
		ids = append(ids, u.ID)
	}
	return ids
}

// ExpireTokens makes every token issued so far expired (the API then
// answers 401 until a new token is fetched).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
	}
	s.mu.Unlock()
}

func kindOf(r *http.Request) string {
	p := strings.ToLower(strings.TrimSuffix(r.URL.Path, "/"))
	switch {
	case p == "/auth/token":
		return KindToken
	case p == "/api/users" && r.Method == http.MethodPost:
		return KindCreateUsers
	case p == "/api/users":
		return KindListUsers
	case strings.HasPrefix(p, "/api/users/") && r.Method == http.MethodGet:
		return KindGetUser
	case p == "/api/site":
		return KindSites
	case strings.HasPrefix(p, "/api/client/"):
		return KindClient
	}
	return KindOther
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	kind := kindOf(r)
	admit := s.Admit
	if kind == KindToken {
		admit = s.AdmitExact // a fault of any kind leaves the token alone
	}
	f, lat, _ := admit(kind)
	if f != nil {
		lat += f.Latency
	}
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f != nil && (f.Status != 0 || f.Malformed) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Malformed {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(max(f.Status, http.StatusOK))
			_, _ = w.Write([]byte(`{"record_count":3,"users":[{"id":10`))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(f.Status)
		_, _ = fmt.Fprintf(w, "%d %s", f.Status, http.StatusText(f.Status))
		return
	}
	switch kind {
	case KindToken:
		s.token(w, r)
		return
	case KindOther:
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	switch kind {
	case KindListUsers:
		s.listUsers(w, r)
	case KindCreateUsers:
		s.createUsers(w, r)
	case KindGetUser:
		s.getUser(w, r)
	case KindSites:
		s.listSites(w, r)
	case KindClient:
		s.getClient(w, r)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "invalid_request", "error_description": "POST required"})
		return
	}
	if !s.opts.SelfHosted && r.URL.Query().Get("tenant") != s.Tenant {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "Invalid or missing tenant"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "form body required"})
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	case f.Get("client_id") != s.ClientID || f.Get("client_secret") != s.ClientSecret:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "The client credentials are invalid"})
		return
	}
	scope := f.Get("scope")
	if scope == "" {
		scope = "all"
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenLifetime)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.opts.TokenLifetime / time.Second), "scope": scope})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !time.Now().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(msg))
}

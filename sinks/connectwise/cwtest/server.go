// Package cwtest is a fake ConnectWise PSA (Manage) REST API for tests,
// benchmarks and the sandbox. It serves the calls autoimport makes —
// company contacts (list with conditions and childConditions, create, get
// by id), communication types, companies and the unauthenticated
// companyinfo lookup — and enforces what the real API enforces: Basic authentication
// as companyId+publicKey:privateKey together with a clientId header (401,
// or 404 as cloud sometimes answers), pageSize at most 1,000 (400, or
// clamped), navigable paging with a Link header and forward-only paging
// with pageId, the condition grammar for the subset autoimport sends, and
// InvalidObject errors for bad contacts. Faults (429 with Retry-After, 5xx,
// malformed bodies, latency) are injected per request kind, and every
// request is counted by kind.
//
// It runs on loopback through net/http/httptest and needs no *testing.T:
//
//	srv := cwtest.NewServer(cwtest.Options{})
//	defer srv.Close()
//	srv.AddCompany(250, "Acme", "Acme Ltd")
//	srv.Generate(250, 5000, 1)
//	// connectwise.Config{URL: srv.URL, CompanyID: srv.CompanyID, PublicKey: srv.PublicKey,
//	//   PrivateKey: srv.PrivateKey, ClientID: srv.ClientID, Transport: srv.Client().Transport}
package cwtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fakeapi"
)

// Default credentials of a Server.
const (
	DefaultCompanyID  = "acmemsp"
	DefaultPublicKey  = "pubKEYfake01"
	DefaultPrivateKey = "privKEYfake-not-a-secret"
	DefaultClientID   = "0b7d1c2e-3f4a-4b5c-8d6e-7f8a9b0c1d2e"
)

// APIPath is the fixed API root most clients use; it routes to the current
// codebase.
const APIPath = "/v4_6_release/apis/3.0"

// Request kinds counted by the server and addressed by faults.
const (
	KindListContacts  = "contacts.list"
	KindCreateContact = "contacts.create"
	KindGetContact    = "contacts.get"
	KindCommTypes     = "communicationTypes"
	KindCompany       = "company"
	KindCompanyInfo   = "companyinfo"
	KindOther         = "other"
)

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:8081" for a sandbox
	// (default a free loopback port).
	Addr string
	// CompanyID, PublicKey, PrivateKey and ClientID are the credentials the
	// server accepts (defaults are fixed test values).
	CompanyID, PublicKey, PrivateKey, ClientID string
	// AuthFailureStatus is the status of an authentication failure: 401
	// (default) or 404, as cloud sometimes answers a wrong company or key.
	AuthFailureStatus int
	// ClampPageSize reduces a pageSize above 1,000 to 1,000 instead of
	// answering 400.
	ClampPageSize bool
	// EmailTypeID is the id of the "Email" communication type (default 1).
	EmailTypeID int
	// Latency delays every answer.
	Latency time.Duration
}

// Fault is an injected failure.
type Fault = fakeapi.Fault

// Contact is a contact as the fake stores it.
type Contact struct {
	ID          int
	CompanyID   int
	FirstName   string
	LastName    string
	Email       string
	Inactive    bool
	LastUpdated time.Time
	extraComms  []commItem
}

type company struct {
	id               int
	identifier, name string
}

type commType struct {
	ID        int    `json:"id"`
	Name      string `json:"description"`
	EmailFlag bool   `json:"emailFlag"`
	PhoneFlag bool   `json:"phoneFlag"`
}

// Server is a running fake.
type Server struct {
	// URL is the site's base (https://api-na.myconnectwise.net for real);
	// the API lives under URL+APIPath.
	URL string
	// The accepted credentials.
	CompanyID, PublicKey, PrivateKey, ClientID string

	opts Options
	srv  *httptest.Server

	fakeapi.Traffic // counters, arrivals, rate limit, faults, latency

	mu        sync.Mutex
	companies map[int]*company
	contacts  map[int]*Contact
	// ids are the contacts' ids in ascending order: a listing page walks
	// them in order from where the page starts instead of sorting every
	// contact for every page.
	ids       []int
	nextID    int
	commTypes []commType
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
	if o.CompanyID == "" {
		o.CompanyID = DefaultCompanyID
	}
	if o.PublicKey == "" {
		o.PublicKey = DefaultPublicKey
	}
	if o.PrivateKey == "" {
		o.PrivateKey = DefaultPrivateKey
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.AuthFailureStatus == 0 {
		o.AuthFailureStatus = http.StatusUnauthorized
	}
	if o.EmailTypeID == 0 {
		o.EmailTypeID = 1
	}
	s := &Server{
		CompanyID: o.CompanyID, PublicKey: o.PublicKey, PrivateKey: o.PrivateKey, ClientID: o.ClientID,
		opts:      o,
		companies: map[int]*company{},
		contacts:  map[int]*Contact{},
		nextID:    500,
	}
	s.SetLatency(o.Latency)
	phone := o.EmailTypeID + 1
	if phone == 2 && o.EmailTypeID != 1 {
		phone = 3
	}
	s.commTypes = []commType{
		{ID: phone, Name: "Direct", PhoneFlag: true},
		{ID: o.EmailTypeID, Name: "Email", EmailFlag: true},
	}
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
// connectwise.Config.Transport wants).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// APIURL is the API root, URL+APIPath.
func (s *Server) APIURL() string { return s.URL + APIPath }

// AddCompany adds (or renames) a company.
func (s *Server) AddCompany(id int, identifier, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.companies[id] = &company{id: id, identifier: identifier, name: name}
}

// AddContact stores a contact in an existing company and returns its id.
// A zero ID is assigned.
func (s *Server) AddContact(c Contact) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(c)
}

func (s *Server) addLocked(c Contact) int {
	if c.ID == 0 {
		s.nextID++
		c.ID = s.nextID
	} else if c.ID > s.nextID {
		s.nextID = c.ID
	}
	if c.LastUpdated.IsZero() {
		c.LastUpdated = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	cc := c
	s.contacts[c.ID] = &cc
	if i, found := slices.BinarySearch(s.ids, c.ID); !found {
		s.ids = slices.Insert(s.ids, i, c.ID)
	}
	return c.ID
}

// Contacts returns the contacts of a company, by id.
func (s *Server) Contacts(companyID int) []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Contact
	for _, c := range s.contacts {
		if c.CompanyID == companyID {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

var (
	firstNames = []string{"Jane", "John", "Maria", "Ahmed", "Li", "Olga", "Pedro", "Fatima", "Tom", "Aiko", "Noah", "Emma", "Lucas", "Mia", "Omar", "Sara"}
	lastNames  = []string{"Doe", "Smith", "Garcia", "Khan", "Wei", "Ivanova", "Silva", "Haddad", "Brown", "Sato", "Miller", "Jones", "Martin", "Rossi", "Nagy", "Berg"}
)

// Generate adds n deterministic contacts to a company (which it creates
// when missing) from a seed: emails are unique, but about one in twenty
// shares the first and last name of an earlier one, some have no email,
// and a few are inactive. It returns the new contacts' ids.
func (s *Server) Generate(companyID, n int, seed uint64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.companies[companyID] == nil {
		s.companies[companyID] = &company{id: companyID, identifier: fmt.Sprintf("C%d", companyID), name: fmt.Sprintf("Company %d", companyID)}
	}
	x := seed*6364136223846793005 + 1442695040888963407
	next := func() uint64 { x = x*6364136223846793005 + 1442695040888963407; return x >> 33 }
	ids := make([]int, 0, n)
	var prev []Contact
	for i := range n {
		r := next()
		c := Contact{CompanyID: companyID, FirstName: firstNames[r%16], LastName: fmt.Sprintf("%s%d", lastNames[(r>>4)%16], i)}
		if len(prev) > 0 && r%20 == 0 {
			p := prev[int(r>>8)%len(prev)]
			c.FirstName, c.LastName = p.FirstName, p.LastName
		}
		if r%50 != 1 {
			c.Email = fmt.Sprintf("%s.%s.%d.%d@c%d.example", strings.ToLower(c.FirstName), strings.ToLower(c.LastName), seed, i, companyID)
		}
		c.Inactive = r%97 == 3
		id := s.addLocked(c)
		c.ID = id
		prev = append(prev, c)
		ids = append(ids, id)
	}
	return ids
}

func kindOf(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/login/companyinfo/") {
		return KindCompanyInfo
	}
	_, rest, ok := strings.Cut(p, "/apis/3.0")
	if !ok {
		return KindOther
	}
	switch {
	case rest == "/company/contacts" && r.Method == http.MethodPost:
		return KindCreateContact
	case rest == "/company/contacts":
		return KindListContacts
	case strings.HasPrefix(rest, "/company/contacts/"):
		return KindGetContact
	case rest == "/company/communicationTypes":
		return KindCommTypes
	case strings.HasPrefix(rest, "/company/companies/"):
		return KindCompany
	}
	return KindOther
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	kind := kindOf(r)
	f, lat, _ := s.Admit(kind)
	if f != nil {
		lat += f.Latency
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
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
			_, _ = w.Write([]byte(`[{"id":501,"firstName":"Ja`))
			return
		}
		msg := "An error occurred."
		if f.Status == http.StatusTooManyRequests {
			msg = "Too many requests."
		}
		writeError(w, f.Status, "ConnectWiseApi", msg, nil)
		return
	}
	if kind == KindCompanyInfo {
		s.companyInfo(w, r)
		return
	}
	base, rest, ok := strings.Cut(r.URL.Path, "/apis/3.0")
	if !ok || !strings.HasPrefix(base, "/v") {
		writeError(w, http.StatusNotFound, "NotFound", "Route not found: "+r.URL.Path, nil)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	w.Header().Set("api-current-version", "2024.1")
	switch {
	case rest == "/company/contacts" && r.Method == http.MethodGet:
		s.listContacts(w, r)
	case rest == "/company/contacts" && r.Method == http.MethodPost:
		s.createContact(w, r)
	case strings.HasPrefix(rest, "/company/contacts/") && r.Method == http.MethodGet:
		s.getContact(w, r, strings.TrimPrefix(rest, "/company/contacts/"))
	case rest == "/company/communicationTypes" && r.Method == http.MethodGet:
		s.listCommTypes(w, r)
	case strings.HasPrefix(rest, "/company/companies/") && r.Method == http.MethodGet:
		s.getCompany(w, strings.TrimPrefix(rest, "/company/companies/"))
	default:
		writeError(w, http.StatusNotFound, "NotFound", "Route not found: "+rest, nil)
	}
}

// authorized checks Basic companyId+publicKey:privateKey and clientId.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	fail := func(msg string) bool {
		if s.opts.AuthFailureStatus == http.StatusNotFound {
			writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.", nil)
			return false
		}
		writeError(w, http.StatusUnauthorized, "Unauthorized", msg, nil)
		return false
	}
	if r.Header.Get("clientId") == "" {
		return fail("ClientId is required.")
	}
	if r.Header.Get("clientId") != s.ClientID {
		return fail("Invalid clientId.")
	}
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
	if !ok {
		return fail("UserNotAuthenticated")
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fail("UserNotAuthenticated")
	}
	user, priv, _ := strings.Cut(string(raw), ":")
	co, pub, _ := strings.Cut(user, "+")
	if !strings.EqualFold(co, s.CompanyID) || pub != s.PublicKey || priv != s.PrivateKey {
		return fail("UserNotAuthenticated")
	}
	return true
}

func (s *Server) companyInfo(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/login/companyinfo/")
	if !strings.EqualFold(id, s.CompanyID) {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"CompanyName": "Acme MSP", "Codebase": "v2024_1/", "VersionCode": "v2024.1",
		"CompanyID": s.CompanyID, "IsCloud": true, "SiteUrl": strings.TrimPrefix(s.URL, "http://"),
	})
}

func (s *Server) getCompany(w http.ResponseWriter, idText string) {
	var id int
	if _, err := fmt.Sscanf(idText, "%d", &id); err != nil || fmt.Sprint(id) != idText {
		writeError(w, http.StatusBadRequest, "InvalidObject", "Invalid company id "+idText, nil)
		return
	}
	s.mu.Lock()
	c := s.companies[id]
	s.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Company with id %d not found", id), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.id, "identifier": c.identifier, "name": c.name, "status": map[string]any{"id": 1, "name": "Active"}})
}

func (s *Server) listCommTypes(w http.ResponseWriter, r *http.Request) {
	cond := r.URL.Query().Get("conditions")
	var out []commType
	for _, t := range s.commTypes {
		switch strings.ReplaceAll(cond, " ", "") {
		case "":
		case "emailFlag=true":
			if !t.EmailFlag {
				continue
			}
		default:
			writeError(w, http.StatusBadRequest, "InvalidObject", "Unsupported condition: "+cond, nil)
			return
		}
		out = append(out, t)
	}
	writeJSON(w, http.StatusOK, out)
}

// writeError writes ConnectWise's error body.
func writeError(w http.ResponseWriter, status int, code, msg string, errs []fieldError) {
	body := map[string]any{"code": code, "message": msg}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, status, body)
}

type fieldError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Resource string `json:"resource"`
	Field    string `json:"field"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

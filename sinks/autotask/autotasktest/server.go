// Package autotasktest is a fake Autotask PSA REST API for tests, benchmarks
// and the sandbox. It serves zone discovery (at ZoneInfoPath only, as the
// real API does), contact queries (POST or GET
// with the JSON filter format, MaxRecords up to 500, pageDetails.nextPageUrl
// paging, counts), contact creation ({"itemId":N}), single contacts and
// companies, and ThresholdInformation, and enforces what the real API does:
// the three authentication headers (a wrong UserName or ApiIntegrationCode
// answers 500, a wrong Secret 401), MaxRecords above 500 → 400, isActive as
// an integer (true → 500 parse error), and the hourly request threshold per
// database — calls slow down past 50 % and 75 % of it and are refused once
// it is reached. Faults (429 with Retry-After, 5xx, malformed bodies,
// latency) are injected per request kind, and every request is counted by
// kind.
//
// It runs on loopback through net/http/httptest and needs no *testing.T:
//
//	srv := autotasktest.NewServer(autotasktest.Options{})
//	defer srv.Close()
//	srv.AddCompany(123, "Acme")
//	srv.Generate(123, 5000, 1)
//	// autotask.Config{ZoneURL: srv.ZoneURL(), UserName: srv.UserName, Secret: srv.Secret,
//	//   IntegrationCode: srv.IntegrationCode, Transport: srv.Client().Transport}
package autotasktest

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
	DefaultUserName        = "api-import@acmemsp.example"
	DefaultSecret          = "fake$secret*value"
	DefaultIntegrationCode = "FAKETRACKINGIDENTIFIER01"
)

// Request kinds counted by the server and addressed by faults.
const (
	KindZone          = "zone"
	KindQueryContacts = "contacts.query" // first pages and nextPageUrl pages
	KindCountContacts = "contacts.count"
	KindCreateContact = "contacts.create"
	KindContact       = "contact"
	KindCompany       = "company"
	KindThreshold     = "threshold"
	KindOther         = "other"
)

// MaxRecords is the largest page a query may ask for.
const MaxRecords = 500

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:8081" for a sandbox
	// (default a free loopback port).
	Addr string
	// UserName, Secret and IntegrationCode are the credentials the server
	// accepts (defaults are fixed test values).
	UserName, Secret, IntegrationCode string
	// HourlyLimit is the database's request threshold per Window (default
	// 10,000 per hour).
	HourlyLimit int
	// Window is the rolling threshold window (default 1 h).
	Window time.Duration
	// SlowHalf and SlowThreeQuarters are the delays added once the window
	// holds more than 50 % and 75 % of HourlyLimit (defaults 0.5 s and 1 s;
	// negative disables).
	SlowHalf, SlowThreeQuarters time.Duration
	// RefusalStatus answers calls over the threshold (default 429).
	RefusalStatus int
	// Threads is how many requests per endpoint run at once; more wait
	// their turn, as Autotask queues them (default 3; negative: no limit).
	Threads int
	// ZoneURLQuirk makes zone discovery return the API URL with a double
	// slash and no trailing slash, as it occasionally does.
	ZoneURLQuirk bool
	// Latency delays every answer.
	Latency time.Duration
}

// Fault is an injected failure.
type Fault = fakeapi.Fault

// Contact is a contact as the fake stores it.
type Contact struct {
	ID           int64
	CompanyID    int64
	FirstName    string
	LastName     string
	EmailAddress string
	IsActive     bool
}

// Server is a running fake.
type Server struct {
	// URL is the server's root; the API lives under URL+"/ATServicesRest/V1.0/".
	URL string
	// The accepted credentials.
	UserName, Secret, IntegrationCode string

	opts Options
	srv  *httptest.Server

	fakeapi.Traffic // counters, arrivals, rate limit, faults, latency

	mu        sync.Mutex
	companies map[int64]string
	contacts  map[int64]*Contact
	nextID    int64
	pages     map[string]*pageState
	window    []time.Time // times of counted API calls in the rolling window
	now       func() time.Time
	slots     map[string]chan struct{} // per endpoint kind
	running   map[string]int
	peak      map[string]int
	use       map[string]*ThreadUse
	changed   map[string]time.Time // when running last changed
}

type pageState struct {
	match func(*Contact) bool
	after int64
	max   int
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
	if o.UserName == "" {
		o.UserName = DefaultUserName
	}
	if o.Secret == "" {
		o.Secret = DefaultSecret
	}
	if o.IntegrationCode == "" {
		o.IntegrationCode = DefaultIntegrationCode
	}
	if o.HourlyLimit <= 0 {
		o.HourlyLimit = 10000
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.SlowHalf == 0 {
		o.SlowHalf = 500 * time.Millisecond
	}
	if o.SlowThreeQuarters == 0 {
		o.SlowThreeQuarters = time.Second
	}
	if o.Threads == 0 {
		o.Threads = 3
	}
	if o.RefusalStatus == 0 {
		o.RefusalStatus = http.StatusTooManyRequests
	}
	s := &Server{
		UserName: o.UserName, Secret: o.Secret, IntegrationCode: o.IntegrationCode,
		opts:      o,
		companies: map[int64]string{},
		contacts:  map[int64]*Contact{},
		nextID:    29683000,
		pages:     map[string]*pageState{},
		now:       time.Now,
		slots:     map[string]chan struct{}{},
		running:   map[string]int{},
		peak:      map[string]int{},
		use:       map[string]*ThreadUse{},
		changed:   map[string]time.Time{},
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
// autotask.Config.Transport wants).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// ZoneURL is the zone-discovery REST root, the stand-in for
// https://webservices.autotask.net/atservicesrest. The bare URL (the
// stand-in for https://webservices.autotask.net) works as
// autotask.Config.ZoneURL too.
func (s *Server) ZoneURL() string { return s.URL + "/atservicesrest" }

// AddCompany adds (or renames) a company.
func (s *Server) AddCompany(id int64, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.companies[id] = name
}

// AddContact stores a contact and returns its id; a zero ID is assigned.
func (s *Server) AddContact(c Contact) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(c)
}

func (s *Server) addLocked(c Contact) int64 {
	if c.ID == 0 {
		s.nextID++
		c.ID = s.nextID
	} else if c.ID > s.nextID {
		s.nextID = c.ID
	}
	cc := c
	s.contacts[c.ID] = &cc
	return c.ID
}

// Contacts returns the contacts of a company by id.
func (s *Server) Contacts(companyID int64) []Contact {
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

// Generate adds n deterministic contacts to a company (created when
// missing) from a seed: emails are unique, about one in twenty repeats an
// earlier contact's first and last name, some have no email and a few are
// inactive. It returns the new ids.
func (s *Server) Generate(companyID int64, n int, seed uint64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.companies[companyID]; !ok {
		s.companies[companyID] = fmt.Sprintf("Company %d", companyID)
	}
	x := seed*6364136223846793005 + 1442695040888963407
	next := func() uint64 { x = x*6364136223846793005 + 1442695040888963407; return x >> 33 }
	ids := make([]int64, 0, n)
	var prev []Contact
	for i := range n {
		r := next()
		c := Contact{CompanyID: companyID, FirstName: firstNames[r%16], LastName: fmt.Sprintf("%s%d", lastNames[(r>>4)%16], i), IsActive: r%97 != 3}
		if len(prev) > 0 && r%20 == 0 {
			p := prev[int(r>>8)%len(prev)]
			c.FirstName, c.LastName = p.FirstName, p.LastName
		}
		if r%50 != 1 {
			c.EmailAddress = fmt.Sprintf("%s.%s.%d.%d@c%d.example", strings.ToLower(c.FirstName), strings.ToLower(c.LastName), seed, i, companyID)
		}
		c.ID = s.addLocked(c)
		prev = append(prev, c)
		ids = append(ids, c.ID)
	}
	return ids
}

// WindowCount is the number of API calls in the current rolling window,
// what ThresholdInformation reports.
func (s *Server) WindowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.windowLocked()
}

func (s *Server) windowLocked() int {
	cut := s.now().Add(-s.opts.Window)
	i := sort.Search(len(s.window), func(i int) bool { return s.window[i].After(cut) })
	s.window = s.window[i:]
	return len(s.window)
}

// ZoneInfoPath is where the real API answers zone discovery
// (https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation);
// the fake answers it there only, in any case, and 404 elsewhere, so a
// client asking the wrong path fails as it would against Autotask.
const ZoneInfoPath = "/atservicesrest/v1.0/zoneInformation"

func kindOf(r *http.Request) string {
	p := strings.ToLower(r.URL.Path)
	if p == strings.ToLower(ZoneInfoPath) {
		return KindZone
	}
	_, rest, ok := strings.Cut(p, "/atservicesrest/v1.0/")
	if !ok {
		return KindOther
	}
	switch {
	case rest == "contacts/query" || rest == "contacts/query/next":
		return KindQueryContacts
	case rest == "contacts/query/count":
		return KindCountContacts
	case (rest == "contacts" || strings.HasPrefix(rest, "companies/") && strings.HasSuffix(rest, "/contacts")) && r.Method == http.MethodPost:
		return KindCreateContact
	case strings.HasPrefix(rest, "contacts/"):
		return KindContact
	case strings.HasPrefix(rest, "companies/"):
		return KindCompany
	case rest == "thresholdinformation":
		return KindThreshold
	}
	return KindOther
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	kind := kindOf(r)
	f, lat, _ := s.Admit(kind)
	if f != nil {
		lat += f.Latency
	}
	// Zone calls are exempt from the thread limit.
	if kind != KindZone && kind != KindOther {
		start, ok := s.acquire(r, kind)
		if !ok {
			return
		}
		defer s.release(kind, start)
	}
	if !sleep(r, lat) {
		return
	}
	if f != nil && (f.Status != 0 || f.Malformed) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Malformed {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(max(f.Status, http.StatusOK))
			_, _ = w.Write([]byte(`{"items":[{"id":29683`))
			return
		}
		writeErrors(w, f.Status, "An unexpected error occurred.")
		return
	}
	if kind == KindZone {
		s.zone(w, r)
		return
	}
	_, rest, ok := strings.Cut(r.URL.Path, "/ATServicesRest/V1.0/")
	if !ok {
		_, rest, ok = strings.Cut(strings.ToLower(r.URL.Path), "/atservicesrest/v1.0/")
	}
	if !ok {
		writeErrors(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI.")
		return
	}
	if !s.authorized(w, r) {
		return
	}
	if kind != KindThreshold && !s.throttle(w, r) {
		return
	}

	rest = strings.ToLower(rest)
	switch {
	case kind == KindQueryContacts && strings.HasSuffix(rest, "/next"):
		s.nextPage(w, r)
	case kind == KindQueryContacts || kind == KindCountContacts:
		s.query(w, r, kind == KindCountContacts)
	case kind == KindCreateContact:
		s.create(w, r, rest)
	case kind == KindContact && r.Method == http.MethodGet:
		s.getContact(w, strings.TrimPrefix(rest, "contacts/"))
	case kind == KindCompany && r.Method == http.MethodGet:
		s.getCompany(w, strings.TrimPrefix(rest, "companies/"))
	case kind == KindCompany && r.Method == http.MethodPatch:
		writeErrors(w, http.StatusMethodNotAllowed, "The requested resource does not support http method 'PATCH'.")
	case kind == KindThreshold && r.Method == http.MethodGet:
		s.mu.Lock()
		n := s.windowLocked()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"externalRequestThreshold": s.opts.HourlyLimit, "requestThresholdTimeframe": int(s.opts.Window / time.Minute), "currentTimeframeRequestCount": n})
	default:
		writeErrors(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI.")
	}
}

// acquire takes one of the endpoint's thread slots, waiting while they are
// all busy, and says when it got it.
func (s *Server) acquire(r *http.Request, kind string) (time.Time, bool) {
	if s.opts.Threads < 0 {
		return time.Time{}, true
	}
	s.mu.Lock()
	ch := s.slots[kind]
	if ch == nil {
		ch = make(chan struct{}, s.opts.Threads)
		s.slots[kind] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-r.Context().Done():
		return time.Time{}, false
	}
	s.mu.Lock()
	now := s.threadsChange(kind)
	s.running[kind]++
	s.peak[kind] = max(s.peak[kind], s.running[kind])
	s.mu.Unlock()
	return now, true
}

func (s *Server) release(kind string, start time.Time) {
	if s.opts.Threads < 0 {
		return
	}
	s.mu.Lock()
	now := s.threadsChange(kind)
	s.running[kind]--
	u := s.use[kind]
	u.Requests++
	u.Held += now.Sub(start)
	ch := s.slots[kind]
	s.mu.Unlock()
	<-ch
}

// threadsChange accounts for the time since the endpoint's running count
// last changed, before it changes now. s.mu is held.
func (s *Server) threadsChange(kind string) time.Time {
	now := time.Now()
	u := s.use[kind]
	if u == nil {
		u = &ThreadUse{}
		s.use[kind] = u
	}
	if s.running[kind] == s.opts.Threads {
		u.AllBusy += now.Sub(s.changed[kind])
	}
	s.changed[kind] = now
	return now
}

// ThreadUse is how an endpoint's threads were used, since the server
// started: Requests ran, holding a thread for Held in all; AllBusy is how
// long every thread was busy at once.
type ThreadUse struct {
	Requests      int64
	Held, AllBusy time.Duration
}

// Threads says how the threads of an endpoint (a Kind) were used.
func (s *Server) Threads(kind string) ThreadUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.use[kind]; u != nil {
		return *u
	}
	return ThreadUse{}
}

// PeakConcurrency is the most requests of a kind that ran at once.
func (s *Server) PeakConcurrency(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak[kind]
}

func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) zone(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		writeErrors(w, http.StatusBadRequest, "The user parameter is required.")
		return
	}
	if !strings.EqualFold(user, s.UserName) {
		writeErrors(w, http.StatusInternalServerError, "Zone information could not be determined for user "+user+".")
		return
	}
	u := s.URL + "/ATServicesRest/"
	if s.opts.ZoneURLQuirk {
		u = s.URL + "//ATServicesRest"
	}
	writeJSON(w, http.StatusOK, map[string]any{"zoneName": "Fake Zone 15", "url": u, "webUrl": s.URL + "/", "ci": 0})
}

// authorized checks the three headers as Autotask does: a wrong user name
// or integration code is a 500, a wrong secret a 401.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Header.Get("UserName") == "" || !strings.EqualFold(r.Header.Get("UserName"), s.UserName):
		writeErrors(w, http.StatusInternalServerError, "Object reference not set to an instance of an object.")
		return false
	case r.Header.Get("ApiIntegrationCode") != s.IntegrationCode:
		writeErrors(w, http.StatusInternalServerError, "Unable to find the integration identified by the ApiIntegrationCode header.")
		return false
	case r.Header.Get("Secret") != s.Secret:
		writeErrors(w, http.StatusUnauthorized, "User is not authorized.")
		return false
	}
	return true
}

// throttle counts the call against the hourly threshold, delays it past
// 50 % and 75 % of the allowance, and refuses it over the limit.
func (s *Server) throttle(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	n := s.windowLocked()
	if n >= s.opts.HourlyLimit {
		wait := s.window[0].Add(s.opts.Window).Sub(s.now())
		s.mu.Unlock()
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		writeErrors(w, s.opts.RefusalStatus, fmt.Sprintf("The request threshold of %d requests per %d minutes has been exceeded.", s.opts.HourlyLimit, int(s.opts.Window/time.Minute)))
		return false
	}
	s.window = append(s.window, s.now())
	n++
	limit := s.opts.HourlyLimit
	s.mu.Unlock()
	switch {
	case n*4 > limit*3 && s.opts.SlowThreeQuarters > 0:
		return sleep(r, s.opts.SlowThreeQuarters)
	case n*2 > limit && s.opts.SlowHalf > 0:
		return sleep(r, s.opts.SlowHalf)
	}
	return true
}

func (s *Server) getCompany(w http.ResponseWriter, idText string) {
	var id int64
	if _, err := fmt.Sscan(idText, &id); err != nil {
		writeErrors(w, http.StatusBadRequest, "The request is invalid.")
		return
	}
	s.mu.Lock()
	name, ok := s.companies[id]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"item": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": map[string]any{"id": id, "companyName": name, "isActive": true}})
}

func (s *Server) getContact(w http.ResponseWriter, idText string) {
	var id int64
	if _, err := fmt.Sscan(idText, &id); err != nil {
		writeErrors(w, http.StatusBadRequest, "The request is invalid.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[id]
	if c == nil {
		writeJSON(w, http.StatusOK, map[string]any{"item": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": contactJSON(c, nil)})
}

func contactJSON(c *Contact, include map[string]bool) map[string]any {
	active := 0
	if c.IsActive {
		active = 1
	}
	var email any
	if c.EmailAddress != "" {
		email = c.EmailAddress
	}
	m := map[string]any{"id": c.ID, "companyID": c.CompanyID, "firstName": c.FirstName, "lastName": c.LastName, "emailAddress": email, "emailAddress2": nil, "emailAddress3": nil, "isActive": active, "title": nil, "phone": "", "mobilePhone": "", "userDefinedFields": []any{}}
	if len(include) == 0 {
		return m
	}
	for k := range m {
		if !include[strings.ToLower(k)] {
			delete(m, k)
		}
	}
	return m
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

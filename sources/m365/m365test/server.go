// Package m365test is a fake Microsoft identity platform and Microsoft
// Graph for tests, benchmarks and the sandbox: a client-credentials token
// endpoint per tenant and the Graph calls autoimport makes (users, groups
// with transitive members, directory roles, the delta functions of users,
// groups and directory roles (see delta.go), and a password reset through
// PATCH /users/{id}, see password.go), enforcing what the
// real services enforce — form checks with AADSTS error bodies, bearer
// tokens bound to their tenant, $top between 1 and 999, $select deciding
// the returned fields, opaque @odata.nextLink paging, advanced queries only
// with ConsistencyLevel: eventual and $count=true, Graph's error body shape,
// delta links that expire. Faults (429 with Retry-After, 5xx, malformed
// bodies, latency) are injected per request kind, and every request is
// counted by kind.
//
// It runs on loopback through net/http/httptest and needs no *testing.T:
//
//	srv := m365test.NewServer(m365test.Options{})
//	defer srv.Close()
//	gen := srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 500, Groups: 4, Admins: 2})
//	// m365.Config{LoginURL: srv.URL, GraphURL: srv.URL, TenantID: srv.TenantID,
//	//   ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Transport: srv.Client().Transport}
package m365test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fakeapi"
	"golang.org/x/time/rate"
)

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// TenantID of the default tenant (default
	// "9c1f3e0a-6b7d-4e2a-8f5c-3d2b1a0e9f8d").
	TenantID string
	// ClientID and ClientSecret of the MSP's app registration the token
	// endpoint accepts (defaults are fixed test values).
	ClientID, ClientSecret string
	// TokenLifetime of issued access tokens (default 1 h).
	TokenLifetime time.Duration
	// DeltaLinkTTL is how long a delta link stays valid (default 7 days).
	DeltaLinkTTL time.Duration
	// ExpiredDeltaStatus is the answer to an expired delta link: 400 with
	// code syncStateNotFound (default) or 410 with code resyncRequired.
	ExpiredDeltaStatus int
	// Latency delays every answer.
	Latency time.Duration
	// Addr is the loopback address to listen on, e.g. "127.0.0.1:8365"
	// for a sandbox (default: a free port).
	Addr string
	// ResourceUnitsPer10s turns on Graph's throttling model: each tenant
	// has a bucket of this many resource units refilled over 10 s; a
	// request costs what Graph charges (GET users 2, members 3, transitive
	// members 5, others 1; $select takes 1 off; never below 1) and is
	// answered 429 with Retry-After when the bucket is empty. 0 disables.
	ResourceUnitsPer10s int
	// PartialDeltaUpdates makes delta rounds return users changed (not
	// created or restored) since the link as partial objects: their id and
	// the properties that changed, as Graph may ("at least the properties
	// that have been updated").
	PartialDeltaUpdates bool
	// DeltaReplays turns on what a delta client must survive and a
	// convenient fake would spare it: objects repeated within a round, the
	// last change before a link replayed in the round after it, and an
	// empty page before the others.
	DeltaReplays bool
	// DeltaMembersPerObject is how many members@delta entries one group or
	// role object carries; a larger member list is split over several
	// objects of the same group (default 100).
	DeltaMembersPerObject int
}

// Default credentials of a Server.
const (
	DefaultTenantID     = "9c1f3e0a-6b7d-4e2a-8f5c-3d2b1a0e9f8d"
	DefaultClientID     = "5a7c0d2e-1f3b-4c6d-8e9f-0a1b2c3d4e5f"
	DefaultClientSecret = "fake~client~secret~value"
)

// Request kinds counted by the server and addressed by faults.
const (
	KindToken        = "token"
	KindUsers        = "users"         // GET /users
	KindUser         = "user"          // GET /users/{id}
	KindUserMemberOf = "user.memberOf" // GET /users/{id}/memberOf
	KindUserUpdate   = "user.update"   // PATCH /users/{id} (a password reset)
	KindDelta        = "users.delta"   // GET /users/delta
	KindGroups       = "groups"        // GET /groups (filter by name)
	KindGroup        = "group"         // GET /groups/{id}
	KindGroupMembers = "group.members" // GET /groups/{id}/(transitive)members and /groups/{id}/memberOf
	KindGroupsDelta  = "groups.delta"  // GET /groups/delta
	KindRoles        = "directoryRoles"
	KindRoleMembers  = "role.members"
	KindRolesDelta   = "directoryRoles.delta" // GET /directoryRoles/delta
	KindOther        = "other"
)

// Fault is an injected failure.
type Fault struct {
	// Kind is the request kind it applies to; "" means any Graph request
	// (not the token endpoint).
	Kind string
	// After lets this many matching requests through untouched first.
	After int
	// Times is how many requests fail (default 1; negative: every one).
	Times int
	// Status is the answer's status (e.g. 429, 503). Zero with Malformed
	// answers 200.
	Status int
	// RetryAfter is the Retry-After header value, e.g. "1".
	RetryAfter string
	// Code and Message fill Graph's error body (defaults per status).
	Code, Message string
	// Malformed answers a truncated JSON body.
	Malformed bool
	// Latency delays the answer (a delay longer than the client's
	// per-attempt timeout makes a timeout).
	Latency time.Duration
	// Drop cuts the connection instead of answering.
	Drop bool
	// AfterApply lets a write (KindUserUpdate) take effect first and then
	// answers with the fault (Status, or Drop): a change whose answer is
	// lost.
	AfterApply bool

	seen, used int
}

// Server is a running fake.
type Server struct {
	// URL is the base of both the login endpoint and Graph.
	URL string
	// TenantID, ClientID and ClientSecret are the default tenant and the
	// app credentials the token endpoint accepts.
	TenantID, ClientID, ClientSecret string

	opts Options
	srv  *httptest.Server

	mu            sync.Mutex
	tenants       map[string]*Tenant
	tokens        map[string]issued
	faults        []*Fault
	counts        map[string]int64
	latency       time.Duration
	secretExpired bool
	// deltaGen is the generation of delta links; ExpireDeltaLinks moves it
	// on, and older links answer expiredStatus with expiredCode.
	deltaGen      int64
	expiredStatus int
	expiredCode   string
	// rounds are the delta rounds being paged through, by id, oldest
	// first in roundOrder.
	rounds     map[string]*deltaRound
	roundOrder []string
	now        func() time.Time
	buckets    map[string]*rate.Limiter
}

type issued struct {
	tenant  string
	expires time.Time
}

// NewServer starts a fake on loopback and panics if it cannot listen (as
// httptest.NewServer does); see Start for an error instead.
func NewServer(o Options) *Server {
	s, err := Start(o)
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a fake on o.Addr (default a free loopback port).
func Start(o Options) (*Server, error) {
	if o.TenantID == "" {
		o.TenantID = DefaultTenantID
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
	if o.DeltaLinkTTL <= 0 {
		o.DeltaLinkTTL = 7 * 24 * time.Hour
	}
	if o.ExpiredDeltaStatus == 0 {
		o.ExpiredDeltaStatus = http.StatusBadRequest
	}
	s := &Server{
		TenantID: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		opts:    o,
		tenants: map[string]*Tenant{},
		tokens:  map[string]issued{},
		counts:  map[string]int64{},
		latency: o.Latency,
		now:     time.Now,
	}
	s.expiredStatus, s.expiredCode = s.defaultExpiry()
	s.rounds = map[string]*deltaRound{}
	s.tenants[o.TenantID] = newTenant(o.TenantID)
	s.buckets = map[string]*rate.Limiter{}
	srv, err := fakeapi.Serve(o.Addr, http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, fmt.Errorf("m365test: %w", err)
	}
	s.srv = srv
	s.URL = s.srv.URL
	return s, nil
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server (its Transport is what
// m365.Config.Transport wants).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Default returns the default tenant.
func (s *Server) Default() *Tenant { return s.Tenant(s.TenantID) }

// Tenant returns the tenant with this id, adding an empty one (consented to
// the app) if there is none.
func (s *Server) Tenant(id string) *Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		t = newTenant(id)
		s.tenants[id] = t
	}
	return t
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// SetLatency delays every later answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetSecretExpired makes the token endpoint answer AADSTS7000222 (secret
// expired) to the right secret.
func (s *Server) SetSecretExpired(expired bool) {
	s.mu.Lock()
	s.secretExpired = expired
	s.mu.Unlock()
}

// RevokeTokens forgets every issued access token (Graph then answers 401
// InvalidAuthenticationToken until a new token is fetched).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	s.tokens = map[string]issued{}
	s.mu.Unlock()
}

// Count returns how many requests of a kind arrived (faulty ones included).
func (s *Server) Count(kind string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

// Counts returns every counter.
func (s *Server) Counts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// ResetCounts sets every counter to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	s.counts = map[string]int64{}
	s.mu.Unlock()
}

// fault counts the request and returns the fault to apply, if any, and the
// latency to add.
func (s *Server) fault(kind string) (*Fault, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[kind]++
	for _, f := range s.faults {
		if f.Kind != kind && (f.Kind != "" || kind == KindToken) {
			continue
		}
		if f.Times >= 0 && f.used >= f.Times {
			continue
		}
		if f.seen < f.After {
			f.seen++
			continue
		}
		f.used++
		c := *f
		return &c, s.latency
	}
	return nil, s.latency
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newID()
	w.Header().Set("request-id", reqID)
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	}
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		f, lat := s.fault(KindToken)
		if !s.delay(w, r, f, lat) {
			return
		}
		s.token(w, r)
		return
	}
	kind := kindOf(r.URL.Path)
	if r.Method == http.MethodPatch && kind == KindUser {
		kind = KindUserUpdate
	}
	f, lat := s.fault(kind)
	var afterApply *Fault
	if f != nil && f.AfterApply {
		afterApply, f = f, nil
	}
	if !s.delay(w, r, f, lat) {
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v1.0/") {
		graphError(w, http.StatusNotFound, "BadRequest", "Invalid version: "+r.URL.Path)
		return
	}
	t, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if !s.charge(w, r, t, kind) {
		return
	}
	if kind == KindUserUpdate {
		s.updateUser(w, r, t, afterApply)
		return
	}
	if r.Method != http.MethodGet {
		graphError(w, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
		return
	}
	s.graph(w, r, t, kind)
}

// delay applies latency and the fault; it reports whether to go on.
func (s *Server) delay(w http.ResponseWriter, r *http.Request, f *Fault, lat time.Duration) bool {
	if f != nil {
		lat += f.Latency
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return false
		}
	}
	if f != nil && f.Drop {
		panic(http.ErrAbortHandler) // net/http closes the connection unanswered
	}
	if f == nil || (f.Status == 0 && !f.Malformed) {
		return true
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Malformed {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","value":[{"id":"0000`))
		return false
	}
	code, msg := f.Code, f.Message
	if code == "" {
		switch f.Status {
		case http.StatusTooManyRequests:
			code, msg = "TooManyRequests", "Too many requests."
			w.Header().Set("x-ms-throttle-scope", "Tenant_Application/Read/fake/fake")
			w.Header().Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
		case http.StatusServiceUnavailable:
			code, msg = "serviceNotAvailable", "Service unavailable."
		default:
			code, msg = "generalException", "An unexpected error occurred."
		}
	}
	graphError(w, f.Status, code, msg)
	return false
}

// cost is what Graph charges a request in resource units.
func cost(r *http.Request, kind string) int {
	c := 1
	switch {
	case kind == KindUsers || kind == KindDelta:
		c = 2
	case kind == KindGroupMembers && strings.Contains(r.URL.Path, "/transitiveMembers"):
		c = 5
	case kind == KindGroupMembers, kind == KindUserMemberOf:
		c = 3
	}
	if r.URL.Query().Has("$select") {
		c--
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("$top")); err == nil && n < 20 {
		c--
	}
	return max(c, 1)
}

// charge takes the request's cost from the tenant's bucket, or answers
// 429 when it is empty. It reports whether to go on.
func (s *Server) charge(w http.ResponseWriter, r *http.Request, t *Tenant, kind string) bool {
	c := cost(r, kind)
	w.Header().Set("x-ms-resource-unit", strconv.Itoa(c))
	if s.opts.ResourceUnitsPer10s <= 0 {
		return true
	}
	s.mu.Lock()
	b, ok := s.buckets[t.ID]
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(s.opts.ResourceUnitsPer10s)/10), s.opts.ResourceUnitsPer10s)
		s.buckets[t.ID] = b
	}
	s.mu.Unlock()
	now := time.Now()
	res := b.ReserveN(now, c)
	if d := res.DelayFrom(now); d > 0 || !res.OK() {
		res.CancelAt(now)
		if !res.OK() { // costs more than the whole bucket
			d = 10 * time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))))
		w.Header().Set("x-ms-throttle-scope", "Tenant_Application/Read/"+s.ClientID+"/"+t.ID)
		w.Header().Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
		graphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return false
	}
	return true
}

func kindOf(path string) string {
	p := strings.TrimPrefix(path, "/v1.0")
	switch {
	case p == "/users":
		return KindUsers
	case p == "/users/delta":
		return KindDelta
	case strings.HasPrefix(p, "/users/") && strings.HasSuffix(p, "/memberOf"):
		return KindUserMemberOf
	case strings.HasPrefix(p, "/users/"):
		return KindUser
	case p == "/groups":
		return KindGroups
	case p == "/groups/delta":
		return KindGroupsDelta
	case p == "/directoryRoles/delta":
		return KindRolesDelta
	case strings.HasPrefix(p, "/groups/") && strings.Contains(p[len("/groups/"):], "/"):
		return KindGroupMembers
	case strings.HasPrefix(p, "/groups/"):
		return KindGroup
	case p == "/directoryRoles":
		return KindRoles
	case strings.HasPrefix(p, "/directoryRoles"):
		return KindRoleMembers
	}
	return KindOther
}

// token is the client-credentials token endpoint of
// /{tenant}/oauth2/v2.0/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if r.Method != http.MethodPost {
		aadError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body could not be parsed.")
		return
	}
	f := r.PostForm
	s.mu.Lock()
	t, known := s.tenants[tenant]
	expired := s.secretExpired
	s.mu.Unlock()
	if !known {
		aadError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	switch {
	case f.Get("grant_type") == "":
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	case f.Get("grant_type") != "client_credentials":
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	case f.Get("client_id") == "":
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	t.mu.RLock()
	consented := t.consented
	t.mu.RUnlock()
	if f.Get("client_id") != s.ClientID || !consented {
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", f.Get("client_id"), tenant))
		return
	}
	switch {
	case f.Get("client_secret") == "":
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case f.Get("client_secret") != s.ClientSecret:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+s.ClientID+"'.")
		return
	case expired:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app '"+s.ClientID+"' are expired. Visit the Azure portal to create new keys for your app.")
		return
	}
	scope := f.Get("scope")
	if scope != "https://graph.microsoft.com/.default" && scope != s.URL+"/.default" {
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope "+scope+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	tok := newID() + newID()
	s.mu.Lock()
	s.tokens[tok] = issued{tenant: tenant, expires: s.now().Add(s.opts.TokenLifetime)}
	s.mu.Unlock()
	secs := int(s.opts.TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
}

// authorize checks the bearer token and returns its tenant.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*Tenant, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return nil, false
	}
	s.mu.Lock()
	iss, known := s.tokens[tok]
	t := s.tenants[iss.tenant]
	now := s.now()
	s.mu.Unlock()
	switch {
	case !known:
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
		return nil, false
	case now.After(iss.expires):
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return nil, false
	}
	return t, true
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// aadError writes the identity platform's error body.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	trace := newID()
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, desc, trace, newID(), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    newID(),
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

// graphError writes Graph's error body.
func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    code,
		"message": msg,
		"innerError": map[string]any{
			"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
			"request-id":        w.Header().Get("request-id"),
			"client-request-id": w.Header().Get("client-request-id"),
		},
	}})
}

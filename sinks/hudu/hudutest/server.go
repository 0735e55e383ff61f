// Package hudutest is a fake Hudu API for tests, benchmarks and the
// sandbox. It serves what autoimport calls — asset passwords (listed per
// company, created, shown, updated) and companies — under /api/v1, and
// enforces what the real API does: the x-api-key header (401 when missing
// or wrong), page/page_size paging with a default page of 25 and no totals,
// the {"asset_password":{…}} wrapper on POST and PUT (400 "Parameter
// missing" without it), validation errors as {"errors":{field:[…]}}
// (422), and a request counter per window answering 429 with the
// plain-text body "Retry later".
// Like the real API it returns password values in clear in listings.
// Entries created through the API show up in the next listing. Faults
// (429 with Retry-After, 5xx, malformed bodies, latency) are injected per
// request kind, and every request is counted by kind.
//
// It runs on loopback and needs no *testing.T:
//
//	srv := hudutest.NewServer(hudutest.Options{})
//	defer srv.Close()
//	srv.AddCompany(7, "Acme")
//	srv.Generate(7, 5000, 1)
//	// hudu.Config{URL: srv.URL, APIKey: srv.APIKey}
package hudutest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fakeapi"
)

// DefaultAPIKey is the key a Server accepts unless Options say otherwise.
const DefaultAPIKey = "hudu-fake-key-0123456789abcdef"

// APIPath is where the API lives on an instance.
const APIPath = "/api/v1"

// DefaultPageSize is Hudu's page size when page_size is absent.
const DefaultPageSize = 25

// Request kinds counted by the server and addressed by faults.
const (
	KindListPasswords  = "asset_passwords.list"
	KindCreatePassword = "asset_passwords.create"
	KindShowPassword   = "asset_passwords.show"
	KindUpdatePassword = "asset_passwords.update"
	KindListCompanies  = "companies.list"
	KindShowCompany    = "companies.show"
	KindOther          = "other"
)

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// APIKey is the key the server accepts (default DefaultAPIKey).
	APIKey string
	// MaxPageSize caps page_size silently (0: no cap), to test clients
	// against an instance that honours less than they ask for.
	MaxPageSize int
	// RateLimit is how many requests the instance accepts per RateWindow
	// (default 300 per minute); negative disables the limit.
	RateLimit  int
	RateWindow time.Duration
	// RetryAfter adds Retry-After (seconds until the window frees) to
	// rate-limit answers; Hudu's sending it is unconfirmed, so the default
	// is the bare "Retry later".
	RetryAfter bool
	// Latency delays every answer.
	Latency time.Duration
	// Addr is the loopback address to listen on; empty picks a free port.
	Addr string
}

// Fault is an injected failure.
type Fault = fakeapi.Fault

// AssetPassword is an asset password as the fake stores it.
type AssetPassword struct {
	ID           int
	CompanyID    int
	Name         string
	Username     string
	Password     string
	URL          string
	Description  string
	PasswordType string
	InPortal     bool
	Archived     bool
	CreatedAt    time.Time
}

// Company is a Hudu company.
type Company struct {
	ID   int
	Name string
	// IDInIntegration is the PSA company id it syncs with, if any.
	IDInIntegration string
}

// Server is a running fake.
type Server struct {
	// URL is the instance's base (https://docs.msp.example for real); the
	// API is under URL+APIPath.
	URL string
	// APIKey is the accepted key.
	APIKey string

	opts Options
	srv  *httptest.Server

	fakeapi.Traffic // counters, arrivals, rate limit, faults, latency

	mu        sync.Mutex
	companies map[int]*Company
	passwords map[int]*AssetPassword
	nextID    int
}

// NewServer starts a fake on loopback; it panics when Options.Addr cannot be
// listened on (use Start to get the error).
func NewServer(o Options) *Server {
	s, err := Start(o)
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a fake on loopback.
func Start(o Options) (*Server, error) {
	if o.APIKey == "" {
		o.APIKey = DefaultAPIKey
	}
	if o.RateLimit == 0 {
		o.RateLimit = 300
	}
	if o.RateWindow <= 0 {
		o.RateWindow = time.Minute
	}
	s := &Server{
		APIKey:    o.APIKey,
		opts:      o,
		companies: map[int]*Company{},
		passwords: map[int]*AssetPassword{},
		nextID:    100,
	}
	s.SetLatency(o.Latency)
	s.SetRateLimit(o.RateLimit, o.RateWindow)
	srv, err := fakeapi.Serve(o.Addr, http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, fmt.Errorf("hudutest: %w", err)
	}
	s.srv = srv
	s.URL = s.srv.URL
	return s, nil
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AddCompany adds (or renames) a company.
func (s *Server) AddCompany(id int, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.companies[id] = &Company{ID: id, Name: name}
}

// PutCompany adds or replaces a company with every field, e.g. one that
// syncs with a PSA company (IDInIntegration).
func (s *Server) PutCompany(c Company) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := c
	s.companies[c.ID] = &cc
}

// AddPassword stores an asset password (its company is created when
// missing) and returns its id; a zero ID is assigned.
func (s *Server) AddPassword(p AssetPassword) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(p)
}

func (s *Server) addLocked(p AssetPassword) int {
	if s.companies[p.CompanyID] == nil {
		s.companies[p.CompanyID] = &Company{ID: p.CompanyID, Name: fmt.Sprintf("Company %d", p.CompanyID)}
	}
	if p.ID == 0 {
		s.nextID++
		p.ID = s.nextID
	} else if p.ID > s.nextID {
		s.nextID = p.ID
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	pp := p
	s.passwords[p.ID] = &pp
	return p.ID
}

// Passwords returns a company's asset passwords by id.
func (s *Server) Passwords(company int) []AssetPassword {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(company)
}

func (s *Server) listLocked(company int) []AssetPassword {
	var out []AssetPassword
	for _, p := range s.passwords {
		if p.CompanyID == company {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

var (
	givenNames = []string{"jane", "john", "maria", "ahmed", "li", "olga", "pedro", "fatima", "tom", "aiko", "noah", "emma", "lucas", "mia", "omar", "sara"}
	surnames   = []string{"doe", "smith", "garcia", "khan", "wei", "ivanova", "silva", "haddad", "brown", "sato", "miller", "jones", "martin", "rossi", "nagy", "berg"}
	genTypes   = []string{"Active Directory", "Active Directory", "Active Directory", "Office 365", "Microsoft 365", "Azure AD", "Local Account", "Firewall", "Website", ""}
)

// Generate adds n deterministic asset passwords to a company (created when
// missing) from a seed: usernames are unique within the batch and spelled
// as sAMAccountName, UPN or DOMAIN\name; password types vary (including
// none); about one in fifty is archived. It returns the new ids.
func (s *Server) Generate(company, n int, seed uint64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := rand.New(rand.NewPCG(seed, uint64(company)))
	ids := make([]int, 0, n)
	for i := range n {
		g, sn := givenNames[r.IntN(len(givenNames))], surnames[r.IntN(len(surnames))]
		sam := fmt.Sprintf("%c%s%d", g[0], sn, i)
		user := sam
		switch r.IntN(4) {
		case 1:
			user = fmt.Sprintf("%s.%s%d@co%d.example", g, sn, i, company)
		case 2:
			user = fmt.Sprintf(`CO%d\%s`, company, sam)
		}
		typ := genTypes[r.IntN(len(genTypes))]
		ids = append(ids, s.addLocked(AssetPassword{
			CompanyID: company, Name: fmt.Sprintf("%s %s (%s)", g, sn, typ), Username: user,
			Password: fmt.Sprintf("gen-%d-%d", seed, r.Uint32()), PasswordType: typ, Archived: r.IntN(50) == 0,
		}))
	}
	return ids
}

func kindOf(r *http.Request) string {
	p, ok := strings.CutPrefix(strings.TrimSuffix(r.URL.Path, "/"), APIPath)
	if !ok {
		return KindOther
	}
	switch {
	case p == "/asset_passwords" && r.Method == http.MethodPost:
		return KindCreatePassword
	case p == "/asset_passwords":
		return KindListPasswords
	case strings.HasPrefix(p, "/asset_passwords/") && (r.Method == http.MethodPut || r.Method == http.MethodPatch):
		return KindUpdatePassword
	case strings.HasPrefix(p, "/asset_passwords/"):
		return KindShowPassword
	case p == "/companies":
		return KindListCompanies
	case strings.HasPrefix(p, "/companies/"):
		return KindShowCompany
	}
	return KindOther
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	kind := kindOf(r)
	if key := r.Header.Get("x-api-key"); key == "" || key != s.APIKey {
		s.Note(kind)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Invalid API key"})
		return
	}
	f, lat, wait := s.Admit(kind)
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
	if wait > 0 {
		if s.opts.RetryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		}
		retryLater(w)
		return
	}
	if f != nil && (f.Status != 0 || f.Malformed) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		switch {
		case f.Malformed:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(max(f.Status, http.StatusOK))
			_, _ = w.Write([]byte(`{"asset_passwords":[{"id":1,"name":"Ja`))
		case f.Status == http.StatusTooManyRequests:
			retryLater(w)
		default:
			writeJSON(w, f.Status, map[string]string{"error": http.StatusText(f.Status)})
		}
		return
	}
	p, _ := strings.CutPrefix(strings.TrimSuffix(r.URL.Path, "/"), APIPath)
	switch {
	case kind == KindListPasswords && r.Method == http.MethodGet:
		s.listPasswords(w, r)
	case kind == KindCreatePassword:
		s.createPassword(w, r)
	case kind == KindShowPassword && r.Method == http.MethodGet:
		s.showPassword(w, strings.TrimPrefix(p, "/asset_passwords/"))
	case kind == KindUpdatePassword:
		s.updatePassword(w, r, strings.TrimPrefix(p, "/asset_passwords/"))
	case kind == KindListCompanies && r.Method == http.MethodGet:
		s.listCompanies(w, r)
	case kind == KindShowCompany && r.Method == http.MethodGet:
		s.showCompany(w, strings.TrimPrefix(p, "/companies/"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
	}
}

// retryLater is Rack::Attack's throttled answer, as Hudu sends it.
func retryLater(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("Retry later\n"))
}

// paging reads page and page_size; it answers the error itself.
func (s *Server) paging(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	q := r.URL.Query()
	page, size = 1, DefaultPageSize
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "page must be a positive integer"})
			return 0, 0, false
		}
		page = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "page_size must be a positive integer"})
			return 0, 0, false
		}
		size = n
	}
	if s.opts.MaxPageSize > 0 && size > s.opts.MaxPageSize {
		size = s.opts.MaxPageSize
	}
	return page, size, true
}

func window[T any](all []T, page, size int) []T {
	lo := min((page-1)*size, len(all))
	hi := min(lo+size, len(all))
	return all[lo:hi]
}

func (s *Server) listPasswords(w http.ResponseWriter, r *http.Request) {
	page, size, ok := s.paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	company := 0
	if v := q.Get("company_id"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "company_id must be an integer"})
			return
		}
		company = n
	}
	s.mu.Lock()
	var all []AssetPassword
	for _, p := range s.passwords {
		if company != 0 && p.CompanyID != company {
			continue
		}
		if v := q.Get("name"); v != "" && !strings.EqualFold(v, p.Name) {
			continue
		}
		if v := q.Get("archived"); v != "" && v != strconv.FormatBool(p.Archived) {
			continue
		}
		all = append(all, *p)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	out := []map[string]any{}
	for _, p := range window(all, page, size) {
		out = append(out, s.resourceLocked(p))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"asset_passwords": out})
}

func (s *Server) resourceLocked(p AssetPassword) map[string]any {
	ts := p.CreatedAt.UTC().Format(time.RFC3339Nano)
	co := s.companies[p.CompanyID]
	coName := ""
	if co != nil {
		coName = co.Name
	}
	return map[string]any{
		"id": p.ID, "company_id": p.CompanyID, "company_name": coName, "name": p.Name, "username": p.Username,
		// Hudu returns values in clear, in listings too.
		"password": p.Password, "otp_secret": nil, "url": p.URL, "login_url": nil, "description": p.Description,
		"password_type": p.PasswordType, "password_folder_id": nil, "password_folder_name": nil,
		"passwordable_type": nil, "passwordable_id": nil, "in_portal": p.InPortal, "archived": p.Archived,
		"slug":       fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(p.Name, " ", "-")), p.ID),
		"created_at": ts, "updated_at": ts,
	}
}

func (s *Server) showPassword(w http.ResponseWriter, idText string) {
	id, err := strconv.Atoi(idText)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if err != nil || p == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"asset_password": s.resourceLocked(*p)})
}

func (s *Server) createPassword(w http.ResponseWriter, r *http.Request) {
	var doc struct {
		AssetPassword map[string]any `json:"asset_password"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &doc); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid JSON"})
		return
	}
	if len(doc.AssetPassword) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Parameter missing", "details": "param is missing or the value is empty: asset_password"})
		return
	}
	a := doc.AssetPassword
	text := func(k string) string { v, _ := a[k].(string); return v }
	p := AssetPassword{Name: text("name"), Username: text("username"), Password: text("password"), URL: text("url"), Description: text("description"), PasswordType: text("password_type")}
	p.InPortal, _ = a["in_portal"].(bool)
	errs := map[string][]string{}
	switch v := a["company_id"].(type) {
	case float64:
		if v == float64(int(v)) {
			p.CompanyID = int(v)
		}
	case string:
		p.CompanyID, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.CompanyID == 0 {
		errs["company"] = append(errs["company"], "must exist")
	} else if s.companies[p.CompanyID] == nil {
		errs["company"] = append(errs["company"], "must exist")
	}
	if strings.TrimSpace(p.Name) == "" {
		errs["name"] = append(errs["name"], "can't be blank")
	}
	if p.Password == "" {
		errs["password"] = append(errs["password"], "can't be blank")
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": errs})
		return
	}
	p.CreatedAt = time.Now().UTC()
	p.ID = s.addLocked(p)
	writeJSON(w, http.StatusOK, map[string]any{"asset_password": s.resourceLocked(p)})
}

func companyResource(c Company) map[string]any {
	var idInIntegration any
	if c.IDInIntegration != "" {
		idInIntegration = c.IDInIntegration
	}
	return map[string]any{"id": c.ID, "name": c.Name, "id_in_integration": idInIntegration, "archived": false, "url": fmt.Sprintf("/c/%d", c.ID)}
}

func (s *Server) listCompanies(w http.ResponseWriter, r *http.Request) {
	page, size, ok := s.paging(w, r)
	if !ok {
		return
	}
	name, integ := r.URL.Query().Get("name"), r.URL.Query().Get("id_in_integration")
	s.mu.Lock()
	var all []Company
	for _, c := range s.companies {
		if (name == "" || strings.EqualFold(name, c.Name)) && (integ == "" || integ == c.IDInIntegration) {
			all = append(all, *c)
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	out := []map[string]any{}
	for _, c := range window(all, page, size) {
		out = append(out, companyResource(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"companies": out})
}

func (s *Server) showCompany(w http.ResponseWriter, idText string) {
	id, err := strconv.Atoi(idText)
	s.mu.Lock()
	c := s.companies[id]
	s.mu.Unlock()
	if err != nil || c == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"company": companyResource(*c)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

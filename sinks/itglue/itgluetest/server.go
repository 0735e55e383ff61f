// Package itgluetest is a fake IT Glue API for tests, benchmarks and the
// sandbox. It serves what autoimport calls — organizations, passwords
// (listed per organization, created, shown, updated) and password
// categories — and enforces what the real API enforces: the x-api-key
// header (403 when missing or wrong), page[size] at most 1,000 (400, or
// clamped), meta paging with next-page, application/vnd.api+json on bodies
// (415), a request
// counter per key and window (3,000 per 5 minutes by default, then 429),
// and password values hidden unless shown with a key that has Password
// Access. Entries created through the API show up in the next listing.
// Faults (429 with Retry-After, 5xx, malformed bodies, latency) are
// injected per request kind, and every request is counted by kind.
//
// It runs on loopback and needs no *testing.T:
//
//	srv := itgluetest.NewServer(itgluetest.Options{})
//	defer srv.Close()
//	srv.AddOrganization(7, "Acme")
//	srv.Generate(7, 5000, 1)
//	// itglue.Config{URL: srv.URL, APIKey: srv.APIKey}
package itgluetest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fakeapi"
)

// DefaultAPIKey is the key a Server accepts unless Options say otherwise.
const DefaultAPIKey = "ITG.fake0123456789abcdef.not-a-real-key"

// MediaType is the JSON:API content type.
const MediaType = "application/vnd.api+json"

// Request kinds counted by the server and addressed by faults.
const (
	KindListPasswords    = "passwords.list"
	KindCreatePassword   = "passwords.create"
	KindShowPassword     = "passwords.show"
	KindUpdatePassword   = "passwords.update"
	KindListCategories   = "categories.list"
	KindCreateCategory   = "categories.create"
	KindListOrganization = "organizations.list"
	KindShowOrganization = "organizations.show"
	KindOther            = "other"
)

// Options configures a Server. Zero values pick the defaults.
type Options struct {
	// APIKey is the key the server accepts (default DefaultAPIKey).
	APIKey string
	// NoPasswordAccess makes the key one without Password Access: shows
	// never carry the value and creating a password is refused (403);
	// listings still work.
	NoPasswordAccess bool
	// ClampPageSize reduces a page[size] above 1,000 to 1,000 instead of
	// answering 400.
	ClampPageSize bool
	// RateLimit is how many requests the key may send per RateWindow
	// (default 3,000 per 5 minutes); negative disables the limit.
	RateLimit  int
	RateWindow time.Duration
	// NoRetryAfter leaves Retry-After out of rate-limit answers (IT Glue's
	// sending it is unconfirmed).
	NoRetryAfter bool
	// OmitCategoryNames leaves password-category-name null in password
	// resources, as some list answers do, so clients must map ids to names.
	OmitCategoryNames bool
	// DenyCategoryCreate answers 403 to POST /password_categories.
	DenyCategoryCreate bool
	// Latency delays every answer.
	Latency time.Duration
	// Addr is the loopback address to listen on, e.g. "127.0.0.1:8443";
	// empty picks a free port.
	Addr string
}

// Fault is an injected failure.
type Fault = fakeapi.Fault

// Password is a password entry as the fake stores it.
type Password struct {
	ID             int
	OrganizationID int
	Name           string
	Username       string
	// Value is the secret, shown only by a show with Password Access.
	Value string
	URL   string
	Notes string
	// CategoryID is 0 for an entry without a category.
	CategoryID int
	Archived   bool
	// MyGlue marks a personal entry; Restricted one whose access is
	// limited to chosen users ("only me").
	MyGlue, Restricted bool
	CreatedAt          time.Time
}

// Organization is an IT Glue organization.
type Organization struct {
	ID   int
	Name string
	// PSAID and PSAType link it to a PSA company (filter[psa_id] with
	// filter[psa_integration_type], e.g. "manage" or "autotask").
	PSAID, PSAType string
}

// Server is a running fake.
type Server struct {
	// URL is the API base (https://api.itglue.com for real).
	URL string
	// APIKey is the accepted key.
	APIKey string

	opts Options
	srv  *httptest.Server

	fakeapi.Traffic // counters, arrivals, rate limit, faults, latency

	mu        sync.Mutex
	orgs      map[int]*Organization
	passwords map[int]*Password
	// byOrg holds each organization's entry ids in ascending order, so
	// that a listing page walks one organization's entries in id order
	// instead of copying and sorting every entry for every page.
	byOrg      map[int][]int
	categories map[int]string
	nextID     int
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
		o.RateLimit = 3000
	}
	if o.RateWindow <= 0 {
		o.RateWindow = 5 * time.Minute
	}
	s := &Server{
		APIKey:     o.APIKey,
		opts:       o,
		orgs:       map[int]*Organization{},
		passwords:  map[int]*Password{},
		byOrg:      map[int][]int{},
		categories: map[int]string{},
		nextID:     1000,
	}
	s.SetLatency(o.Latency)
	s.SetRateLimit(o.RateLimit, o.RateWindow)
	srv, err := fakeapi.Serve(o.Addr, http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, fmt.Errorf("itgluetest: %w", err)
	}
	s.srv = srv
	s.URL = s.srv.URL
	return s, nil
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AddOrganization adds (or renames) an organization.
func (s *Server) AddOrganization(id int, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[id] = &Organization{ID: id, Name: name}
}

// PutOrganization adds or replaces an organization with every field.
func (s *Server) PutOrganization(o Organization) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oo := o
	s.orgs[o.ID] = &oo
}

// AddCategory adds a password category by name and returns its id; an
// existing category of that name keeps its id.
func (s *Server) AddCategory(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.categoryLocked(name)
}

func (s *Server) categoryLocked(name string) int {
	for id, n := range s.categories {
		if strings.EqualFold(n, name) {
			return id
		}
	}
	s.nextID++
	s.categories[s.nextID] = name
	return s.nextID
}

// Categories returns the category names by id.
func (s *Server) Categories() map[int]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]string, len(s.categories))
	for k, v := range s.categories {
		out[k] = v
	}
	return out
}

// AddPassword stores an entry in an existing or new organization and
// returns its id. A zero ID is assigned; category names the category by
// name ("" for none), created when missing.
func (s *Server) AddPassword(p Password, category string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if category != "" {
		p.CategoryID = s.categoryLocked(category)
	}
	return s.addLocked(p)
}

func (s *Server) addLocked(p Password) int {
	if s.orgs[p.OrganizationID] == nil {
		s.orgs[p.OrganizationID] = &Organization{ID: p.OrganizationID, Name: fmt.Sprintf("Organization %d", p.OrganizationID)}
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
	if old := s.passwords[p.ID]; old != nil {
		s.unindexLocked(old)
	}
	pp := p
	s.passwords[p.ID] = &pp
	ids := s.byOrg[p.OrganizationID]
	if i, found := slices.BinarySearch(ids, p.ID); !found {
		s.byOrg[p.OrganizationID] = slices.Insert(ids, i, p.ID)
	}
	return p.ID
}

// unindexLocked takes an entry out of its organization's ids.
func (s *Server) unindexLocked(p *Password) {
	ids := s.byOrg[p.OrganizationID]
	if i, found := slices.BinarySearch(ids, p.ID); found {
		s.byOrg[p.OrganizationID] = slices.Delete(ids, i, i+1)
	}
}

// Passwords returns an organization's entries by id.
func (s *Server) Passwords(org int) []Password {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(org)
}

func (s *Server) listLocked(org int) []Password {
	out := make([]Password, 0, len(s.byOrg[org]))
	for _, id := range s.byOrg[org] {
		out = append(out, *s.passwords[id])
	}
	return out
}

var (
	givenNames = []string{"jane", "john", "maria", "ahmed", "li", "olga", "pedro", "fatima", "tom", "aiko", "noah", "emma", "lucas", "mia", "omar", "sara"}
	surnames   = []string{"doe", "smith", "garcia", "khan", "wei", "ivanova", "silva", "haddad", "brown", "sato", "miller", "jones", "martin", "rossi", "nagy", "berg"}
	// genCategories are weighted by repetition; "" is an entry without a
	// category.
	genCategories = []string{"Active Directory", "Active Directory", "Active Directory", "Office 365", "Microsoft 365", "Azure AD", "Local Account", "Network Device", "Application", ""}
)

// Generate adds n deterministic entries to an organization (created when
// missing) from a seed: usernames are unique within the batch and spelled
// as sAMAccountName, UPN or DOMAIN\name; categories vary (including none);
// about one in fifty is archived, one in a hundred personal or restricted.
// It returns the new entries' ids.
func (s *Server) Generate(org, n int, seed uint64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := rand.New(rand.NewPCG(seed, uint64(org)))
	ids := make([]int, 0, n)
	for i := range n {
		g, sn := givenNames[r.IntN(len(givenNames))], surnames[r.IntN(len(surnames))]
		sam := fmt.Sprintf("%c%s%d", g[0], sn, i)
		user := sam
		switch r.IntN(4) {
		case 1:
			user = fmt.Sprintf("%s.%s%d@org%d.example", g, sn, i, org)
		case 2:
			user = fmt.Sprintf(`ORG%d\%s`, org, sam)
		}
		cat := genCategories[r.IntN(len(genCategories))]
		p := Password{
			OrganizationID: org,
			Name:           fmt.Sprintf("%s %s (%s)", g, sn, cat),
			Username:       user,
			Value:          fmt.Sprintf("gen-%d-%d", seed, r.Uint32()),
			Archived:       r.IntN(50) == 0,
			MyGlue:         r.IntN(200) == 0,
			Restricted:     r.IntN(200) == 0,
		}
		if cat != "" {
			p.CategoryID = s.categoryLocked(cat)
		}
		ids = append(ids, s.addLocked(p))
	}
	return ids
}

func kindOf(r *http.Request) string {
	p := strings.TrimSuffix(r.URL.Path, "/")
	post := r.Method == http.MethodPost
	switch {
	case p == "/passwords" && post, strings.HasSuffix(p, "/relationships/passwords") && post:
		return KindCreatePassword
	case p == "/passwords", strings.HasSuffix(p, "/relationships/passwords"):
		return KindListPasswords
	case (strings.HasPrefix(p, "/passwords/") || strings.Contains(p, "/relationships/passwords/")) && r.Method == http.MethodPatch:
		return KindUpdatePassword
	case strings.HasPrefix(p, "/passwords/"), strings.Contains(p, "/relationships/passwords/"):
		return KindShowPassword
	case p == "/password_categories" && post:
		return KindCreateCategory
	case p == "/password_categories":
		return KindListCategories
	case p == "/organizations":
		return KindListOrganization
	case strings.HasPrefix(p, "/organizations/") && strings.Count(p, "/") == 2:
		return KindShowOrganization
	}
	return KindOther
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Authentication comes first: an unauthenticated request is neither
	// counted against the key's rate nor faulted.
	kind := kindOf(r)
	if key := r.Header.Get("x-api-key"); key == "" || key != s.APIKey {
		s.Note(kind)
		writeError(w, http.StatusForbidden, "Forbidden", "Invalid API key")
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
		if !s.opts.NoRetryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		}
		writeError(w, http.StatusTooManyRequests, "Too Many Requests", "Rate limit exceeded")
		return
	}
	if f != nil && (f.Status != 0 || f.Malformed) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Malformed {
			w.Header().Set("Content-Type", MediaType)
			w.WriteHeader(max(f.Status, http.StatusOK))
			_, _ = w.Write([]byte(`{"data":[{"id":"1","type":"passwords","attributes":{"name":"Ja`))
			return
		}
		writeError(w, f.Status, http.StatusText(f.Status), "Injected failure")
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut {
		mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
		if !strings.EqualFold(strings.TrimSpace(mt), MediaType) {
			writeError(w, http.StatusUnsupportedMediaType, "Unsupported Media Type", "Content-Type must be "+MediaType)
			return
		}
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case kind == KindListPasswords:
		org := 0
		if len(parts) == 4 {
			org = s.orgFromPath(w, parts[1])
		} else if v := r.URL.Query().Get("filter[organization_id]"); v != "" {
			org = s.orgFromPath(w, v)
		} else {
			writeError(w, http.StatusBadRequest, "Bad Request", "filter[organization_id] is required by this fake")
			return
		}
		if org > 0 {
			s.listPasswords(w, r, org)
		}
	case kind == KindCreatePassword:
		org := 0
		if len(parts) == 4 {
			if org = s.orgFromPath(w, parts[1]); org == 0 {
				return
			}
		}
		s.createPassword(w, r, org)
	case kind == KindShowPassword:
		s.showPassword(w, r, parts[len(parts)-1])
	case kind == KindUpdatePassword:
		s.updatePassword(w, r, parts)
	case kind == KindListCategories:
		s.listCategories(w, r)
	case kind == KindCreateCategory:
		s.createCategory(w, r)
	case kind == KindListOrganization:
		s.listOrganizations(w, r)
	case kind == KindShowOrganization && r.Method == http.MethodGet:
		if org := s.orgFromPath(w, parts[1]); org > 0 {
			s.mu.Lock()
			o := *s.orgs[org]
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"data": orgResource(o)})
		}
	default:
		writeError(w, http.StatusNotFound, "Not Found", "No route matches "+r.Method+" "+r.URL.Path)
	}
}

// orgFromPath parses an organization id and checks it exists; it answers
// the error itself and returns 0 on failure.
func (s *Server) orgFromPath(w http.ResponseWriter, v string) int {
	id, err := strconv.Atoi(v)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("organization id %q is invalid", v))
		return 0
	}
	s.mu.Lock()
	_, ok := s.orgs[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", fmt.Sprintf("Organization %d not found", id))
		return 0
	}
	return id
}

// paging reads page[number] and page[size]; it answers the error itself.
func (s *Server) paging(w http.ResponseWriter, r *http.Request) (number, size int, ok bool) {
	q := r.URL.Query()
	number, size = 1, 50
	if v := q.Get("page[number]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "Bad Request", "page[number] must be a positive integer")
			return 0, 0, false
		}
		number = n
	}
	if v := q.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "Bad Request", "page[size] must be a positive integer")
			return 0, 0, false
		}
		if n > 1000 {
			if !s.opts.ClampPageSize {
				writeError(w, http.StatusBadRequest, "Bad Request", "page[size] must be less than or equal to 1000")
				return 0, 0, false
			}
			n = 1000
		}
		size = n
	}
	return number, size, true
}

func pageMeta(number, size, total int) map[string]any {
	pages := (total + size - 1) / size
	meta := map[string]any{"current-page": number, "next-page": nil, "prev-page": nil, "total-pages": pages, "total-count": total, "filters": map[string]any{}}
	if number < pages {
		meta["next-page"] = number + 1
	}
	if number > 1 {
		meta["prev-page"] = number - 1
	}
	return meta
}

func window[T any](all []T, number, size int) []T {
	lo := min((number-1)*size, len(all))
	hi := min(lo+size, len(all))
	return all[lo:hi]
}

func (s *Server) listPasswords(w http.ResponseWriter, r *http.Request, org int) {
	number, size, ok := s.paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	name, category, archived := q.Get("filter[name]"), q.Get("filter[password_category_id]"), q.Get("filter[archived]")
	s.mu.Lock()
	var kept []*Password
	for _, id := range s.byOrg[org] {
		p := s.passwords[id]
		if name != "" && !strings.EqualFold(name, p.Name) {
			continue
		}
		if category != "" && category != strconv.Itoa(p.CategoryID) {
			continue
		}
		if archived != "" && archived != strconv.FormatBool(p.Archived) {
			continue
		}
		kept = append(kept, p)
	}
	data := make([]map[string]any, 0, size)
	for _, p := range window(kept, number, size) {
		// Listings never carry the value, whatever show_password says.
		data = append(data, s.resourceLocked(*p, false))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": pageMeta(number, size, len(kept)), "links": map[string]any{}})
}

func (s *Server) resourceLocked(p Password, withValue bool) map[string]any {
	orgName := ""
	if o := s.orgs[p.OrganizationID]; o != nil {
		orgName = o.Name
	}
	var catID, catName any
	if p.CategoryID != 0 {
		catID, catName = p.CategoryID, s.categories[p.CategoryID]
		if s.opts.OmitCategoryNames {
			catName = nil
		}
	}
	null := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	ts := p.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	attrs := map[string]any{
		"organization-id": p.OrganizationID, "organization-name": orgName, "resource-url": fmt.Sprintf("%s/%d/passwords/%d", s.URL, p.OrganizationID, p.ID),
		"restricted": p.Restricted, "my-glue": p.MyGlue, "name": p.Name, "username": null(p.Username), "url": null(p.URL), "notes": null(p.Notes),
		"password-updated-at": ts, "updated-by": nil, "resource-id": nil, "resource-type": nil, "cached-resource-type-name": nil, "cached-resource-name": nil,
		"password-category-id": catID, "password-category-name": catName, "created-at": ts, "updated-at": ts, "archived": p.Archived,
	}
	if withValue {
		attrs["password"] = p.Value
		attrs["is-live"] = true
	}
	return map[string]any{"id": strconv.Itoa(p.ID), "type": "passwords", "attributes": attrs, "relationships": map[string]any{}}
}

func (s *Server) showPassword(w http.ResponseWriter, r *http.Request, idText string) {
	id, err := strconv.Atoi(idText)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if err != nil || p == nil {
		writeError(w, http.StatusNotFound, "Not Found", "Record not found")
		return
	}
	show := r.URL.Query().Get("show_password") != "false" && !s.opts.NoPasswordAccess
	writeJSON(w, http.StatusOK, map[string]any{"data": s.resourceLocked(*p, show)})
}

type resourceDoc struct {
	Data json.RawMessage `json:"data"`
}

type newPassword struct {
	Type       string         `json:"type"`
	Attributes map[string]any `json:"attributes"`
}

func (s *Server) createPassword(w http.ResponseWriter, r *http.Request, org int) {
	if s.opts.NoPasswordAccess {
		writeError(w, http.StatusForbidden, "Forbidden", "This API key does not have password access")
		return
	}
	var doc resourceDoc
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Data) == 0 {
		writeError(w, http.StatusBadRequest, "Bad Request", "body must be a JSON:API document with data")
		return
	}
	var items []newPassword
	bulk := strings.HasPrefix(strings.TrimSpace(string(doc.Data)), "[")
	if bulk {
		if err := json.Unmarshal(doc.Data, &items); err != nil {
			writeError(w, http.StatusBadRequest, "Bad Request", "data must be a resource object or an array of them")
			return
		}
	} else {
		var one newPassword
		if err := json.Unmarshal(doc.Data, &one); err != nil {
			writeError(w, http.StatusBadRequest, "Bad Request", "data must be a resource object")
			return
		}
		items = []newPassword{one}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var made []Password
	for _, it := range items {
		if it.Type != "passwords" {
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", fmt.Sprintf("type must be passwords, not %q", it.Type))
			return
		}
		a := it.Attributes
		get := func(kebab, snake string) (any, bool) {
			if v, ok := a[kebab]; ok {
				return v, true
			}
			v, ok := a[snake]
			return v, ok
		}
		text := func(kebab, snake string) string {
			v, _ := get(kebab, snake)
			s, _ := v.(string)
			return s
		}
		p := Password{OrganizationID: org, Name: text("name", "name"), Username: text("username", "username"), Value: text("password", "password"), URL: text("url", "url"), Notes: text("notes", "notes")}
		if v, ok := get("organization-id", "organization_id"); ok {
			n, good := intOf(v)
			if !good || (org != 0 && n != org) {
				writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "organization-id does not match the organization")
				return
			}
			p.OrganizationID = n
		}
		if p.OrganizationID == 0 {
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "organization-id is required")
			return
		}
		if s.orgs[p.OrganizationID] == nil {
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", fmt.Sprintf("Organization %d not found", p.OrganizationID))
			return
		}
		if strings.TrimSpace(p.Name) == "" {
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "name can't be blank")
			return
		}
		if p.Value == "" {
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "password can't be blank")
			return
		}
		if v, ok := get("password-category-id", "password_category_id"); ok && v != nil {
			n, good := intOf(v)
			if !good || s.categories[n] == "" {
				writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", fmt.Sprintf("password category %v not found", v))
				return
			}
			p.CategoryID = n
		}
		if v, ok := get("restricted", "restricted"); ok {
			p.Restricted, _ = v.(bool)
		}
		p.CreatedAt = time.Now().UTC()
		made = append(made, p)
	}
	out := make([]map[string]any, 0, len(made))
	for _, p := range made {
		p.ID = s.addLocked(p)
		// show_password defaults to false on create.
		out = append(out, s.resourceLocked(p, r.URL.Query().Get("show_password") == "true" && !s.opts.NoPasswordAccess))
	}
	if bulk {
		writeJSON(w, http.StatusOK, map[string]any{"data": out})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"data": out[0]})
}

func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

func (s *Server) listCategories(w http.ResponseWriter, r *http.Request) {
	number, size, ok := s.paging(w, r)
	if !ok {
		return
	}
	filter := r.URL.Query().Get("filter[name]")
	s.mu.Lock()
	ids := make([]int, 0, len(s.categories))
	for id, n := range s.categories {
		if filter == "" || strings.EqualFold(filter, n) {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	data := []map[string]any{}
	for _, id := range window(ids, number, size) {
		data = append(data, categoryResource(id, s.categories[id]))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": pageMeta(number, size, len(ids))})
}

func categoryResource(id int, name string) map[string]any {
	return map[string]any{"id": strconv.Itoa(id), "type": "password-categories", "attributes": map[string]any{"name": name, "created-at": "2024-01-02T03:04:05.000Z", "updated-at": "2024-01-02T03:04:05.000Z"}}
}

func (s *Server) createCategory(w http.ResponseWriter, r *http.Request) {
	if s.opts.DenyCategoryCreate {
		writeError(w, http.StatusForbidden, "Forbidden", "This API key may not create password categories")
		return
	}
	var doc struct {
		Data struct {
			Type       string `json:"type"`
			Attributes struct {
				Name string `json:"name"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&doc); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request", "body must be a JSON:API document")
		return
	}
	name := strings.TrimSpace(doc.Data.Attributes.Name)
	if doc.Data.Type != "password-categories" || name == "" {
		writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "type must be password-categories and name can't be blank")
		return
	}
	s.mu.Lock()
	for _, n := range s.categories {
		if strings.EqualFold(n, name) {
			s.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "name has already been taken")
			return
		}
	}
	id := s.categoryLocked(name)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"data": categoryResource(id, name)})
}

func orgResource(o Organization) map[string]any {
	return map[string]any{"id": strconv.Itoa(o.ID), "type": "organizations", "attributes": map[string]any{
		"name": o.Name, "organization-type-name": "Customer", "organization-status-name": "Active", "short-name": strings.ToLower(strings.ReplaceAll(o.Name, " ", "")),
		"primary": false, "quick-notes": nil, "created-at": "2024-01-02T03:04:05.000Z", "updated-at": "2024-01-02T03:04:05.000Z"}}
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	number, size, ok := s.paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	filter, psaID, psaType := q.Get("filter[name]"), q.Get("filter[psa_id]"), q.Get("filter[psa_integration_type]")
	if (psaID == "") != (psaType == "") {
		writeError(w, http.StatusBadRequest, "Bad Request", "filter[psa_id] must be used together with filter[psa_integration_type]")
		return
	}
	s.mu.Lock()
	var orgs []Organization
	for _, o := range s.orgs {
		if (filter == "" || strings.EqualFold(filter, o.Name)) && (psaID == "" || (psaID == o.PSAID && strings.EqualFold(psaType, o.PSAType))) {
			orgs = append(orgs, *o)
		}
	}
	s.mu.Unlock()
	sort.Slice(orgs, func(i, j int) bool { return orgs[i].ID < orgs[j].ID })
	data := []map[string]any{}
	for _, o := range window(orgs, number, size) {
		data = append(data, orgResource(o))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": pageMeta(number, size, len(orgs))})
}

// writeError writes a JSON:API error document.
func writeError(w http.ResponseWriter, status int, title, detail string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"status": strconv.Itoa(status), "title": title, "detail": detail}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

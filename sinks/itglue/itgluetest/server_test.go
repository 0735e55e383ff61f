package itgluetest

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func do(t *testing.T, s *Server, method, path, key, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddOrganization(7, "Acme")
	id := s.AddPassword(Password{OrganizationID: 7, Name: "Jane", Username: "jdoe", Value: "TopSecretValue"}, "Active Directory")
	list := "/organizations/7/relationships/passwords"
	create := `{"data":{"type":"passwords","attributes":{"organization-id":7,"name":"New","username":"new","password":"AnotherSecret","password-category-id":` + jsonInt(s, "Active Directory") + `}}}`
	tests := []struct {
		name, method, path, key, ctype, body string
		status                               int
		contains, lacks                      string
	}{
		{"no key", "GET", list, "", "", "", 403, "Invalid API key", ""},
		{"wrong key", "GET", list, "ITG.wrong", "", "", 403, "Invalid API key", ""},
		{"list hides values", "GET", list + "?show_password=true", s.APIKey, "", "", 200, `"username":"jdoe"`, "TopSecretValue"},
		{"page size over 1000", "GET", list + "?page[size]=1001", s.APIKey, "", "", 400, "page[size]", ""},
		{"bad page number", "GET", list + "?page[number]=0", s.APIKey, "", "", 400, "page[number]", ""},
		{"unknown organization", "GET", "/organizations/9/relationships/passwords", s.APIKey, "", "", 404, "not found", ""},
		{"create needs JSON:API media type", "POST", list, s.APIKey, "application/json", create, 415, "application/vnd.api+json", ""},
		{"create needs a password", "POST", list, s.APIKey, MediaType, `{"data":{"type":"passwords","attributes":{"name":"x"}}}`, 422, "password can't be blank", ""},
		{"create needs the right type", "POST", list, s.APIKey, MediaType, `{"data":{"type":"contacts","attributes":{"name":"x","password":"p"}}}`, 422, "type must be passwords", ""},
		{"create with unknown category", "POST", list, s.APIKey, MediaType, `{"data":{"type":"passwords","attributes":{"name":"x","password":"p","password-category-id":999999}}}`, 422, "category", ""},
		{"create hides the value", "POST", list, s.APIKey, MediaType, create, 201, `"name":"New"`, "AnotherSecret"},
		{"show reveals the value", "GET", "/passwords/" + itoa(id), s.APIKey, "", "", 200, "TopSecretValue", ""},
		{"show_password=false hides it", "GET", "/passwords/" + itoa(id) + "?show_password=false", s.APIKey, "", "", 200, `"name":"Jane"`, "TopSecretValue"},
		{"category exists already", "POST", "/password_categories", s.APIKey, MediaType, `{"data":{"type":"password-categories","attributes":{"name":"active directory"}}}`, 422, "already been taken", ""},
		{"category created", "POST", "/password_categories", s.APIKey, MediaType, `{"data":{"type":"password-categories","attributes":{"name":"Office 365"}}}`, 201, `"name":"Office 365"`, ""},
		{"organizations by name", "GET", "/organizations?filter[name]=acme", s.APIKey, "", "", 200, `"name":"Acme"`, ""},
		{"unknown route", "GET", "/configurations", s.APIKey, "", "", 404, "No route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, tt.method, tt.path, tt.key, tt.ctype, tt.body)
			if status != tt.status || !strings.Contains(body, tt.contains) || (tt.lacks != "" && strings.Contains(body, tt.lacks)) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	// The entry created above shows up in the next listing.
	_, _, body := do(t, s, "GET", list, s.APIKey, "", "")
	if !strings.Contains(body, `"name":"New"`) {
		t.Fatalf("created entry not listed: %s", body)
	}
	if got := s.Count(KindCreatePassword); got != 5 {
		t.Errorf("%d creates counted", got)
	}
}

func TestNoPasswordAccess(t *testing.T) {
	s := NewServer(Options{NoPasswordAccess: true})
	defer s.Close()
	id := s.AddPassword(Password{OrganizationID: 7, Name: "Jane", Value: "TopSecretValue"}, "")
	if _, _, body := do(t, s, "GET", "/passwords/"+itoa(id), s.APIKey, "", ""); strings.Contains(body, "TopSecretValue") || !strings.Contains(body, "Jane") {
		t.Fatalf("a key without Password Access saw: %s", body)
	}
}

func TestPagingAndClamp(t *testing.T) {
	s := NewServer(Options{ClampPageSize: true})
	defer s.Close()
	s.Generate(7, 1500, 2)
	var doc struct {
		Data []json.RawMessage `json:"data"`
		Meta struct {
			NextPage   *int `json:"next-page"`
			TotalCount int  `json:"total-count"`
			TotalPages int  `json:"total-pages"`
		} `json:"meta"`
	}
	_, _, body := do(t, s, "GET", "/passwords?filter[organization_id]=7&page[size]=5000", s.APIKey, "", "")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Data) != 1000 || doc.Meta.NextPage == nil || *doc.Meta.NextPage != 2 || doc.Meta.TotalCount != 1500 || doc.Meta.TotalPages != 2 {
		t.Fatalf("page 1: %d entries, meta %+v", len(doc.Data), doc.Meta)
	}
	_, _, body = do(t, s, "GET", "/passwords?filter[organization_id]=7&page[size]=1000&page[number]=2", s.APIKey, "", "")
	doc.Data, doc.Meta.NextPage = nil, nil
	_ = json.Unmarshal([]byte(body), &doc)
	if len(doc.Data) != 500 || doc.Meta.NextPage != nil {
		t.Fatalf("page 2: %d entries, next %v", len(doc.Data), doc.Meta.NextPage)
	}
	// Default page size.
	_, _, body = do(t, s, "GET", "/organizations/7/relationships/passwords", s.APIKey, "", "")
	doc.Data = nil
	_ = json.Unmarshal([]byte(body), &doc)
	if len(doc.Data) != 50 {
		t.Fatalf("default page: %d entries", len(doc.Data))
	}
}

func TestRateWindow(t *testing.T) {
	s := NewServer(Options{RateLimit: 2, RateWindow: time.Hour})
	defer s.Close()
	s.AddOrganization(7, "Acme")
	for i := range 3 {
		status, h, _ := do(t, s, "GET", "/organizations/7", s.APIKey, "", "")
		if i < 2 && status != 200 {
			t.Fatalf("request %d: %d", i, status)
		}
		if i == 2 && (status != 429 || h.Get("Retry-After") == "") {
			t.Fatalf("third request: %d, Retry-After %q", status, h.Get("Retry-After"))
		}
	}
	// Bad keys do not use up the window of the real key.
	if status, _, _ := do(t, s, "GET", "/organizations/7", "wrong", "", ""); status != 403 {
		t.Fatalf("bad key: %d", status)
	}
	if s.Throttled() != 1 || s.Count(KindShowOrganization) != 4 {
		t.Fatalf("throttled %d, counts %v", s.Throttled(), s.Counts())
	}
}

func TestFaults(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.Generate(7, 3, 1)
	s.Inject(Fault{Kind: KindListPasswords, After: 1, Status: 503, RetryAfter: "2"})
	s.Inject(Fault{Kind: KindListPasswords, Malformed: true})
	path := "/organizations/7/relationships/passwords"
	// The malformed fault applies first: the 503 fault lets one through.
	if _, _, body := do(t, s, "GET", path, s.APIKey, "", ""); json.Valid([]byte(body)) {
		t.Fatalf("not malformed: %s", body)
	}
	if status, h, _ := do(t, s, "GET", path, s.APIKey, "", ""); status != 503 || h.Get("Retry-After") != "2" {
		t.Fatalf("want 503 with Retry-After 2, got %d %q", status, h.Get("Retry-After"))
	}
	if status, _, _ := do(t, s, "GET", path, s.APIKey, "", ""); status != 200 {
		t.Fatalf("faults not used up: %d", status)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := NewServer(Options{}), NewServer(Options{})
	defer a.Close()
	defer b.Close()
	a.Generate(7, 300, 5)
	b.Generate(7, 300, 5)
	pa, pb := a.Passwords(7), b.Passwords(7)
	if !reflect.DeepEqual(pa, pb) {
		t.Fatal("same seed, different entries")
	}
	users, cats := map[string]bool{}, map[int]int{}
	for _, p := range pa {
		if users[strings.ToLower(p.Username)] {
			t.Fatalf("duplicate username %q", p.Username)
		}
		users[strings.ToLower(p.Username)] = true
		cats[p.CategoryID]++
	}
	if cats[0] == 0 || len(cats) < 5 {
		t.Fatalf("categories not varied: %v", cats)
	}
}

func TestCountersConcurrent(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddOrganization(7, "Acme")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, s, "GET", "/organizations/7", s.APIKey, "", "")
		}()
	}
	wg.Wait()
	if s.Count(KindShowOrganization) != 20 || s.Total() != 20 || len(s.Arrivals()) != 20 {
		t.Fatalf("counts %v", s.Counts())
	}
	s.ResetCounts()
	if s.Total() != 0 {
		t.Fatal("not reset")
	}
}

func TestStartOnAddress(t *testing.T) {
	s, err := Start(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %s", s.URL)
	}
	if _, err := Start(Options{Addr: "256.0.0.1:1"}); err == nil {
		t.Fatal("bad address accepted")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func jsonInt(s *Server, category string) string { return itoa(s.AddCategory(category)) }

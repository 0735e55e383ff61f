package hudutest

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

func do(t *testing.T, s *Server, method, path, key, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+APIPath+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func count(t *testing.T, body string) int {
	t.Helper()
	var doc struct {
		List []json.RawMessage `json:"asset_passwords"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return len(doc.List)
}

func TestContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddCompany(7, "Acme")
	s.Generate(7, 60, 1)
	s.Generate(8, 5, 1)
	tests := []struct {
		name, method, path, key, body string
		status                        int
		contains                      string
	}{
		{"no key", "GET", "/asset_passwords?company_id=7", "", "", 401, "Invalid API key"},
		{"wrong key", "GET", "/asset_passwords?company_id=7", "nope", "", 401, "Invalid API key"},
		{"bad page", "GET", "/asset_passwords?page=0", s.APIKey, "", 400, "page"},
		{"create without wrapper", "POST", "/asset_passwords", s.APIKey, `{"company_id":7,"name":"x","password":"p"}`, 400, "param is missing or the value is empty: asset_password"},
		{"create with blanks", "POST", "/asset_passwords", s.APIKey, `{"asset_password":{"company_id":7}}`, 422, `"name":["can't be blank"]`},
		{"create in missing company", "POST", "/asset_passwords", s.APIKey, `{"asset_password":{"company_id":99,"name":"x","password":"p"}}`, 422, `"company":["must exist"]`},
		{"create", "POST", "/asset_passwords", s.APIKey, `{"asset_password":{"company_id":7,"name":"New","username":"new","password":"p","password_type":"Active Directory"}}`, 200, `"password_type":"Active Directory"`},
		{"companies by name", "GET", "/companies?name=acme", s.APIKey, "", 200, `"name":"Acme"`},
		{"company", "GET", "/companies/7", s.APIKey, "", 200, `"company":{`},
		{"missing company", "GET", "/companies/70", s.APIKey, "", 404, "not found"},
		{"unknown route", "GET", "/articles", s.APIKey, "", 404, "Not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, tt.method, tt.path, tt.key, tt.body)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	// Default page size 25, page_size honoured, no totals, short last page.
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/asset_passwords?company_id=7", 25},
		{"/asset_passwords?company_id=7&page=3", 11},
		{"/asset_passwords?company_id=7&page_size=1000", 61},
		{"/asset_passwords?company_id=7&page_size=1000&page=2", 0},
		{"/asset_passwords?company_id=8&page_size=1000", 5},
	} {
		_, _, body := do(t, s, "GET", tt.path, s.APIKey, "")
		if got := count(t, body); got != tt.want {
			t.Errorf("%s: %d entries, want %d", tt.path, got, tt.want)
		}
	}
	// The created entry is listed, with its value in clear as Hudu does.
	if _, _, body := do(t, s, "GET", "/asset_passwords?company_id=7&name=New", s.APIKey, ""); count(t, body) != 1 || !strings.Contains(body, `"password":"p"`) {
		t.Fatalf("created entry: %s", body)
	}
}

func TestMaxPageSize(t *testing.T) {
	s := NewServer(Options{MaxPageSize: 10})
	defer s.Close()
	s.Generate(7, 15, 1)
	if _, _, body := do(t, s, "GET", "/asset_passwords?company_id=7&page_size=1000", s.APIKey, ""); count(t, body) != 10 {
		t.Fatalf("not capped: %d", count(t, body))
	}
}

func TestRateLimit(t *testing.T) {
	s := NewServer(Options{RateLimit: 2, RateWindow: time.Hour})
	defer s.Close()
	for i := range 3 {
		status, h, body := do(t, s, "GET", "/companies", s.APIKey, "")
		if i < 2 && status != 200 {
			t.Fatalf("request %d: %d", i, status)
		}
		if i == 2 && (status != 429 || strings.TrimSpace(body) != "Retry later" || h.Get("Retry-After") != "") {
			t.Fatalf("third: %d %q Retry-After %q", status, body, h.Get("Retry-After"))
		}
	}
	s2 := NewServer(Options{RateLimit: 1, RateWindow: time.Hour, RetryAfter: true})
	defer s2.Close()
	do(t, s2, "GET", "/companies", s2.APIKey, "")
	if status, h, _ := do(t, s2, "GET", "/companies", s2.APIKey, ""); status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("want Retry-After, got %d %q", status, h.Get("Retry-After"))
	}
	if s.Throttled() != 1 || s2.Throttled() != 1 {
		t.Fatal("throttles not counted")
	}
}

func TestFaults(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.Generate(7, 3, 1)
	s.Inject(Fault{Kind: KindListPasswords, Status: 429, RetryAfter: "1"})
	s.Inject(Fault{Kind: KindListPasswords, Malformed: true})
	s.Inject(Fault{Kind: KindCreatePassword, Status: 502})
	p := "/asset_passwords?company_id=7"
	if status, h, body := do(t, s, "GET", p, s.APIKey, ""); status != 429 || h.Get("Retry-After") != "1" || strings.TrimSpace(body) != "Retry later" {
		t.Fatalf("429 fault: %d %q", status, body)
	}
	if _, _, body := do(t, s, "GET", p, s.APIKey, ""); json.Valid([]byte(body)) {
		t.Fatalf("not malformed: %s", body)
	}
	if status, _, _ := do(t, s, "POST", "/asset_passwords", s.APIKey, `{"asset_password":{"company_id":7,"name":"x","password":"p"}}`); status != 502 {
		t.Fatalf("502 fault: %d", status)
	}
	if status, _, _ := do(t, s, "GET", p, s.APIKey, ""); status != 200 {
		t.Fatalf("faults not used up: %d", status)
	}
	if len(s.Passwords(7)) != 3 {
		t.Fatal("a faulted create was stored")
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := NewServer(Options{}), NewServer(Options{})
	defer a.Close()
	defer b.Close()
	a.Generate(7, 300, 5)
	b.Generate(7, 300, 5)
	pa := a.Passwords(7)
	if !reflect.DeepEqual(pa, b.Passwords(7)) {
		t.Fatal("same seed, different entries")
	}
	users, types := map[string]bool{}, map[string]int{}
	for _, p := range pa {
		if users[strings.ToLower(p.Username)] {
			t.Fatalf("duplicate username %q", p.Username)
		}
		users[strings.ToLower(p.Username)] = true
		types[p.PasswordType]++
	}
	if types[""] == 0 || len(types) < 5 {
		t.Fatalf("types not varied: %v", types)
	}
}

func TestCountersConcurrent(t *testing.T) {
	s := NewServer(Options{RateLimit: -1})
	defer s.Close()
	s.AddCompany(7, "Acme")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, s, "POST", "/asset_passwords", s.APIKey, `{"asset_password":{"company_id":7,"name":"x","password":"p"}}`)
		}()
	}
	wg.Wait()
	if s.Count(KindCreatePassword) != 20 || len(s.Passwords(7)) != 20 || len(s.Arrivals()) != 20 {
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
	if _, err := Start(Options{Addr: "256.0.0.1:1"}); err == nil {
		t.Fatal("bad address accepted")
	}
}

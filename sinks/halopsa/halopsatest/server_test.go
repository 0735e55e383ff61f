package halopsatest

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func (s *Server) tokenFor(t *testing.T) string {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL+"/auth/token?tenant="+s.Tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "scope": {"all"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	i := strings.Index(string(b), `"access_token":"`) + len(`"access_token":"`)
	return string(b[i : i+40])
}

func do(t *testing.T, s *Server, tok, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	site := s.AddClient(12, "Acme")
	s.AddClient(13, "Other")
	s.Generate(12, 30, 1)
	s.AddUser(User{ClientID: 12, FirstName: "Jane", Surname: "Doe", EmailAddress: "jane@acme.example", NetworkLogin: "jdoe"})
	tok := s.tokenFor(t)
	adv := url.QueryEscape(`[{"filter_name":"emailaddress","filter_type":2,"filter_value":"JANE@acme.example"}]`)
	badAdv := url.QueryEscape(`[{"filter_name":"title","filter_type":2,"filter_value":"x"}]`)
	cases := []struct {
		name, tok, method, path, body string
		status                        int
		want                          string
	}{
		{"no token", "", "GET", "/api/Users?client_id=12", "", 401, ""},
		{"paged", tok, "GET", "/api/Users?client_id=12&pageinate=true&page_size=10&page_no=2", "", 200, `"page_no":2`},
		{"fuzzy search", tok, "GET", "/api/Users?client_id=12&search=jane%20DOE", "", 200, `"emailaddress":"jane@acme.example"`},
		{"advanced search", tok, "GET", "/api/Users?client_id=12&advanced_search=" + adv, "", 200, `"networklogin":"jdoe"`},
		{"advanced search not whitelisted", tok, "GET", "/api/Users?advanced_search=" + badAdv, "", 400, "Invalid advanced search parameter"},
		{"object body", tok, "POST", "/api/Users", `{"name":"A B","client_id":12}`, 400, "must be an array"},
		{"float id", tok, "POST", "/api/Users", `[{"name":"A B","client_id":12.0}]`, 400, "client_id must be an integer"},
		{"string id", tok, "POST", "/api/Users", `[{"name":"A B","client_id":"12"}]`, 400, "client_id must be an integer"},
		{"site of another client", tok, "POST", "/api/Users", `[{"name":"A B","client_id":13,"site_id":` + itoa(site) + `}]`, 400, "does not belong"},
		{"create", tok, "POST", "/api/Users", `[{"name":"A B","firstname":"A","surname":"B","client_id":12,"site_id":` + itoa(site) + `}]`, 201, `"client_name":"Acme"`},
		{"sites", tok, "GET", "/api/Site?client_id=12", "", 200, `"name":"Main"`},
		{"client", tok, "GET", "/api/Client/12", "", 200, `"name":"Acme"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(t, s, tc.tok, tc.method, tc.path, tc.body)
			if st != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.path, st, body, tc.status, tc.want)
			}
		})
	}
	// 30 generated, Jane and the user created above.
	if _, body := do(t, s, tok, "GET", "/api/Users?client_id=12&includeinactive=true&pageinate=true&page_size=10&page_no=4", ""); strings.Count(body, `"id":`) != 2 || !strings.Contains(body, `"record_count":32`) {
		t.Errorf("last page: %s", body)
	}
	s.ExpireTokens()
	if st, _ := do(t, s, tok, "GET", "/api/Users?client_id=12", ""); st != 401 {
		t.Errorf("expired token answered %d", st)
	}
}

func TestTokenEndpoint(t *testing.T) {
	s := NewServer(Options{TokenLifetime: time.Minute})
	defer s.Close()
	cases := []struct {
		query  string
		form   url.Values
		status int
	}{
		{"?tenant=" + s.Tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}, 200},
		{"", url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}, 400},
		{"?tenant=" + s.Tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {"nope"}}, 401},
		{"?tenant=" + s.Tenant, url.Values{"grant_type": {"password"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}, 400},
	}
	for _, tc := range cases {
		resp, err := s.Client().PostForm(s.URL+"/auth/token"+tc.query, tc.form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("token %s %v: %d %s, want %d", tc.query, tc.form.Get("grant_type"), resp.StatusCode, b, tc.status)
		}
		if tc.status == 200 && !strings.Contains(string(b), `"expires_in":60`) {
			t.Errorf("token body %s", b)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{`[{"name":"A B","client_id":12}]`, `[{"client_id":12.5}]`, `{}`, `[]`, `[{"id":5,"emailaddress":"x@y"}]`, `[{"name":"x","client_id":12,"site_id":1e3}]`} {
		f.Add(s)
	}
	s := NewServer(Options{})
	defer s.Close()
	s.AddClient(12, "Acme")
	tok := ""
	f.Fuzz(func(t *testing.T, body string) {
		if tok == "" {
			tok = s.tokenFor(t)
		}
		before := len(s.Users(12))
		st, _ := do(t, s, tok, "POST", "/api/Users", body)
		after := len(s.Users(12))
		if st != 201 && after != before {
			t.Fatalf("refused body %q (status %d) still stored users", body, st)
		}
		if st >= 500 {
			t.Fatalf("body %q: status %d", body, st)
		}
	})
}

func TestGenerate(t *testing.T) {
	a, b := NewServer(Options{}), NewServer(Options{})
	defer a.Close()
	defer b.Close()
	a.Generate(1, 1000, 42)
	b.Generate(1, 1000, 42)
	ua, ub := a.Users(1), b.Users(1)
	names, emails := map[string]int{}, map[string]int{}
	for i := range ua {
		if ua[i] != ub[i] {
			t.Fatalf("same seed, different user %d: %+v vs %+v", i, ua[i], ub[i])
		}
		names[ua[i].Name]++
		if ua[i].EmailAddress != "" {
			emails[ua[i].EmailAddress]++
		}
	}
	dup := 0
	for _, n := range names {
		if n > 1 {
			dup++
		}
	}
	if dup == 0 || dup > 100 {
		t.Errorf("%d duplicate names in 1000, want some", dup)
	}
	for e, n := range emails {
		if n > 1 {
			t.Errorf("email %s used %d times", e, n)
		}
	}
}

func TestStartOnAddr(t *testing.T) {
	a, err := Start(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.HasPrefix(a.URL, "http://127.0.0.1:") || strings.HasSuffix(a.URL, ":0") {
		t.Errorf("URL = %q", a.URL)
	}
	if _, err := Start(Options{Addr: strings.TrimPrefix(a.URL, "http://")}); err == nil {
		t.Error("a second server started on a busy address")
	}
}

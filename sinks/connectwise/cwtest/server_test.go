package cwtest

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.CompanyID+"+"+s.PublicKey+":"+s.PrivateKey)))
	req.Header.Set("clientId", s.ClientID)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.Generate(250, 30, 1)
	s.AddContact(Contact{CompanyID: 250, FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"})
	list := APIPath + "/company/contacts?"
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{"no clientId", list, map[string]string{"clientId": ""}, 401, "ClientId is required"},
		{"bad basic", list, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("acmemsp+pub:nope"))}, 401, "UserNotAuthenticated"},
		{"page size too big", list + "pageSize=1001", nil, 400, "pageSize cannot be greater than 1000"},
		{"bad condition", list + url.Values{"conditions": {"company/id=250 and"}}.Encode(), nil, 400, "conditions"},
		{"unknown field", list + url.Values{"conditions": {"password=\"x\""}}.Encode(), nil, 400, "unknown field"},
		{"forward-only with orderBy", list + "orderBy=id", map[string]string{"pagination-type": "forward-only"}, 400, "orderBy"},
		{"email child condition", list + url.Values{"conditions": {"company/id=250"}, "childConditions": {`communicationItems/value="JANE@acme.example" and communicationItems/communicationType="Email"`}}.Encode(), nil, 200, `"firstName":"Jane"`},
		{"name condition", list + url.Values{"conditions": {`company/id = 250 and (firstName = "Jane" or firstName="Nobody") and lastName like "D%"`}}.Encode(), nil, 200, `"lastName":"Doe"`},
		{"in list", list + url.Values{"conditions": {`company/id in (1, 250) and not inactiveFlag = true and id >= 531`}}.Encode(), nil, 200, `"id":531`},
		{"company", APIPath + "/company/companies/250", nil, 200, `"id":250`},
		{"companyinfo without auth", "/login/companyinfo/acmemsp", map[string]string{"Authorization": "", "clientId": ""}, 200, `"Codebase":"v2024_1/"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, s, tc.path, tc.hdr)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("%s: %d %s; want %d containing %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}

func TestPagingAndClamp(t *testing.T) {
	s := NewServer(Options{ClampPageSize: true})
	defer s.Close()
	s.Generate(250, 1500, 2)
	resp, body := get(t, s, APIPath+"/company/contacts?pageSize=5000&conditions=company/id=250", nil)
	if resp.StatusCode != 200 || strings.Count(body, `"firstName"`) != 1000 {
		t.Fatalf("clamped page: %d with %d contacts", resp.StatusCode, strings.Count(body, `"firstName"`))
	}
	if l := resp.Header.Get("Link"); !strings.Contains(l, `page=2`) || !strings.Contains(l, `rel="next"`) || !strings.Contains(l, `rel="last"`) {
		t.Errorf("Link = %q", l)
	}
	resp, body = get(t, s, APIPath+"/company/contacts?pageSize=1000&page=2", nil)
	if strings.Count(body, `"firstName"`) != 500 || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("last page: %d contacts, Link %q", strings.Count(body, `"firstName"`), resp.Header.Get("Link"))
	}
	resp, _ = get(t, s, APIPath+"/company/contacts?pageSize=1000", map[string]string{"pagination-type": "forward-only"})
	if l := resp.Header.Get("Link"); !strings.Contains(l, "pageId=") {
		t.Errorf("forward-only Link = %q", l)
	}
}

func FuzzParseConditions(f *testing.F) {
	for _, s := range []string{`company/id=250`, `firstName="Jane" and lastName like "D%"`, `(id in (1,2)) or not inactiveFlag=true`, `a=`, `"unterminated`, `[2024-01-02T00:00:00Z]`, `((((`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseConditions(s, contactFields)
		if err != nil {
			return
		}
		_ = c(func(f string) (any, bool) { return "x", true })
	})
}

func TestGenerate(t *testing.T) {
	a, b := NewServer(Options{}), NewServer(Options{})
	defer a.Close()
	defer b.Close()
	a.Generate(1, 1000, 42)
	b.Generate(1, 1000, 42)
	ca, cb := a.Contacts(1), b.Contacts(1)
	names, emails := map[string]int{}, map[string]int{}
	for i := range ca {
		x, y := ca[i], cb[i]
		if x.ID != y.ID || x.FirstName != y.FirstName || x.LastName != y.LastName || x.Email != y.Email || x.Inactive != y.Inactive {
			t.Fatalf("same seed, different contact %d: %+v vs %+v", i, ca[i], cb[i])
		}
		names[ca[i].FirstName+" "+ca[i].LastName]++
		if ca[i].Email != "" {
			emails[ca[i].Email]++
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
	if len(emails) == 1000 || len(emails) < 900 {
		t.Errorf("%d of 1000 with email, want most but not all", len(emails))
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

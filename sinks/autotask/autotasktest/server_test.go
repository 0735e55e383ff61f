package autotasktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("UserName", s.UserName)
	req.Header.Set("Secret", s.Secret)
	req.Header.Set("ApiIntegrationCode", s.IntegrationCode)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
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
	s.AddCompany(123, "Acme")
	s.Generate(123, 20, 1)
	s.AddContact(Contact{CompanyID: 123, FirstName: "Jane", LastName: "Doe", EmailAddress: "jane@acme.example", IsActive: true})
	const api = "/ATServicesRest/V1.0/"
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		want                     string
	}{
		{"zone", "GET", "/atservicesrest/v1.0/zoneInformation?user=" + url.QueryEscape(s.UserName), "", nil, 200, `"url":"` + s.URL + `/ATServicesRest/"`},
		{"zone, other case", "GET", "/ATServicesRest/V1.0/ZoneInformation?user=" + url.QueryEscape(s.UserName), "", nil, 200, `"url":"` + s.URL + `/ATServicesRest/"`},
		{"zone under the bare host", "GET", "/v1.0/zoneInformation?user=" + url.QueryEscape(s.UserName), "", nil, 404, "No HTTP resource"},
		{"zone under another root", "GET", "/api/atservicesrest/v1.0/zoneInformation?user=" + url.QueryEscape(s.UserName), "", nil, 404, "No HTTP resource"},
		{"bad user name", "POST", api + "Contacts/query", `{"filter":[{"op":"eq","field":"companyID","value":123}]}`, map[string]string{"UserName": "x"}, 500, "errors"},
		{"bad integration code", "POST", api + "Contacts/query", `{"filter":[{"op":"eq","field":"companyID","value":123}]}`, map[string]string{"ApiIntegrationCode": "x"}, 500, "ApiIntegrationCode"},
		{"bad secret", "POST", api + "Contacts/query", `{"filter":[{"op":"eq","field":"companyID","value":123}]}`, map[string]string{"Secret": "x"}, 401, "not authorized"},
		{"MaxRecords over 500", "POST", api + "Contacts/query", `{"MaxRecords":501,"filter":[{"op":"eq","field":"companyID","value":123}]}`, nil, 400, "MaxRecords"},
		{"unknown field", "POST", api + "Contacts/query", `{"filter":[{"op":"eq","field":"password","value":1}]}`, nil, 500, "unable to find field"},
		{"email and group", "POST", api + "Contacts/query", `{"filter":[{"op":"and","items":[{"op":"eq","field":"companyID","value":123},{"op":"eq","field":"emailAddress","value":"JANE@acme.example"}]}]}`, nil, 200, `"firstName":"Jane"`},
		{"query by GET", "GET", api + "Contacts/query?search=" + url.QueryEscape(`{"filter":[{"op":"beginsWith","field":"lastName","value":"do"}]}`), "", nil, 200, `"lastName":"Doe"`},
		{"count", "POST", api + "Contacts/query/count", `{"filter":[{"op":"eq","field":"companyID","value":123}]}`, nil, 200, `"queryCount":21`},
		{"isActive boolean", "POST", api + "Contacts", `{"companyID":123,"firstName":"A","lastName":"B","isActive":true}`, nil, 500, "System.Int32"},
		{"missing first name", "POST", api + "Contacts", `{"companyID":123,"lastName":"B","isActive":1}`, nil, 500, "Contact firstName is required."},
		{"unknown company", "POST", api + "Companies/999/Contacts", `{"firstName":"A","lastName":"B","isActive":1}`, nil, 500, "Company with id 999 does not exist."},
		{"create", "POST", api + "Companies/123/Contacts", `{"companyID":123,"firstName":"A","lastName":"B","isActive":1}`, nil, 200, `"itemId":`},
		{"company", "GET", api + "Companies/123", "", nil, 200, `"companyName":"Acme"`},
		{"threshold", "GET", api + "ThresholdInformation", "", nil, 200, `"externalRequestThreshold":10000`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := call(t, s, tc.method, tc.path, tc.body, tc.hdr)
			if st != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.path, st, body, tc.status, tc.want)
			}
		})
	}
}

func TestNextPageURL(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.Generate(123, 1200, 3)
	_, body := call(t, s, "POST", "/ATServicesRest/V1.0/Contacts/query", `{"MaxRecords":500,"IncludeFields":["id","firstName"],"filter":[{"op":"eq","field":"companyID","value":123}]}`, nil)
	seen := 0
	for i := 0; ; i++ {
		var p struct {
			Items       []map[string]any
			PageDetails struct {
				NextPageURL *string `json:"nextPageUrl"`
			} `json:"pageDetails"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err, body)
		}
		seen += len(p.Items)
		if i == 0 && len(p.Items[0]) != 2 {
			t.Errorf("IncludeFields ignored: %v", p.Items[0])
		}
		if p.PageDetails.NextPageURL == nil {
			break
		}
		_, body = call(t, s, "GET", strings.TrimPrefix(*p.PageDetails.NextPageURL, s.URL), "", nil)
	}
	if seen != 1200 {
		t.Errorf("paged through %d contacts, want 1200", seen)
	}
	st, body := call(t, s, "POST", "/ATServicesRest/V1.0/Contacts/query", `{"IncludeFields":["firstName"],"filter":[{"op":"eq","field":"companyID","value":123}]}`, nil)
	if st != 500 || !strings.Contains(body, "must contain id") {
		t.Errorf("IncludeFields without id over 500 results: %d %s", st, body)
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{
		`[{"op":"eq","field":"companyID","value":123}]`,
		`[{"op":"or","items":[{"op":"in","field":"id","value":[1,2]},{"op":"contains","field":"emailAddress","value":"x"}]}]`,
		`[{"op":"and","items":[]}]`, `[{"op":"bogus"}]`,
	} {
		f.Add(s)
	}
	c := &Contact{ID: 1, CompanyID: 123, FirstName: "Jane", LastName: "Doe", EmailAddress: "jane@x.example", IsActive: true}
	f.Fuzz(func(t *testing.T, s string) {
		var conds []Cond
		if decodeStrict(strings.NewReader(s), &conds) != nil {
			return
		}
		p, err := compile(conds, "and", 0)
		if err != nil {
			return
		}
		_ = p(c)
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
		if ca[i] != cb[i] {
			t.Fatalf("same seed, different contact %d: %+v vs %+v", i, ca[i], cb[i])
		}
		names[ca[i].FirstName+" "+ca[i].LastName]++
		if ca[i].EmailAddress != "" {
			emails[ca[i].EmailAddress]++
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

func TestThreadLimit(t *testing.T) {
	s := NewServer(Options{Latency: 30 * time.Millisecond})
	defer s.Close()
	s.AddCompany(123, "Acme")
	statuses := make(chan int, 10)
	for range 10 {
		go func() {
			req, _ := http.NewRequest("POST", s.URL+"/ATServicesRest/V1.0/Contacts/query", strings.NewReader(`{"filter":[{"op":"eq","field":"companyID","value":123}]}`))
			req.Header.Set("UserName", s.UserName)
			req.Header.Set("Secret", s.Secret)
			req.Header.Set("ApiIntegrationCode", s.IntegrationCode)
			resp, err := s.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range 10 {
		if st := <-statuses; st != 200 {
			t.Errorf("status %d", st)
		}
	}
	if p := s.PeakConcurrency(KindQueryContacts); p != 3 {
		t.Errorf("peak concurrency = %d, want 3", p)
	}
	// Ten requests of 30 ms on three threads: three rounds with every
	// thread busy, then one request alone.
	u := s.Threads(KindQueryContacts)
	if u.Requests != 10 || u.Held < 300*time.Millisecond || u.AllBusy < 60*time.Millisecond || 3*u.AllBusy > u.Held {
		t.Errorf("thread use %+v: want 10 requests holding a thread 300 ms or more in all, and all three busy at least 60 ms and at most a third of that", u)
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

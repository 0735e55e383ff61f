package m365test_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// form posts a token request and returns status and decoded body.
func form(t *testing.T, srv *m365test.Server, tenant string, v url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/"+tenant+"/oauth2/v2.0/token", v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token body: %v", err)
	}
	return resp.StatusCode, body
}

func goodForm(srv *m365test.Server) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {srv.ClientID},
		"client_secret": {srv.ClientSecret},
		"scope":         {"https://graph.microsoft.com/.default"},
	}
}

func TestTokenEndpointChecksTheForm(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	tests := []struct {
		name   string
		tenant string
		mod    func(url.Values)
		status int
		code   string
		aadsts float64
	}{
		{"good", srv.TenantID, func(url.Values) {}, 200, "", 0},
		{"no grant type", srv.TenantID, func(v url.Values) { v.Del("grant_type") }, 400, "invalid_request", 900144},
		{"password grant", srv.TenantID, func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type", 70003},
		{"no client id", srv.TenantID, func(v url.Values) { v.Del("client_id") }, 400, "invalid_request", 900144},
		{"other app", srv.TenantID, func(v url.Values) { v.Set("client_id", "someone-else") }, 400, "unauthorized_client", 700016},
		{"no secret", srv.TenantID, func(v url.Values) { v.Del("client_secret") }, 401, "invalid_client", 7000216},
		{"wrong secret", srv.TenantID, func(v url.Values) { v.Set("client_secret", "nope") }, 401, "invalid_client", 7000215},
		{"bad scope", srv.TenantID, func(v url.Values) { v.Set("scope", "User.Read.All") }, 400, "invalid_scope", 1002012},
		{"own scope", srv.TenantID, func(v url.Values) { v.Set("scope", srv.URL+"/.default") }, 200, "", 0},
		{"unknown tenant", "no-such-tenant", func(url.Values) {}, 400, "invalid_request", 90002},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := goodForm(srv)
			tc.mod(v)
			status, body := form(t, srv, tc.tenant, v)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%v)", status, tc.status, body)
			}
			if tc.status == 200 {
				if body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"] == nil {
					t.Errorf("token body %v", body)
				}
				return
			}
			codes, _ := body["error_codes"].([]any)
			desc, _ := body["error_description"].(string)
			if body["error"] != tc.code || len(codes) != 1 || codes[0] != tc.aadsts || !strings.HasPrefix(desc, "AADSTS") {
				t.Errorf("error body %v, want error %q code %v", body, tc.code, tc.aadsts)
			}
			if strings.Contains(desc, srv.ClientSecret) {
				t.Errorf("error description carries the secret")
			}
		})
	}
	// A JSON body is not a form.
	resp, err := http.Post(srv.URL+"/"+srv.TenantID+"/oauth2/v2.0/token", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("JSON token request: status %d, want 400", resp.StatusCode)
	}
	if n := srv.Count(m365test.KindToken); n != int64(len(tests)+1) {
		t.Errorf("token count = %d, want %d", n, len(tests)+1)
	}
}

// client talks to the fake as one tenant.
type client struct {
	t     *testing.T
	srv   *m365test.Server
	token string
}

func newClient(t *testing.T, srv *m365test.Server, tenant string) *client {
	v := goodForm(srv)
	status, body := form(t, srv, tenant, v)
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return &client{t: t, srv: srv, token: body["access_token"].(string)}
}

// get fetches a Graph path (or absolute URL) and decodes the JSON body.
func (c *client) get(path string, hdr ...string) (int, http.Header, map[string]any) {
	c.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = c.srv.URL + path
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		c.t.Fatalf("GET %s: body %q: %v", path, raw, err)
	}
	return resp.StatusCode, resp.Header, body
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	if _, ok := e["message"].(string); !ok {
		return "no message"
	}
	if _, ok := e["innerError"].(map[string]any); !ok {
		return "no innerError"
	}
	return code
}

func TestGraphEnforcesTheContract(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 250, Guests: 5, Groups: 2})
	c := newClient(t, srv, srv.TenantID)

	tests := []struct {
		name   string
		path   string
		hdr    []string
		status int
		code   string
	}{
		{"top 999", "/v1.0/users?$top=999", nil, 200, ""},
		{"top 1000", "/v1.0/users?$top=1000", nil, 400, "Request_BadRequest"},
		{"top 0", "/v1.0/users?$top=0", nil, 400, "Request_BadRequest"},
		{"unknown select", "/v1.0/users?$select=id,shoeSize", nil, 400, "Request_BadRequest"},
		{"basic filter", "/v1.0/users?$filter=" + url.QueryEscape("userType eq 'Guest'"), nil, 200, ""},
		{"ne without ConsistencyLevel", "/v1.0/users?$filter=" + url.QueryEscape("userType ne 'Guest'"), nil, 400, "Request_UnsupportedQuery"},
		{"ne without $count", "/v1.0/users?$filter=" + url.QueryEscape("userType ne 'Guest'"), []string{"ConsistencyLevel", "eventual"}, 400, "Request_UnsupportedQuery"},
		{"ne advanced", "/v1.0/users?$count=true&$filter=" + url.QueryEscape("userType ne 'Guest'"), []string{"ConsistencyLevel", "eventual"}, 200, ""},
		{"count without ConsistencyLevel", "/v1.0/users?$count=true", nil, 400, "Request_UnsupportedQuery"},
		{"endsWith without ConsistencyLevel", "/v1.0/users?$count=true&$filter=" + url.QueryEscape("endsWith(mail,'.example')"), nil, 400, "Request_UnsupportedQuery"},
		{"unknown user", "/v1.0/users/00000000-0000-4000-8000-000000000000", nil, 404, "Request_ResourceNotFound"},
		{"unknown group members", "/v1.0/groups/00000000-0000-4000-8000-000000000000/transitiveMembers/microsoft.graph.user", nil, 404, "Request_ResourceNotFound"},
		{"bad delta token", "/v1.0/users/delta?$deltatoken=garbage", nil, 400, "Request_BadRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := c.get(tc.path, tc.hdr...)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.code != "" && errCode(body) != tc.code {
				t.Errorf("error %v, want code %q with message and innerError", body, tc.code)
			}
		})
	}

	t.Run("advanced count", func(t *testing.T) {
		_, _, body := c.get("/v1.0/users?$count=true&$top=5&$filter="+url.QueryEscape("userType ne 'Guest'"), "ConsistencyLevel", "eventual")
		if body["@odata.count"] != float64(250) {
			t.Errorf("count = %v, want 250", body["@odata.count"])
		}
	})

	t.Run("select decides the fields", func(t *testing.T) {
		_, _, body := c.get("/v1.0/users?$top=1")
		u := body["value"].([]any)[0].(map[string]any)
		for _, f := range []string{"accountEnabled", "userType", "onPremisesImmutableId", "assignedLicenses"} {
			if _, ok := u[f]; ok {
				t.Errorf("default fields include %s", f)
			}
		}
		if _, ok := u["userPrincipalName"]; !ok {
			t.Errorf("default fields lack userPrincipalName: %v", u)
		}
		_, _, body = c.get("/v1.0/users?$top=1&$select=id,accountEnabled")
		u = body["value"].([]any)[0].(map[string]any)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range u {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, []string{"accountEnabled", "id"}) {
			t.Errorf("fields %v, want exactly accountEnabled and id", keys)
		}
	})

	t.Run("nextLink paging", func(t *testing.T) {
		seen := map[string]bool{}
		next := "/v1.0/users?$top=40&$select=id"
		pages := 0
		for next != "" {
			_, _, body := c.get(next)
			pages++
			for _, v := range body["value"].([]any) {
				id := v.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("user %s on two pages", id)
				}
				seen[id] = true
			}
			next, _ = body["@odata.nextLink"].(string)
			if next != "" && !strings.Contains(next, "$select=id") {
				t.Fatalf("nextLink %s lost the $select", next)
			}
		}
		if len(seen) != 255 || pages != 7 {
			t.Errorf("%d users in %d pages, want 255 in 7", len(seen), pages)
		}
	})

	t.Run("group by name then transitive members", func(t *testing.T) {
		_, _, body := c.get("/v1.0/groups?$select=id,displayName&$filter=" + url.QueryEscape("displayName eq 'All Staff'"))
		groups := body["value"].([]any)
		if len(groups) != 1 {
			t.Fatalf("groups %v", groups)
		}
		id := groups[0].(map[string]any)["id"].(string)
		_, _, body = c.get("/v1.0/groups/" + id + "/transitiveMembers/microsoft.graph.user?$top=999&$select=id")
		if n := len(body["value"].([]any)); n != 250 {
			t.Errorf("transitive user members = %d, want 250", n)
		}
		_, _, body = c.get("/v1.0/groups/" + id + "/members")
		for _, m := range body["value"].([]any) {
			if m.(map[string]any)["@odata.type"] != "#microsoft.graph.group" {
				t.Errorf("direct member of All Staff is not a group: %v", m)
			}
		}
	})
}

func TestGraphRequiresTheTenantsToken(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	srv.Default().AddUser(m365test.User{UserPrincipalName: "a@one.example"})
	other := srv.Tenant("other-tenant")
	other.AddUser(m365test.User{UserPrincipalName: "b@two.example"})
	other.AddUser(m365test.User{UserPrincipalName: "c@two.example"})

	anon := &client{t: t, srv: srv}
	if status, _, body := anon.get("/v1.0/users"); status != 401 || errCode(body) != "InvalidAuthenticationToken" {
		t.Errorf("no token: %d %v", status, body)
	}
	forged := &client{t: t, srv: srv, token: "forged"}
	if status, _, _ := forged.get("/v1.0/users"); status != 401 {
		t.Errorf("forged token: %d", status)
	}
	for tenant, want := range map[string]int{srv.TenantID: 1, "other-tenant": 2} {
		_, _, body := newClient(t, srv, tenant).get("/v1.0/users")
		if n := len(body["value"].([]any)); n != want {
			t.Errorf("tenant %s sees %d users, want %d", tenant, n, want)
		}
	}
	c := newClient(t, srv, srv.TenantID)
	srv.RevokeTokens()
	if status, _, _ := c.get("/v1.0/users"); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
}

func TestFaults(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 5})
	c := newClient(t, srv, srv.TenantID)
	srv.Inject(m365test.Fault{Kind: m365test.KindUsers, After: 1, Status: 429, RetryAfter: "7", Times: 2})
	srv.Inject(m365test.Fault{Kind: m365test.KindGroups, Status: 503})

	if status, _, _ := c.get("/v1.0/users"); status != 200 {
		t.Fatalf("first request: %d, want it let through", status)
	}
	for range 2 {
		status, hdr, body := c.get("/v1.0/users")
		if status != 429 || hdr.Get("Retry-After") != "7" || errCode(body) != "TooManyRequests" {
			t.Fatalf("throttled answer: %d %v %v", status, hdr, body)
		}
	}
	if status, _, _ := c.get("/v1.0/users"); status != 200 {
		t.Errorf("after the fault: %d", status)
	}
	if status, _, _ := c.get("/v1.0/groups"); status != 503 {
		t.Errorf("groups fault: %d", status)
	}
	if n := srv.Count(m365test.KindUsers); n != 4 {
		t.Errorf("users count = %d, want 4", n)
	}

	srv.Inject(m365test.Fault{Malformed: true})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1.0/users", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Valid(raw) {
		t.Errorf("malformed fault: %d %q", resp.StatusCode, raw)
	}
}

func TestCountersAreSafeForConcurrentUse(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 20})
	c := newClient(t, srv, srv.TenantID)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1.0/users?$top=5", nil)
				req.Header.Set("Authorization", "Bearer "+c.token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if n := srv.Counts()[m365test.KindUsers]; n != 40 {
		t.Errorf("users count = %d, want 40", n)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := m365test.NewServer(m365test.Options{})
	defer a.Close()
	b := m365test.NewServer(m365test.Options{})
	defer b.Close()
	o := m365test.GenOptions{Seed: 42, Users: 50, Guests: 2, Disabled: 2, Hybrid: 5, Groups: 3, Admins: 2}
	ga, gb := a.Default().Generate(o), b.Default().Generate(o)
	if !slices.Equal(ga.Users, gb.Users) || !slices.Equal(ga.Hybrid, gb.Hybrid) || ga.AllStaff != gb.AllStaff {
		t.Fatalf("two generations with one seed differ")
	}
	ua, _ := a.Default().User(ga.Hybrid[0])
	ub, _ := b.Default().User(gb.Hybrid[0])
	if ua.UserPrincipalName != ub.UserPrincipalName || ua.OnPremisesImmutableID != ub.OnPremisesImmutableID || ua.OnPremisesImmutableID == "" {
		t.Errorf("hybrid users differ: %+v / %+v", ua, ub)
	}
	if n := a.Default().UserCount(); n != 54 {
		t.Errorf("user count %d, want 54", n)
	}
}

func TestResourceUnitThrottling(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{ResourceUnitsPer10s: 10})
	defer srv.Close()
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 5})
	c := newClient(t, srv, srv.TenantID)
	// GET users with $select costs 2 - 1 = 1 unit: ten pass, the eleventh
	// is throttled.
	for i := range 10 {
		status, hdr, body := c.get("/v1.0/users?$select=id")
		if status != 200 || hdr.Get("x-ms-resource-unit") != "1" {
			t.Fatalf("request %d: %d %v %v", i, status, hdr, body)
		}
	}
	status, hdr, body := c.get("/v1.0/users?$select=id")
	if status != 429 || hdr.Get("Retry-After") != "1" || errCode(body) != "TooManyRequests" || hdr.Get("x-ms-throttle-information") != "ResourceUnitLimitExceeded" {
		t.Fatalf("over the limit: %d %v %v", status, hdr, body)
	}
	// Another tenant has its own bucket.
	srv.Tenant("other").AddUser(m365test.User{UserPrincipalName: "o@other.example"})
	if status, _, _ := newClient(t, srv, "other").get("/v1.0/users?$select=id"); status != 200 {
		t.Errorf("other tenant: %d", status)
	}
}

func TestStartOnAGivenAddress(t *testing.T) {
	srv, err := m365test.Start(m365test.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s", srv.URL)
	}
	if _, err := m365test.Start(m365test.Options{Addr: strings.TrimPrefix(srv.URL, "http://")}); err == nil {
		t.Errorf("a second server on the same address started")
	}
}

func TestLifetimes(t *testing.T) {
	t.Run("expired token", func(t *testing.T) {
		srv := m365test.NewServer(m365test.Options{TokenLifetime: time.Nanosecond})
		defer srv.Close()
		c := newClient(t, srv, srv.TenantID)
		status, _, body := c.get("/v1.0/users")
		if status != 401 || errCode(body) != "InvalidAuthenticationToken" || !strings.Contains(body["error"].(map[string]any)["message"].(string), "expired") {
			t.Errorf("expired token: %d %v", status, body)
		}
	})
	t.Run("expired delta link", func(t *testing.T) {
		srv := m365test.NewServer(m365test.Options{DeltaLinkTTL: time.Nanosecond})
		defer srv.Close()
		srv.Default().AddUser(m365test.User{UserPrincipalName: "a@acme.example"})
		c := newClient(t, srv, srv.TenantID)
		_, _, body := c.get("/v1.0/users/delta?$select=id")
		link, _ := body["@odata.deltaLink"].(string)
		if link == "" {
			t.Fatalf("no delta link: %v", body)
		}
		time.Sleep(time.Millisecond)
		status, _, body := c.get(link)
		if status != 400 || errCode(body) != "syncStateNotFound" {
			t.Errorf("expired link: %d %v", status, body)
		}
	})
	t.Run("latency", func(t *testing.T) {
		srv := m365test.NewServer(m365test.Options{})
		defer srv.Close()
		c := newClient(t, srv, srv.TenantID)
		srv.SetLatency(50 * time.Millisecond)
		start := time.Now()
		c.get("/v1.0/users")
		if el := time.Since(start); el < 50*time.Millisecond {
			t.Errorf("answer after %v, want at least 50ms", el)
		}
	})
}

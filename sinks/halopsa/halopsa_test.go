package halopsa_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
)

var scope = sinks.PSAScope{Customer: "acme", CompanyID: "12"}

func newServer(t testing.TB, o halopsatest.Options) *halopsatest.Server {
	srv := halopsatest.NewServer(o)
	t.Cleanup(srv.Close)
	srv.AddClient(12, "Acme")
	srv.AddClient(13, "Other")
	return srv
}

func newClient(t testing.TB, srv *halopsatest.Server, mod func(*halopsa.Config)) *halopsa.Client {
	t.Helper()
	cfg := halopsa.Config{
		URL: srv.URL, Tenant: srv.Tenant, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Rate: "100000/s", Burst: 1000, Transport: srv.Client().Transport,
		MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetries: 3,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := halopsa.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIndexSeveralPages(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Generate(12, 520, 4)
	srv.Generate(13, 30, 5)
	jane := srv.AddUser(halopsatest.User{ClientID: 12, FirstName: "Jane", Surname: "Doe", EmailAddress: "jane@acme.example"})
	legacy := srv.AddUser(halopsatest.User{ClientID: 12, Name: "Mary Ann Smith", EmailAddress: "mas@acme.example"})
	inactive := srv.AddUser(halopsatest.User{ClientID: 12, FirstName: "Old", Surname: "Timer", Inactive: true})
	c := newClient(t, srv, func(c *halopsa.Config) { c.PageSize = 100 })
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 523 {
		t.Errorf("indexed %d, want 523", ix.Len())
	}
	if n := srv.Count(halopsatest.KindListUsers); n != 6 {
		t.Errorf("list requests = %d, want 6 pages of 100", n)
	}
	if n := srv.Count(halopsatest.KindToken); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	for _, tc := range []struct {
		first, last, email string
		want               int
	}{{"", "", "JANE@acme.example", jane}, {"Mary Ann", "Smith", "", legacy}, {"Old", "Timer", "", inactive}} {
		if m := ix.Match(tc.first, tc.last, tc.email); m.Outcome != sinks.Matched || m.Contact.Ref != fmt.Sprint(tc.want) {
			t.Errorf("Match(%q %q %q) = %+v, want %d", tc.first, tc.last, tc.email, m, tc.want)
		}
	}
}

func TestCreateShowsUpInNextIndex(t *testing.T) {
	for _, echoObject := range []bool{false, true} {
		t.Run(fmt.Sprintf("echoObject=%v", echoObject), func(t *testing.T) {
			srv := newServer(t, halopsatest.Options{EchoObject: echoObject, RequireSite: true})
			branch := srv.AddSite(12, "Branch")
			srv.Generate(12, 5, 1)
			c := newClient(t, srv, nil)
			ctx := context.Background()
			got, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe@acme.example"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Ref == "" || got.FirstName != "Zoe" || got.LastName != "Quinn" || got.Email != "zoe@acme.example" {
				t.Errorf("created %+v", got)
			}
			if _, err := c.Create(ctx, sinks.PSAScope{Customer: "acme", CompanyID: fmt.Sprintf("12:%d", branch)}, sinks.NewContact{FirstName: "Bo", LastName: "Li"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Al", LastName: "Ng"}); err != nil {
				t.Fatal(err)
			}
			if n := srv.Count(halopsatest.KindSites); n != 1 {
				t.Errorf("site lookups = %d, want 1", n)
			}
			ix, err := c.Index(ctx, scope)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() != 8 {
				t.Errorf("index has %d, want 8", ix.Len())
			}
			if m := ix.Match("Zoe", "Quinn", "zoe@acme.example"); m.Outcome != sinks.Matched || m.Contact.Ref != got.Ref {
				t.Errorf("created user not matched: %+v", m)
			}
			users := srv.Users(12)
			main := users[0].SiteID
			for _, u := range users[len(users)-3:] {
				want := main
				if u.FirstName == "Bo" {
					want = branch
				}
				if u.SiteID != want {
					t.Errorf("user %s on site %d, want %d", u.FirstName, u.SiteID, want)
				}
			}
		})
	}
}

func TestTokenRefresh(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Generate(12, 3, 1)
	c := newClient(t, srv, nil)
	ctx := context.Background()
	if _, err := c.Index(ctx, scope); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	if _, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "A", LastName: "B"}); err != nil {
		t.Fatalf("create after the token expired: %v", err)
	}
	if n := srv.Count(halopsatest.KindToken); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if len(srv.Users(12)) != 4 {
		t.Errorf("users = %d, want 4 (one create)", len(srv.Users(12)))
	}
	// A token about to expire is replaced before use.
	short := newServer(t, halopsatest.Options{TokenLifetime: 30 * time.Second})
	sc := newClient(t, short, nil)
	for range 2 {
		if _, err := sc.Index(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	if n := short.Count(halopsatest.KindToken); n != 2 {
		t.Errorf("token requests with a 30s lifetime = %d, want one per call", n)
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Generate(12, 10, 1)
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindListUsers, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := newClient(t, srv, nil)
	start := time.Now()
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 10 || time.Since(start) < 900*time.Millisecond {
		t.Errorf("indexed %d after %v", ix.Len(), time.Since(start))
	}
	if n := srv.Count(halopsatest.KindListUsers); n != 2 || c.Stats().Throttled != 1 {
		t.Errorf("list requests %d, throttled %d", n, c.Stats().Throttled)
	}
}

func TestAuthFailures(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*halopsa.Config)
		want []string
	}{
		{"bad secret", func(c *halopsa.Config) { c.ClientSecret = "wrong-secret-xyz" }, []string{"HaloPSA: customer acme: token: HTTP 401: invalid_client", "check the HaloPSA"}},
		{"bad tenant", func(c *halopsa.Config) { c.Tenant = "nope" }, []string{"HaloPSA: customer acme: token: HTTP 400", "tenant"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, halopsatest.Options{})
			_, err := newClient(t, srv, tc.mod).Index(context.Background(), scope)
			if err == nil {
				t.Fatal("Index succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "wrong-secret-xyz") || strings.Contains(err.Error(), srv.ClientSecret) {
				t.Errorf("error leaks the secret: %q", err)
			}
			if n := srv.Count(halopsatest.KindToken); n != 1 || srv.Count(halopsatest.KindListUsers) != 0 {
				t.Errorf("counts %v, want one token request and no listing", srv.Counts())
			}
		})
	}
	t.Run("API keeps refusing the token", func(t *testing.T) {
		srv := newServer(t, halopsatest.Options{})
		srv.Inject(halopsatest.Fault{Kind: halopsatest.KindListUsers, Status: http.StatusUnauthorized, Times: -1})
		_, err := newClient(t, srv, nil).Index(context.Background(), scope)
		if err == nil || !strings.Contains(err.Error(), "HaloPSA: customer acme: list users of client 12 page 1") || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("err = %v", err)
		}
		if n := srv.Count(halopsatest.KindListUsers); n != 2 {
			t.Errorf("list requests = %d, want 2 (one retry with a fresh token)", n)
		}
	})
}

func TestMalformedBody(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindListUsers, Malformed: true})
	_, err := newClient(t, srv, nil).Index(context.Background(), scope)
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "HaloPSA: customer acme: list users of client 12 page 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestCreateNotRetriedOnServerError(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindCreateUsers, Status: http.StatusBadGateway})
	c := newClient(t, srv, nil)
	if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B"}); err == nil {
		t.Fatal("create succeeded")
	}
	if n := srv.Count(halopsatest.KindCreateUsers); n != 1 {
		t.Errorf("create sent %d times", n)
	}
}

func TestScopeAndConfig(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	c := newClient(t, srv, nil)
	for _, id := range []string{"", "x", "12:", "12:x", "0", "-1", "12:0"} {
		if _, err := c.Index(context.Background(), sinks.PSAScope{Customer: "acme", CompanyID: id}); err == nil {
			t.Errorf("client id %q accepted", id)
		}
	}
	if srv.Total() != 0 {
		t.Errorf("requests for bad scopes: %v", srv.Counts())
	}
	if _, err := halopsa.New(halopsa.Config{URL: "acme.halopsa.com", ClientID: "a", ClientSecret: "b"}); err == nil {
		t.Error("URL without scheme accepted")
	}
	_, err := halopsa.New(halopsa.Config{URL: "https://acme.halopsa.com", ClientSecret: "shh-secret"})
	if err == nil || strings.Contains(err.Error(), "shh-secret") {
		t.Errorf("config error = %v", err)
	}
	// A URL ending in /api and a self-hosted instance without tenant.
	self := newServer(t, halopsatest.Options{SelfHosted: true})
	sc := newClient(t, self, func(c *halopsa.Config) { c.URL = self.URL + "/api"; c.Tenant = "" })
	if _, err := sc.Index(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkImport1000Into5000 measures API requests per imported account:
// 1,000 new contacts into a client that has 5,000.
func BenchmarkImport1000Into5000(b *testing.B) {
	var perAccount float64
	for b.Loop() {
		b.StopTimer()
		srv := halopsatest.NewServer(halopsatest.Options{})
		srv.AddClient(12, "Acme")
		srv.Generate(12, 5000, 3)
		c := newClient(b, srv, nil)
		b.StartTimer()
		ctx := context.Background()
		ix, err := c.Index(ctx, scope)
		if err != nil {
			b.Fatal(err)
		}
		created := 0
		for i := range 1000 {
			nc := sinks.NewContact{FirstName: "New", LastName: fmt.Sprintf("Person%d", i), Email: fmt.Sprintf("new.person%d@acme.example", i)}
			if ix.Match(nc.FirstName, nc.LastName, nc.Email).Outcome != sinks.NoMatch {
				continue
			}
			got, err := c.Create(ctx, scope, nc)
			if err != nil {
				b.Fatal(err)
			}
			ix.Add(got)
			created++
		}
		b.StopTimer()
		if created != 1000 {
			b.Fatalf("created %d, want 1000", created)
		}
		perAccount = float64(srv.Total()) / float64(created)
		b.ReportMetric(float64(srv.Count(halopsatest.KindListUsers)), "list-requests")
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(perAccount, "requests/account")
}

// Concurrent creates in one client look its site up once, not once each.
func TestConcurrentCreatesLookTheSiteUpOnce(t *testing.T) {
	srv := newServer(t, halopsatest.Options{RequireSite: true})
	srv.SetLatency(20 * time.Millisecond) // all eight are in flight before the first lookup answers
	c := newClient(t, srv, nil)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "User", LastName: fmt.Sprint(i)})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count(halopsatest.KindSites); n != 1 {
		t.Fatalf("site lookups = %d, want 1", n)
	}
}

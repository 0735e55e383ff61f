package autotask_test

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
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

var scope = sinks.PSAScope{Customer: "acme", CompanyID: "123"}

func newServer(t testing.TB, o autotasktest.Options) *autotasktest.Server {
	srv := autotasktest.NewServer(o)
	t.Cleanup(srv.Close)
	srv.AddCompany(123, "Acme")
	srv.AddCompany(124, "Other")
	return srv
}

func newClient(t testing.TB, srv *autotasktest.Server, mod func(*autotask.Config)) *autotask.Client {
	t.Helper()
	cfg := autotask.Config{
		ZoneURL: srv.ZoneURL(), UserName: srv.UserName, Secret: srv.Secret, IntegrationCode: srv.IntegrationCode,
		Rate: "100000/s", Burst: 1000, Transport: srv.Client().Transport,
		MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetries: 3,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := autotask.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIndexSeveralPages(t *testing.T) {
	for _, quirk := range []bool{false, true} {
		t.Run(fmt.Sprintf("zoneQuirk=%v", quirk), func(t *testing.T) {
			srv := newServer(t, autotasktest.Options{ZoneURLQuirk: quirk})
			srv.Generate(123, 1100, 5)
			srv.Generate(124, 40, 6)
			jane := srv.AddContact(autotasktest.Contact{CompanyID: 123, FirstName: "Jane", LastName: "Doe", EmailAddress: "jane@acme.example", IsActive: true})
			c := newClient(t, srv, nil)
			ix, err := c.Index(context.Background(), scope)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() != 1101 {
				t.Errorf("indexed %d, want 1101", ix.Len())
			}
			if n := srv.Count(autotasktest.KindQueryContacts); n != 3 {
				t.Errorf("query requests = %d, want 3 pages of 500", n)
			}
			if n := srv.Count(autotasktest.KindZone); n != 1 {
				t.Errorf("zone lookups = %d, want 1", n)
			}
			if m := ix.Match("", "", "JANE@acme.example"); m.Outcome != sinks.Matched || m.Contact.Ref != fmt.Sprint(jane) {
				t.Errorf("match = %+v", m)
			}
			// The zone is cached.
			if _, err := c.Index(context.Background(), scope); err != nil {
				t.Fatal(err)
			}
			if n := srv.Count(autotasktest.KindZone); n != 1 {
				t.Errorf("zone lookups after two indexes = %d, want 1", n)
			}
		})
	}
}

func TestCreateShowsUpInNextIndex(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	srv.Generate(123, 10, 1)
	c := newClient(t, srv, nil)
	ctx := context.Background()
	got, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := c.Index(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 11 {
		t.Errorf("index has %d, want 11", ix.Len())
	}
	if m := ix.Match("Zoe", "Quinn", "zoe@acme.example"); m.Outcome != sinks.Matched || m.Contact.Ref != got.Ref {
		t.Errorf("created contact %+v not matched: %+v", got, m)
	}
	stored := srv.Contacts(123)
	if last := stored[len(stored)-1]; !last.IsActive || last.EmailAddress != "zoe@acme.example" {
		t.Errorf("stored %+v", last)
	}
	if _, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Only"}); err == nil || !strings.Contains(err.Error(), "first and a last name") {
		t.Errorf("create without last name: %v", err)
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	srv.Generate(123, 10, 1)
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindQueryContacts, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := newClient(t, srv, nil)
	start := time.Now()
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 10 || time.Since(start) < 900*time.Millisecond {
		t.Errorf("indexed %d after %v; want 10 after Retry-After 1s", ix.Len(), time.Since(start))
	}
	if n := srv.Count(autotasktest.KindQueryContacts); n != 2 {
		t.Errorf("query requests = %d, want 2", n)
	}
}

func TestAuthFailures(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*autotask.Config)
		want []string
	}{
		{"wrong secret", func(c *autotask.Config) { c.Secret = "wrong-secret-value" }, []string{"HTTP 401", "User is not authorized", "check the Autotask credentials"}},
		{"wrong integration code", func(c *autotask.Config) { c.IntegrationCode = "WRONGCODE" }, []string{"HTTP 500", "wrong API user name or integration code"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, autotasktest.Options{})
			_, err := newClient(t, srv, tc.mod).Index(context.Background(), scope)
			if err == nil {
				t.Fatal("Index succeeded")
			}
			msg := err.Error()
			for _, w := range append(tc.want, "Autotask: customer acme: query contacts of company 123 page 1") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "wrong-secret-value") || strings.Contains(msg, srv.Secret) {
				t.Errorf("error leaks the secret: %q", msg)
			}
			if n := srv.Count(autotasktest.KindQueryContacts); n != 1 {
				t.Errorf("%d query requests, want 1 (no retry)", n)
			}
		})
	}
	t.Run("wrong user name", func(t *testing.T) {
		srv := newServer(t, autotasktest.Options{})
		_, err := newClient(t, srv, func(c *autotask.Config) { c.UserName = "nobody@x.example" }).Index(context.Background(), scope)
		if err == nil || !strings.Contains(err.Error(), "Autotask: customer acme: zone discovery for user nobody@x.example") || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("err = %v", err)
		}
		if srv.Count(autotasktest.KindZone) != 1 {
			t.Errorf("zone requests = %d, want 1", srv.Count(autotasktest.KindZone))
		}
	})
	t.Run("wrong user name with known zone", func(t *testing.T) {
		srv := newServer(t, autotasktest.Options{})
		_, err := newClient(t, srv, func(c *autotask.Config) {
			c.UserName = "nobody@x.example"
			c.APIURL = srv.URL + "/ATServicesRest/"
		}).Index(context.Background(), scope)
		if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "wrong API user name") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMalformedBody(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindQueryContacts, Malformed: true})
	_, err := newClient(t, srv, nil).Index(context.Background(), scope)
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "Autotask: customer acme:") {
		t.Fatalf("err = %v, want ErrMalformed naming Autotask and acme", err)
	}
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindCreateContact, Malformed: true})
	_, err = newClient(t, srv, nil).Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B"})
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "Autotask: customer acme: create contact in company 123") {
		t.Fatalf("create err = %v", err)
	}
}

func TestServerErrorsAfterFirstSuccess(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	srv.Generate(123, 600, 2)
	// The second page fails twice: a later page's 503 is retried.
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindQueryContacts, After: 1, Times: 2, Status: http.StatusServiceUnavailable})
	c := newClient(t, srv, nil)
	ix, err := c.Index(context.Background(), scope)
	if err != nil || ix.Len() != 600 {
		t.Fatalf("Index = %v, %v", ix, err)
	}
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindCreateContact, Status: http.StatusServiceUnavailable})
	if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B"}); err == nil {
		t.Fatal("create after 503 succeeded")
	}
	if n := srv.Count(autotasktest.KindCreateContact); n != 1 {
		t.Errorf("create sent %d times, want once", n)
	}
}

func TestHourlyThreshold(t *testing.T) {
	srv := newServer(t, autotasktest.Options{HourlyLimit: 8, SlowHalf: 20 * time.Millisecond, SlowThreeQuarters: 40 * time.Millisecond})
	c := newClient(t, srv, func(c *autotask.Config) { c.MaxRetries = -1 })
	ctx := context.Background()
	th, err := c.Threshold(ctx, "acme")
	if err != nil || th.Limit != 8 || th.WindowMinutes != 60 || th.Used != 0 {
		t.Fatalf("Threshold = %+v, %v", th, err)
	}
	var slow time.Duration
	for i := range 8 {
		start := time.Now()
		if _, err := c.Index(ctx, scope); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 7 {
			slow = time.Since(start)
		}
	}
	if slow < 40*time.Millisecond {
		t.Errorf("call past 75%% took %v, want the 40ms delay", slow)
	}
	_, err = c.Index(ctx, scope)
	var re *restclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("call over the threshold: %v", err)
	}
	if th, _ := c.Threshold(ctx, "acme"); th.Used != 8 {
		t.Errorf("Used = %d, want 8", th.Used)
	}
}

func TestLimiterPacesRequests(t *testing.T) {
	// The limiter is shared per API user: a user of its own keeps the
	// other tests' fast limiter out of this one.
	srv2 := autotasktest.NewServer(autotasktest.Options{UserName: "paced@acmemsp.example"})
	defer srv2.Close()
	srv2.AddCompany(123, "Acme")
	c2 := newClient(t, srv2, func(c *autotask.Config) { c.Rate, c.Burst = "20/s", 1 })
	start := time.Now()
	for range 5 {
		if _, err := c2.Index(context.Background(), scope); err != nil {
			t.Fatal(err)
		}
	}
	// Six requests (zone + five queries) at 20/s with burst 1 take >= 250ms.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("six requests took %v; the limiter did not pace them", el)
	}
	if c2.Stats().LimiterWait <= 0 {
		t.Error("no limiter wait recorded")
	}
}

func TestConfig(t *testing.T) {
	_, err := autotask.New(autotask.Config{UserName: "u", Secret: "very-secret"})
	if err == nil || !strings.Contains(err.Error(), "IntegrationCode") || strings.Contains(err.Error(), "very-secret") {
		t.Errorf("err = %v", err)
	}
	if _, err := autotask.New(autotask.Config{UserName: "u", Secret: "s", IntegrationCode: "i", APIURL: "not a url"}); err == nil {
		t.Error("bad APIURL accepted")
	}
	srv := newServer(t, autotasktest.Options{})
	c := newClient(t, srv, nil)
	if _, err := c.Index(context.Background(), sinks.PSAScope{Customer: "acme", CompanyID: "12a"}); err == nil {
		t.Error("bad company id accepted")
	}
}

// BenchmarkImport1000Into5000 measures API requests per imported account:
// 1,000 new contacts into a company that has 5,000.
func BenchmarkImport1000Into5000(b *testing.B) {
	var perAccount float64
	for b.Loop() {
		b.StopTimer()
		srv := autotasktest.NewServer(autotasktest.Options{HourlyLimit: 1 << 30})
		srv.Generate(123, 5000, 3)
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
		b.ReportMetric(float64(srv.Count(autotasktest.KindQueryContacts)), "query-requests")
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(perAccount, "requests/account")
}

// Concurrent first calls discover the zone once.
func TestConcurrentCallsDiscoverTheZoneOnce(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	srv.SetLatency(20 * time.Millisecond) // all eight are in flight before the first answer
	c := newClient(t, srv, nil)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.Zone(context.Background(), "acme")
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count(autotasktest.KindZone); n != 1 {
		t.Fatalf("zone discoveries = %d, want 1", n)
	}
}

package connectwise_test

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
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
)

var scope = sinks.PSAScope{Customer: "acme", CompanyID: "250"}

func newClient(t testing.TB, srv *cwtest.Server, mod func(*connectwise.Config)) *connectwise.Client {
	t.Helper()
	cfg := connectwise.Config{
		URL: srv.URL, CompanyID: srv.CompanyID, PublicKey: srv.PublicKey, PrivateKey: srv.PrivateKey, ClientID: srv.ClientID,
		Rate: "100000/s", Burst: 1000, Transport: srv.Client().Transport,
		MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetries: 3,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := connectwise.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newServer(t testing.TB, o cwtest.Options) *cwtest.Server {
	srv := cwtest.NewServer(o)
	t.Cleanup(srv.Close)
	srv.AddCompany(250, "Acme", "Acme Ltd")
	srv.AddCompany(251, "Other", "Other Inc")
	return srv
}

func TestIndexSeveralPages(t *testing.T) {
	for _, forward := range []bool{false, true} {
		t.Run(fmt.Sprintf("forwardOnly=%v", forward), func(t *testing.T) {
			srv := newServer(t, cwtest.Options{})
			srv.Generate(250, 250, 7)
			srv.Generate(251, 30, 8)
			jane := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Jane", LastName: "Doe", Email: "Jane.Doe@Acme.example"})
			c := newClient(t, srv, func(c *connectwise.Config) { c.PageSize = 100; c.ForwardOnly = forward })
			ix, err := c.Index(context.Background(), scope)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() != 251 {
				t.Errorf("indexed %d contacts, want 251 (only company 250)", ix.Len())
			}
			if got := srv.Count(cwtest.KindListContacts); got != 3 {
				t.Errorf("list requests = %d, want 3 pages", got)
			}
			m := ix.Match("", "", "jane.doe@acme.example")
			if m.Outcome != sinks.Matched || m.Contact.Ref != fmt.Sprint(jane) {
				t.Errorf("match by email = %+v, want contact %d", m, jane)
			}
			if m.Contact.FirstName != "Jane" || m.Contact.LastName != "Doe" {
				t.Errorf("contact names = %q %q", m.Contact.FirstName, m.Contact.LastName)
			}
		})
	}
}

func TestIndexEmptyCompany(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	ix, err := newClient(t, srv, nil).Index(context.Background(), scope)
	if err != nil || ix.Len() != 0 {
		t.Fatalf("Index = %v, %v; want empty", ix, err)
	}
}

func TestCreateShowsUpInNextIndex(t *testing.T) {
	srv := newServer(t, cwtest.Options{EmailTypeID: 7})
	srv.Generate(250, 20, 1)
	c := newClient(t, srv, nil)
	ctx := context.Background()
	got, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Zoe", LastName: "Quinn", Email: "zoe.quinn@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref == "" || got.Email != "zoe.quinn@acme.example" || got.FirstName != "Zoe" || got.LastName != "Quinn" {
		t.Errorf("created %+v", got)
	}
	// The second create reuses the resolved communication type.
	if _, err := c.Create(ctx, scope, sinks.NewContact{FirstName: "Ann", LastName: "Lee", Email: "ann@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(cwtest.KindCommTypes); n != 1 {
		t.Errorf("communication type lookups = %d, want 1", n)
	}
	ix, err := c.Index(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 22 {
		t.Errorf("index has %d contacts, want 22", ix.Len())
	}
	if m := ix.Match("x", "y", "ZOE.QUINN@acme.example"); m.Outcome != sinks.Matched || m.Contact.Ref != got.Ref {
		t.Errorf("created contact not found by email: %+v", m)
	}
	if m := ix.Match("Ann", "Lee", ""); m.Outcome != sinks.Matched {
		t.Errorf("created contact not found by name: %+v", m)
	}
	stored := srv.Contacts(250)
	if last := stored[len(stored)-1]; last.Email != "ann@acme.example" {
		t.Errorf("stored email = %q: the type id of the instance was not used", last.Email)
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.Generate(250, 10, 1)
	srv.Inject(cwtest.Fault{Kind: cwtest.KindListContacts, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := newClient(t, srv, nil)
	start := time.Now()
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 10 {
		t.Errorf("indexed %d, want 10", ix.Len())
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("retried after %v, before Retry-After's 1s", el)
	}
	if srv.Count(cwtest.KindListContacts) != 2 || c.Stats().Throttled != 1 {
		t.Errorf("list requests %d, throttled %d; want 2 and 1", srv.Count(cwtest.KindListContacts), c.Stats().Throttled)
	}
}

func TestAuthFailsAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		opts   cwtest.Options
		mod    func(*connectwise.Config)
		status string
	}{
		{"bad private key", cwtest.Options{}, func(c *connectwise.Config) { c.PrivateKey = "wrong-private" }, "HTTP 401"},
		{"bad client id", cwtest.Options{}, func(c *connectwise.Config) { c.ClientID = "not-registered" }, "HTTP 401"},
		{"bad company as 404", cwtest.Options{AuthFailureStatus: http.StatusNotFound}, func(c *connectwise.Config) { c.CompanyID = "other" }, "HTTP 404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.opts)
			c := newClient(t, srv, tc.mod)
			_, err := c.Index(context.Background(), scope)
			if err == nil {
				t.Fatal("Index succeeded with bad credentials")
			}
			msg := err.Error()
			for _, want := range []string{"ConnectWise: customer acme: list contacts of company 250 page 1", tc.status, "check the ConnectWise"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "wrong-private") || strings.Contains(msg, srv.PrivateKey) {
				t.Errorf("error %q leaks a key", msg)
			}
			if n := srv.Count(cwtest.KindListContacts); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestMalformedBody(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.Generate(250, 10, 1)
	srv.Inject(cwtest.Fault{Kind: cwtest.KindListContacts, Malformed: true})
	_, err := newClient(t, srv, nil).Index(context.Background(), scope)
	if !errors.Is(err, restclient.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if !strings.Contains(err.Error(), "ConnectWise: customer acme:") {
		t.Errorf("error %q does not name integration and customer", err)
	}
}

func TestServerErrorRetriedForListNotForCreate(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.Inject(cwtest.Fault{Kind: cwtest.KindListContacts, Status: http.StatusServiceUnavailable, Times: 2})
	srv.Inject(cwtest.Fault{Kind: cwtest.KindCreateContact, Status: http.StatusServiceUnavailable})
	c := newClient(t, srv, nil)
	if _, err := c.Index(context.Background(), scope); err != nil {
		t.Fatalf("Index after two 503s: %v", err)
	}
	_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B", Email: "a@b.example"})
	var re *restclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable {
		t.Fatalf("Create err = %v, want a 503 *restclient.Error", err)
	}
	if n := srv.Count(cwtest.KindCreateContact); n != 1 {
		t.Errorf("create sent %d times, want once", n)
	}
}

func TestInvalidObjectMessage(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	c := newClient(t, srv, nil)
	_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: strings.Repeat("x", 31), LastName: "B", Email: "a@b.example"})
	if err == nil || !strings.Contains(err.Error(), "firstName cannot be greater than 30 characters") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("err = %v, want the InvalidObject field message", err)
	}
	_, err = c.Create(context.Background(), sinks.PSAScope{Customer: "acme", CompanyID: "999"}, sinks.NewContact{FirstName: "A", Email: "a@b.example"})
	if err == nil || !strings.Contains(err.Error(), "Company with id 999 not found") {
		t.Fatalf("err = %v, want unknown company", err)
	}
}

func TestBadScopeAndConfig(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	c := newClient(t, srv, nil)
	for _, id := range []string{"", "abc", "0", "-3", "250 or 1=1"} {
		if _, err := c.Index(context.Background(), sinks.PSAScope{Customer: "acme", CompanyID: id}); err == nil {
			t.Errorf("company id %q accepted", id)
		}
	}
	if srv.Total() != 0 {
		t.Errorf("requests sent for bad scopes: %v", srv.Counts())
	}
	if _, err := connectwise.New(connectwise.Config{URL: "ftp://x", CompanyID: "a", PublicKey: "b", PrivateKey: "c", ClientID: "d"}); err == nil {
		t.Error("ftp URL accepted")
	}
	_, err := connectwise.New(connectwise.Config{URL: "https://x", PrivateKey: "secret-value"})
	if err == nil || strings.Contains(err.Error(), "secret-value") || !strings.Contains(err.Error(), "CompanyID, PublicKey, ClientID") {
		t.Errorf("config error = %v", err)
	}
}

// BenchmarkImport1000Into5000 measures API requests per imported account:
// 1,000 new contacts into a company that has 5,000.
func BenchmarkImport1000Into5000(b *testing.B) {
	var perAccount float64
	for b.Loop() {
		b.StopTimer()
		srv := cwtest.NewServer(cwtest.Options{})
		srv.Generate(250, 5000, 3)
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
		b.ReportMetric(float64(srv.Count(cwtest.KindListContacts)), "list-requests")
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(perAccount, "requests/account")
}

// Concurrent creates resolve the email communication type once.
func TestConcurrentCreatesListCommunicationTypesOnce(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.SetLatency(20 * time.Millisecond) // all eight are in flight before the first listing answers
	c := newClient(t, srv, nil)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "User", LastName: fmt.Sprint(i), Email: fmt.Sprintf("u%d@acme.example", i)})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count(cwtest.KindCommTypes); n != 1 {
		t.Fatalf("communication type listings = %d, want 1", n)
	}
}

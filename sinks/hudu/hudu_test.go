package hudu_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
	"github.com/sirupsen/logrus"
)

func startServer(t testing.TB, o hudutest.Options) *hudutest.Server {
	t.Helper()
	if o.APIKey == "" {
		// Each fake listens on its own port, so each gets its own shared
		// limiter; a key per test keeps failures readable.
		o.APIKey = "hudu.test." + strings.ReplaceAll(t.Name(), "/", ".")
	}
	srv := hudutest.NewServer(o)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t testing.TB, srv *hudutest.Server, mod func(*hudu.Config)) *hudu.Client {
	t.Helper()
	cfg := hudu.Config{URL: srv.URL, APIKey: srv.APIKey, Rate: "1000000/1s", MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := hudu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var acme = sinks.VaultScope{Customer: "acme", Container: "7"}

func TestNewConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  hudu.Config
		want string
	}{
		{"nothing", hudu.Config{}, "missing URL, APIKey"},
		{"bad url", hudu.Config{URL: "docs.msp.example", APIKey: "k"}, "not an http(s) URL"},
		{"bad rate", hudu.Config{URL: "https://docs.msp.example", APIKey: "k", Rate: "1/fortnight"}, "rate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hudu.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "Hudu: ") {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

func TestIndexPages(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane", Username: "jdoe", Password: "s3cret", PasswordType: "Active Directory"})
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "No type", Username: "notype", Password: "x"})
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Old", Username: "old", Password: "x", PasswordType: "Active Directory", Archived: true})
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 8, Name: "Elsewhere", Username: "elsewhere", Password: "x", PasswordType: "Active Directory"})
	srv.Generate(7, 30, 4)
	live := 0
	for _, p := range srv.Passwords(7) {
		if !p.Archived {
			live++
		}
	}
	for _, tt := range []struct {
		name      string
		pageSize  int
		maxServer int
		pages     int64
	}{
		// 33 entries: 4 pages of 10, the last one short.
		{"pages of 10", 10, 0, 4},
		// Exactly divisible: 11 full pages of 3, then an empty one.
		{"pages of 3", 3, 0, 12},
		// One short page, confirmed by an empty second page.
		{"one page", 1000, 0, 2},
		// The server honours only 25: the short-looking first page is
		// confirmed, then paging goes on at 25.
		{"server caps page_size", 1000, 25, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := srv
			if tt.maxServer > 0 {
				srv = startServer(t, hudutest.Options{MaxPageSize: tt.maxServer})
				srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane", Username: "jdoe", Password: "s3cret", PasswordType: "Active Directory"})
				srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "No type", Username: "notype", Password: "x"})
				srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Old", Username: "old", Password: "x", PasswordType: "Active Directory", Archived: true})
				srv.Generate(7, 30, 4)
			}
			srv.ResetCounts()
			c := newClient(t, srv, func(c *hudu.Config) { c.PageSize = tt.pageSize })
			ix, err := c.Index(context.Background(), acme)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() != live {
				t.Fatalf("indexed %d, want %d", ix.Len(), live)
			}
			if got := srv.Count(hudutest.KindListPasswords); got != tt.pages {
				t.Errorf("%d list requests, want %d", got, tt.pages)
			}
			if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "JDoe"}); m.Outcome != sinks.Matched || m.Entry.Category != "Active Directory" {
				t.Errorf("jdoe: %+v", m)
			}
			if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "notype"}); m.Outcome != sinks.PossibleDuplicate {
				t.Errorf("notype: %+v", m)
			}
			for _, u := range []string{"old", "elsewhere"} {
				if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: u}); m.Outcome != sinks.NoMatch {
					t.Errorf("%s: %+v", u, m)
				}
			}
		})
	}
}

func TestCreateShowsUpInNextIndex(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	c := newClient(t, srv, nil)
	ctx := context.Background()
	e, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "Jane Doe (Office 365)", Username: "jane@acme.example", Category: "Office 365", Password: "Initial-1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Ref == "" || e.Category != "Office 365" || e.Username != "jane@acme.example" {
		t.Fatalf("created %+v", e)
	}
	e2, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "John (Active Directory)", Username: "john", Category: "Active Directory"})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := c.Index(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if m := ix.Match(sinks.Identity{Source: "m365", UPN: "jane@acme.example"}); m.Outcome != sinks.Matched || m.Entry.Ref != e.Ref {
		t.Fatalf("jane: %+v", m)
	}
	if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "john"}); m.Outcome != sinks.Matched || m.Entry.Ref != e2.Ref {
		t.Fatalf("john: %+v", m)
	}
	stored := srv.Passwords(7)
	if len(stored) != 2 || stored[0].Password != "Initial-1" || stored[1].Password == "" || stored[1].Description == "" || stored[0].InPortal {
		t.Fatalf("stored %+v", stored)
	}
	if srv.Count(hudutest.KindCreatePassword) != 2 {
		t.Errorf("counts %v", srv.Counts())
	}
}

func TestCreateValidationError(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	c := newClient(t, srv, nil)
	_, err := c.Create(context.Background(), sinks.VaultScope{Customer: "acme", Container: "99"}, sinks.NewVaultEntry{Name: "x", Username: "x", Password: "p"})
	if err == nil {
		t.Fatal("created in a missing company")
	}
	for _, want := range []string{`Hudu: customer acme: create asset password "x" in company 99`, "HTTP 422", "must exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.Generate(7, 5, 1)
	srv.Inject(hudutest.Fault{Kind: hudutest.KindListPasswords, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := newClient(t, srv, nil)
	start := time.Now()
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before Retry-After", waited)
	}
	if c.Stats().Throttled != 1 {
		t.Errorf("stats %+v", c.Stats())
	}
}

// TestRateLimitRetryLater: the instance's own counter answers the bare
// "Retry later" without Retry-After; the client backs off and succeeds.
func TestRateLimitRetryLater(t *testing.T) {
	srv := startServer(t, hudutest.Options{RateLimit: 3, RateWindow: time.Second})
	srv.Generate(7, 5, 1)
	c := newClient(t, srv, func(c *hudu.Config) {
		c.MinWait, c.MaxWait = 200*time.Millisecond, 400*time.Millisecond
		c.MaxRetries = 10
	})
	for range 4 {
		if _, err := c.Index(context.Background(), acme); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Throttled() == 0 || c.Stats().Throttled != srv.Throttled() {
		t.Errorf("server throttled %d, client saw %d", srv.Throttled(), c.Stats().Throttled)
	}
}

func TestBadKeyFailsAtOnce(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.Generate(7, 3, 1)
	c := newClient(t, srv, func(c *hudu.Config) { c.APIKey = "wrong-key-value" })
	_, err := c.Index(context.Background(), acme)
	if err == nil {
		t.Fatal("wrong key accepted")
	}
	for _, want := range []string{"Hudu: customer acme: list asset passwords of company 7 page 1", "HTTP 401", "Invalid API key", "check the Hudu credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-key-value") {
		t.Error("the key leaked into the error")
	}
	if srv.Total() != 1 {
		t.Errorf("%d requests, want 1", srv.Total())
	}
}

func TestMalformedBody(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.Generate(7, 3, 1)
	srv.Inject(hudutest.Fault{Kind: hudutest.KindListPasswords, Malformed: true})
	c := newClient(t, srv, nil)
	_, err := c.Index(context.Background(), acme)
	if !errors.Is(err, restclient.ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
	for _, want := range []string{"Hudu: customer acme:", "malformed response body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestListingsOddServers runs the client against servers that break the
// contract in ways the fake does not: values are in clear in Hudu
// listings, so an error about a listing must never quote one.
func TestListingsOddServers(t *testing.T) {
	for _, tt := range []struct {
		name, body, want string
	}{
		{"wrong type", `{"asset_passwords":[{"id":1,"company_id":7,"password":"Very-Secret-Value","name":{"x":"Very-Secret-Value"}}]}`, "malformed response body"},
		{"bad id", `{"asset_passwords":[{"id":"Very-Secret-Value","password":"Very-Secret-Value"}]}`, "malformed response body"},
		{"another company", `{"asset_passwords":[{"id":1,"company_id":8,"password":"Very-Secret-Value","name":"x"}]}`, "company 8; is company_id honoured?"},
		{"error document", `{"error":"Very-Secret-Value"}`, "no asset_passwords member"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := hudu.New(hudu.Config{URL: srv.URL, APIKey: "k-" + t.Name(), Rate: "1000/s"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Index(context.Background(), acme)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Hudu: customer acme:") {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Very-Secret-Value") {
				t.Fatalf("a value leaked: %v", err)
			}
		})
	}
}

func TestServerErrorsAndTimeoutsRetried(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.Generate(7, 3, 1)
	srv.Inject(hudutest.Fault{Kind: hudutest.KindListPasswords, Status: http.StatusBadGateway})
	srv.Inject(hudutest.Fault{Kind: hudutest.KindListPasswords, Latency: 2 * time.Second})
	c := newClient(t, srv, func(c *hudu.Config) { c.Timeout = 200 * time.Millisecond })
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	// A slow machine may time out more attempts; at least the two faults
	// were retried.
	if c.Stats().Retries < 2 {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestCreateNotRetriedOn5xx(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	srv.Inject(hudutest.Fault{Kind: hudutest.KindCreatePassword, Status: http.StatusServiceUnavailable})
	c := newClient(t, srv, nil)
	_, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "x", Username: "x", Password: "p"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || srv.Count(hudutest.KindCreatePassword) != 1 {
		t.Fatalf("err %v, %d creates", err, srv.Count(hudutest.KindCreatePassword))
	}
}

// TestSharedKeyRate creates 50 entries concurrently for five customers on
// one key and checks at the fake that the configured rate held. The
// limiter never releases a request early, so the last one cannot arrive
// before (n-1)/rate after the start; half of that is the bound, because the
// limiter's accounting gains time under contention (a caller that read the
// clock may be descheduled before taking its lock). Five unshared limiters
// would finish in a fifth of it.
func TestSharedKeyRate(t *testing.T) {
	const perSecond = 20
	srv := startServer(t, hudutest.Options{RateLimit: 2*perSecond + 10, RateWindow: time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	start := time.Now()
	for co := 1; co <= 5; co++ {
		srv.AddCompany(co, fmt.Sprintf("Customer %d", co))
		c := newClient(t, srv, func(c *hudu.Config) { c.Rate = fmt.Sprintf("%d/s", perSecond) })
		scope := sinks.VaultScope{Customer: fmt.Sprintf("customer%d", co), Container: fmt.Sprint(co)}
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := fmt.Sprintf("user%d", i)
				if _, err := c.Create(context.Background(), scope, sinks.NewVaultEntry{Name: u, Username: u, Category: "Active Directory", Password: "p"}); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	arrivals := srv.Arrivals()
	n := len(arrivals)
	if n != 50 || srv.Throttled() != 0 {
		t.Fatalf("%d requests, %d throttled", n, srv.Throttled())
	}
	if floor := time.Duration(n-1) * time.Second / perSecond / 2; arrivals[n-1].Sub(start) < floor {
		t.Errorf("%d requests arrived within %v; %d/s needs at least %v", n, arrivals[n-1].Sub(start), perSecond, floor)
	}
}

// TestNoSecretInLogs runs a create and an index at debug level and looks
// for password values and the key in everything logged.
func TestNoSecretInLogs(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane", Username: "jdoe", Password: "Stored-Secret", PasswordType: "Active Directory"})
	var buf strings.Builder
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetLevel(logrus.DebugLevel)
	c := newClient(t, srv, func(c *hudu.Config) { c.Log = log })
	if _, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "x", Username: "x", Password: "Initial-Secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "api request") {
		t.Fatalf("expected request lines, got:\n%s", out)
	}
	for _, secret := range []string{"Initial-Secret", "Stored-Secret", srv.APIKey} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries a secret:\n%s", out)
		}
	}
}

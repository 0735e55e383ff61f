package itglue_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/sirupsen/logrus"
)

// newClient makes a client for srv with a key of its own (limiters are
// shared per key across the process) and fast retries.
func newClient(t testing.TB, srv *itgluetest.Server, mod func(*itglue.Config)) *itglue.Client {
	t.Helper()
	cfg := itglue.Config{URL: srv.URL, APIKey: srv.APIKey, Rate: "1000000/1s", MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := itglue.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uniqueKey gives each test its own key, hence its own shared limiter.
func uniqueKey(t testing.TB) string { return "ITG.test." + strings.ReplaceAll(t.Name(), "/", ".") }

func startServer(t testing.TB, o itgluetest.Options) *itgluetest.Server {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey = uniqueKey(t)
	}
	srv := itgluetest.NewServer(o)
	t.Cleanup(srv.Close)
	return srv
}

var acme = sinks.VaultScope{Customer: "acme", Container: "7"}

func TestNewConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  itglue.Config
		want string
	}{
		{"no key", itglue.Config{}, "missing APIKey"},
		{"bad region", itglue.Config{APIKey: "k", Region: "mars"}, "unknown region"},
		{"bad url", itglue.Config{APIKey: "k", URL: "ftp://x"}, "not an http(s) URL"},
		{"bad rate", itglue.Config{APIKey: "k", Rate: "fast"}, "rate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := itglue.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "IT Glue: ") {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	for region, want := range map[string]string{"": itglue.URLUS, "US": itglue.URLUS, "eu": itglue.URLEU, "au": itglue.URLAU} {
		if got, err := itglue.RegionURL(region); err != nil || got != want {
			t.Errorf("RegionURL(%q) = %q, %v", region, got, err)
		}
	}
}

func TestIndexPagesAndCategories(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	srv.AddOrganization(8, "Other")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane", Username: "jdoe", Value: "s3cret-value"}, "Active Directory")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "No category", Username: "nocat", Value: "x"}, "")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Personal", Username: "mine", Value: "x", MyGlue: true}, "Active Directory")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Only me", Username: "restricted", Value: "x", Restricted: true}, "Active Directory")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Old", Username: "archived", Value: "x", Archived: true}, "Active Directory")
	srv.AddPassword(itgluetest.Password{OrganizationID: 8, Name: "Elsewhere", Username: "jdoe", Value: "x"}, "Active Directory")
	srv.Generate(7, 25, 3)
	generated := 0
	for _, p := range srv.Passwords(7) {
		if !p.Archived && !p.MyGlue && !p.Restricted {
			generated++
		}
	}
	c := newClient(t, srv, func(c *itglue.Config) { c.PageSize = 4 })
	ix, err := c.Index(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != generated {
		t.Fatalf("indexed %d entries, want %d", ix.Len(), generated)
	}
	wantPages := int64((len(srv.Passwords(7)) + 3) / 4)
	if got := srv.Count(itgluetest.KindListPasswords); got != wantPages {
		t.Errorf("%d list requests, want %d", got, wantPages)
	}
	if got := srv.Count(itgluetest.KindListCategories); got != 0 {
		t.Errorf("listed categories %d times although every entry carries its name", got)
	}
	if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "JDOE"}); m.Outcome != sinks.Matched || m.Entry.Category != "Active Directory" {
		t.Errorf("jdoe: %+v", m)
	}
	if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "nocat"}); m.Outcome != sinks.PossibleDuplicate {
		t.Errorf("nocat: %+v", m)
	}
	for _, u := range []string{"mine", "restricted", "archived"} {
		if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: u}); m.Outcome != sinks.NoMatch {
			t.Errorf("%s must never match: %+v", u, m)
		}
	}
}

func TestIndexClampedOrLimitedPageSize(t *testing.T) {
	// A page size the client does not exceed; and a fake that refuses
	// more than 1,000 proves the client never asks for more.
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 2100, 9)
	c := newClient(t, srv, func(c *itglue.Config) { c.PageSize = 5000 })
	ix, err := c.Index(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() == 0 || srv.Count(itgluetest.KindListPasswords) != 3 {
		t.Fatalf("%d entries in %d pages", ix.Len(), srv.Count(itgluetest.KindListPasswords))
	}
}

func TestCreateShowsUpInNextIndex(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	srv.AddCategory("Office 365")
	c := newClient(t, srv, nil)
	ctx := context.Background()
	e, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: "Active Directory", Password: "Initial-Secret-1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Ref == "" || e.Username != "jdoe" || e.Category != "Active Directory" || e.Name != "Jane Doe (Active Directory)" {
		t.Fatalf("created %+v", e)
	}
	if got := srv.Count(itgluetest.KindCreateCategory); got != 1 {
		t.Errorf("%d category creates, want 1 (Active Directory was missing)", got)
	}
	// The second entry in an existing category creates no category, and
	// one without a password gets a placeholder the API accepts.
	e2, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "Jane Doe (Office 365)", Username: "jane@acme.example", Category: "office 365"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count(itgluetest.KindCreateCategory) != 1 || srv.Count(itgluetest.KindListCategories) != 1 {
		t.Errorf("categories: %v", srv.Counts())
	}
	ix, err := c.Index(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "jdoe"}); m.Outcome != sinks.Matched || m.Entry.Ref != e.Ref {
		t.Fatalf("created entry not matched: %+v", m)
	}
	if m := ix.Match(sinks.Identity{Source: "m365", UPN: "jane@acme.example"}); m.Outcome != sinks.Matched || m.Entry.Ref != e2.Ref {
		t.Fatalf("created entry not matched: %+v", m)
	}
	stored := srv.Passwords(7)
	if len(stored) != 2 || stored[0].Value != "Initial-Secret-1" || stored[1].Value == "" || stored[1].Notes == "" {
		t.Fatalf("stored %+v", stored)
	}
}

func TestCreateCategoryRefused(t *testing.T) {
	srv := startServer(t, itgluetest.Options{DenyCategoryCreate: true})
	srv.AddOrganization(7, "Acme")
	c := newClient(t, srv, nil)
	_, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "x", Username: "x", Category: "Active Directory", Password: "p"})
	if err == nil {
		t.Fatal("created without a category")
	}
	for _, want := range []string{"IT Glue: customer acme:", `password category "Active Directory" does not exist and could not be created`, "HTTP 403"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if srv.Count(itgluetest.KindCreatePassword) != 0 {
		t.Error("the entry was created without its category")
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 10, 1)
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindListPasswords, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := newClient(t, srv, nil)
	start := time.Now()
	ix, err := c.Index(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before Retry-After", waited)
	}
	if ix.Len() == 0 || srv.Count(itgluetest.KindListPasswords) != 2 || c.Stats().Throttled != 1 {
		t.Fatalf("len %d, %v, %+v", ix.Len(), srv.Counts(), c.Stats())
	}
}

func TestCreateRetriedOnlyOn429(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	c := newClient(t, srv, nil)
	ctx := context.Background()
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindCreatePassword, Status: http.StatusTooManyRequests, RetryAfter: "0"})
	if _, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "a", Username: "a", Password: "p"}); err != nil {
		t.Fatalf("429 on create not retried: %v", err)
	}
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindCreatePassword, Status: http.StatusBadGateway})
	_, err := c.Create(ctx, acme, sinks.NewVaultEntry{Name: "b", Username: "b", Password: "p"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("a 502 on create must be reported, not retried: %v", err)
	}
	if got := srv.Count(itgluetest.KindCreatePassword); got != 3 {
		t.Errorf("%d create requests, want 3", got)
	}
}

func TestBadKeyFailsAtOnce(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 3, 1)
	c := newClient(t, srv, func(c *itglue.Config) { c.APIKey = "ITG.wrong-key-value" })
	_, err := c.Index(context.Background(), acme)
	if err == nil {
		t.Fatal("wrong key accepted")
	}
	for _, want := range []string{"IT Glue: customer acme: list passwords of organization 7 page 1", "HTTP 403", "Invalid API key", "check the IT Glue credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-key-value") {
		t.Error("the key leaked into the error")
	}
	var re *restclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Errorf("not a *restclient.Error with 403: %v", err)
	}
	if srv.Total() != 1 {
		t.Errorf("%d requests, want 1 (no retry)", srv.Total())
	}
}

func TestMalformedBody(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 3, 1)
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindListPasswords, Malformed: true})
	c := newClient(t, srv, nil)
	_, err := c.Index(context.Background(), acme)
	if !errors.Is(err, restclient.ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
	for _, want := range []string{"IT Glue: customer acme:", "malformed response body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestServerErrorsRetried(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 3, 1)
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindListPasswords, Status: http.StatusServiceUnavailable, Times: 2})
	c := newClient(t, srv, nil)
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	if srv.Count(itgluetest.KindListPasswords) != 3 {
		t.Errorf("counts %v", srv.Counts())
	}
}

func TestTimeoutRetried(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.Generate(7, 3, 1)
	srv.Inject(itgluetest.Fault{Kind: itgluetest.KindListPasswords, Latency: 2 * time.Second})
	c := newClient(t, srv, func(c *itglue.Config) { c.Timeout = 200 * time.Millisecond })
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	// A slow machine may time out more attempts; at least the fault was
	// retried.
	if c.Stats().Retries < 1 {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestBadOrganization(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	c := newClient(t, srv, nil)
	_, err := c.Index(context.Background(), sinks.VaultScope{Customer: "acme", Container: "x"})
	if err == nil || !strings.Contains(err.Error(), "IT Glue: customer acme: organization id") {
		t.Fatalf("err %v", err)
	}
	_, err = c.Index(context.Background(), sinks.VaultScope{Customer: "acme", Container: "99"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("unknown organization: %v", err)
	}
}

// TestSharedKeyRate creates 50 entries concurrently for five customers on
// one key and checks at the fake that the configured rate held. The
// limiter never releases a request early, so the last one cannot arrive
// before (n-1)/rate after the start; half of that is the bound, because the
// limiter's accounting gains time under contention (a caller that read the
// clock may be descheduled before taking its lock). Five unshared limiters
// would finish in a fifth of it. The per-second check leaves room for
// requests that a stalled process releases together.
func TestSharedKeyRate(t *testing.T) {
	const perSecond = 20
	srv := startServer(t, itgluetest.Options{RateLimit: 2*perSecond + 10, RateWindow: time.Second})
	for org := 1; org <= 5; org++ {
		srv.AddOrganization(org, fmt.Sprintf("Customer %d", org))
	}
	srv.AddCategory("Active Directory")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	start := time.Now()
	for org := 1; org <= 5; org++ {
		c := newClient(t, srv, func(c *itglue.Config) { c.Rate = fmt.Sprintf("%d/s", perSecond) })
		scope := sinks.VaultScope{Customer: fmt.Sprintf("customer%d", org), Container: fmt.Sprint(org)}
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
	if got := srv.Count(itgluetest.KindCreatePassword); got != 50 {
		t.Errorf("%d creates, want 50", got)
	}
	if srv.Throttled() != 0 {
		t.Errorf("the fake refused %d requests", srv.Throttled())
	}
	arrivals := srv.Arrivals()
	n := len(arrivals)
	if floor := time.Duration(n-1) * time.Second / perSecond / 2; arrivals[n-1].Sub(start) < floor {
		t.Errorf("%d requests arrived within %v, the configured %d/s needs at least %v", n, arrivals[n-1].Sub(start), perSecond, floor)
	}
	if got := srv.MaxInWindow(time.Second); got > 2*perSecond {
		t.Errorf("%d requests within one second, configured %d/s", got, perSecond)
	}
}

func TestFakeRateLimit(t *testing.T) {
	srv := startServer(t, itgluetest.Options{RateLimit: 3, RateWindow: time.Minute})
	srv.Generate(7, 1, 1)
	c := newClient(t, srv, func(c *itglue.Config) { c.MaxRetries = -1 })
	for range 3 {
		if _, err := c.Index(context.Background(), acme); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Index(context.Background(), acme)
	var re *restclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests {
		t.Fatalf("fourth request in the window: %v", err)
	}
	if srv.Throttled() != 1 {
		t.Errorf("throttled %d", srv.Throttled())
	}
}

func TestCategoryIDsMappedToNames(t *testing.T) {
	srv := startServer(t, itgluetest.Options{OmitCategoryNames: true})
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane", Username: "jane@acme.example", Value: "x"}, "Microsoft 365")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "John", Username: "john", Value: "x"}, "")
	c := newClient(t, srv, func(c *itglue.Config) { c.PageSize = 1 })
	ix, err := c.Index(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	if m := ix.Match(sinks.Identity{Source: "m365", UPN: "jane@acme.example"}); m.Outcome != sinks.Matched || m.Entry.Category != "Microsoft 365" {
		t.Fatalf("jane: %+v", m)
	}
	if m := ix.Match(sinks.Identity{Source: "ad", SAMAccountName: "john"}); m.Outcome != sinks.PossibleDuplicate {
		t.Fatalf("john: %+v", m)
	}
	if got := srv.Count(itgluetest.KindListCategories); got != 1 {
		t.Errorf("%d category listings, want 1", got)
	}
}

func TestConcurrentCreatesMakeOneCategory(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	c := newClient(t, srv, nil)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("u%d", i)
			if _, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: u, Username: u, Category: "Local Account"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if srv.Count(itgluetest.KindCreateCategory) != 1 || srv.Count(itgluetest.KindListCategories) != 1 || srv.Count(itgluetest.KindCreatePassword) != 10 {
		t.Fatalf("counts %v", srv.Counts())
	}
}

// TestNoSecretInLogs runs a create and an index at debug level and looks
// for the password value and the key in everything logged.
func TestNoSecretInLogs(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Mine", Username: "mine", Value: "Stored-Secret", MyGlue: true}, "Active Directory")
	var buf strings.Builder
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetLevel(logrus.DebugLevel)
	c := newClient(t, srv, func(c *itglue.Config) { c.Log = log })
	if _, err := c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "x", Username: "x", Category: "Active Directory", Password: "Initial-Secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Index(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "api request") || !strings.Contains(out, "never matched") {
		t.Fatalf("expected request and skip lines, got:\n%s", out)
	}
	for _, secret := range []string{"Initial-Secret", "Stored-Secret", srv.APIKey} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries a secret:\n%s", out)
		}
	}
}

func TestNoPasswordAccess(t *testing.T) {
	srv := startServer(t, itgluetest.Options{NoPasswordAccess: true})
	srv.AddOrganization(7, "Acme")
	srv.AddCategory("Active Directory")
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane", Username: "jdoe", Value: "x"}, "Active Directory")
	c := newClient(t, srv, nil)
	// Listing needs no Password Access.
	ix, err := c.Index(context.Background(), acme)
	if err != nil || ix.Len() != 1 {
		t.Fatalf("index: %v", err)
	}
	_, err = c.Create(context.Background(), acme, sinks.NewVaultEntry{Name: "x", Username: "x", Category: "Active Directory", Password: "p"})
	if err == nil || !strings.Contains(err.Error(), "Password Access") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err %v", err)
	}
}

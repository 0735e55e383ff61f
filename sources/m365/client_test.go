package m365_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
	"golang.org/x/time/rate"
)

func TestRevokedTokenIsRenewedOnce(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 2, Users: 30})
	src := newSource(t, srv)
	if got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{})); len(got) != 30 {
		t.Fatalf("first read: %d accounts", len(got))
	}
	srv.RevokeTokens()
	if got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{})); len(got) != 30 {
		t.Fatalf("read after revocation: %d accounts", len(got))
	}
	if n := srv.Count(m365test.KindToken); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}

	// A token Graph keeps refusing is reported, not fetched in a loop.
	srv.Inject(m365test.Fault{Kind: m365test.KindRoles, Status: 401, Times: -1, Code: "InvalidAuthenticationToken", Message: "Access token validation failure."})
	var err error
	for _, e := range src.Accounts(context.Background(), sources.Selection{}) {
		err = e
	}
	if err == nil || !strings.Contains(err.Error(), "InvalidAuthenticationToken") || !strings.Contains(err.Error(), "access token was refused") {
		t.Fatalf("error = %v", err)
	}
	if n := srv.Count(m365test.KindToken); n != 3 {
		t.Errorf("token requests = %d, want 3 (one renewal)", n)
	}
}

func TestSlowAnswerIsRetriedAfterTheAttemptTimeout(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 2, Users: 30})
	srv.Inject(m365test.Fault{Kind: m365test.KindUsers, After: 1, Latency: 5 * time.Second})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10; c.Timeout = 200 * time.Millisecond })
	got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{}))
	if len(got) != 30 {
		t.Fatalf("%d accounts, want 30", len(got))
	}
	// At least one: on a loaded machine the retry itself may also run
	// past the 200 ms attempt timeout and be retried again.
	if st := src.Stats(); st.Retries < 1 {
		t.Errorf("retries = %d, want at least 1", st.Retries)
	}
}

func TestSharedLimiterPacesEveryCustomer(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 2, Users: 40})
	lim := rate.NewLimiter(rate.Every(20*time.Millisecond), 1)
	a := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10; c.Limiter = lim })
	b := newSource(t, srv, func(c *m365.Config) { c.PageSize = 10; c.Limiter = lim; c.Customer = "globex" })
	start := time.Now()
	var wg sync.WaitGroup
	for _, src := range []*m365.Source{a, b} {
		wg.Go(func() {
			for _, err := range src.Accounts(context.Background(), sources.Selection{}) {
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Each read is 1 role list + 4 user pages: 10 requests, at most one
	// per 20 ms after the first.
	if el := time.Since(start); el < 9*20*time.Millisecond {
		t.Errorf("10 requests took %v: the limiter was not shared", el)
	}
	if a.Stats().LimiterWait+b.Stats().LimiterWait == 0 {
		t.Errorf("no time spent waiting on the limiter")
	}
}

func TestConcurrentReadsOfOneSource(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 4, Users: 300, Groups: 3, Admins: 2})
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 50 })
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Go(func() {
			sel := sources.Selection{}
			if i%2 == 1 {
				sel.Groups = []string{"All Staff"}
			}
			for _, err := range src.Accounts(context.Background(), sel) {
				if err != nil {
					t.Error(err)
					return
				}
				counts[i]++
			}
		})
	}
	wg.Wait()
	for i, n := range counts {
		if n != 300 {
			t.Errorf("reader %d: %d accounts, want 300", i, n)
		}
	}
	if n := srv.Count(m365test.KindToken); n != 1 {
		t.Errorf("token requests = %d", n)
	}
}

func TestReadCompletesUnderResourceUnitThrottling(t *testing.T) {
	t.Parallel()
	srv := m365test.NewServer(m365test.Options{ResourceUnitsPer10s: 10})
	t.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 8, Users: 1000})
	// 1 role list + 10 user pages of 100 (1 unit each with $select) = 11
	// units against a bucket of 10: one request is throttled.
	src := newSource(t, srv, func(c *m365.Config) { c.PageSize = 100 })
	got, _ := collect(t, src.Accounts(context.Background(), sources.Selection{}))
	if len(got) != 1000 {
		t.Fatalf("%d accounts, want 1000", len(got))
	}
	if st := src.Stats(); st.Throttled < 1 || st.Retries != st.Throttled {
		t.Errorf("stats %+v: want at least one 429, each retried", st)
	}
}

// TestBrokenEntriesAndForeignLinks serves hand-written pages: broken
// entries are reported one by one and the read goes on; a nextLink to
// another host ends the read before the token can travel there.
func TestBrokenEntriesAndForeignLinks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`)
	})
	mux.HandleFunc("GET /v1.0/directoryRoles", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[]}`)
	})
	mux.HandleFunc("GET /v1.0/users", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[{"id":"a","userPrincipalName":"a@acme.example"},{"id":"b"},{"id":7},{"id":"c","userPrincipalName":"c@acme.example"}],`+
			`"@odata.nextLink":"https://elsewhere.example/v1.0/users?$skiptoken=x"}`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: "tenant", ClientID: "c", ClientSecret: "s",
		LoginURL: ts.URL, GraphURL: ts.URL, Transport: ts.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var entryErrs []string
	var final error
	for a, err := range src.Accounts(context.Background(), sources.Selection{}) {
		var ee *sources.EntryError
		switch {
		case errors.As(err, &ee):
			entryErrs = append(entryErrs, ee.Entry+": "+ee.Reason)
		case err != nil:
			final = err
		default:
			got = append(got, a.ID)
		}
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("accounts %v, want a and c", got)
	}
	if len(entryErrs) != 2 || !strings.Contains(entryErrs[0], "b: no userPrincipalName") || !strings.Contains(entryErrs[1], "not a Graph user object") {
		t.Errorf("entry errors %q", entryErrs)
	}
	if final == nil || !strings.Contains(final.Error(), "not under the Graph URL") || strings.Contains(final.Error(), "skiptoken") {
		t.Errorf("final error %v", final)
	}
}

func TestCheck(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().AddUser(m365test.User{UserPrincipalName: "a@acme.example"})
	if err := newSource(t, srv).Check(context.Background()); err != nil {
		t.Fatalf("Check on a good tenant: %v", err)
	}
	err := newSource(t, srv, func(c *m365.Config) { c.ClientSecret = "wrong" }).Check(context.Background())
	if !errors.Is(err, m365.ErrTokenRefused) {
		t.Errorf("Check with a wrong secret: %v", err)
	}
	srv.Inject(m365test.Fault{Kind: m365test.KindRoles, Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	err = newSource(t, srv).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "list directory roles") || !strings.Contains(err.Error(), "RoleManagement.Read.Directory") {
		t.Errorf("Check without role permission: %v", err)
	}
	if n := srv.Count(m365test.KindUsers); n != 2 {
		t.Errorf("user list requests = %d, want 2 (one per successful token)", n)
	}
}

func TestEveryRequestCarriesItsOwnClientRequestID(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]bool{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`)
	})
	mux.HandleFunc("GET /v1.0/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[r.Header.Get("client-request-id")] = true
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"value":[]}`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: "tenant", ClientID: "c", ClientSecret: "s",
		LoginURL: ts.URL, GraphURL: ts.URL, Transport: ts.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[""] {
		t.Errorf("client-request-ids %v, want two distinct non-empty ones", ids)
	}
}

func TestUnreachableLoginEndpoint(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there any more
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: "tenant", ClientID: "c", ClientSecret: "s3cr3t",
		LoginURL: url, GraphURL: url, Timeout: time.Second, MaxRetries: 1, MinWait: time.Millisecond, MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "get access token") || !strings.Contains(err.Error(), "network access") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error = %v", err)
	}
}

func TestTokenEndpointFailuresAreRetried(t *testing.T) {
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	srv.Default().AddUser(m365test.User{UserPrincipalName: "a@acme.example"})
	srv.Inject(m365test.Fault{Kind: m365test.KindToken, Status: 503, Times: 2})
	if err := newSource(t, srv).Check(context.Background()); err != nil {
		t.Fatalf("Check after two failed token attempts: %v", err)
	}
	if n := srv.Count(m365test.KindToken); n != 3 {
		t.Errorf("token requests = %d, want 3", n)
	}
}

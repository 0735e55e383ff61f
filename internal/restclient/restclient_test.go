package restclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
)

func fastClient(srv *httptest.Server) *Client {
	return New(Config{Integration: "Test API", MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, Transport: srv.Client().Transport})
}

func TestRetriesThrottlingWithRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var gap time.Duration
	var first time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap = time.Since(first)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	c := fastClient(srv)
	var out struct{ OK bool }
	if _, err := c.JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/x", Customer: "acme"}, &out); err != nil || !out.OK {
		t.Fatalf("JSON = %v %+v", err, out)
	}
	if calls.Load() != 2 || gap < 900*time.Millisecond {
		t.Fatalf("calls %d, waited %v; want a retry after Retry-After (1s)", calls.Load(), gap)
	}
	if s := c.Stats(); s.Requests != 2 || s.Retries != 1 || s.Throttled != 1 {
		t.Fatalf("stats %+v", s)
	}
	if tot := Totals()["Test API"]; tot.Requests < 2 || tot.Throttled < 1 {
		t.Fatalf("totals %+v", tot)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector{})
	n, err := testutil.GatherAndCount(reg, "autoimport_api_throttled_total")
	if err != nil || n == 0 {
		t.Fatalf("collector: %d series, %v", n, err)
	}
}

func TestPostIsNotRetriedOnServerError(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c := fastClient(srv)
	_, err := c.JSON(context.Background(), Request{Method: "POST", URL: srv.URL + "/create", Customer: "acme", Body: map[string]string{"a": "b"}}, nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 502 || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls; want one attempt and HTTP 502", err, calls.Load())
	}
	calls.Store(0)
	_, err = c.JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/list", Customer: "acme"}, nil)
	if err == nil || calls.Load() != 6 {
		t.Fatalf("GET: %v after %d calls; want 1 + 5 retries", err, calls.Load())
	}
}

func TestErrorsNameIntegrationCustomerAndVendorMessage(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   []string
	}{
		{401, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}`, []string{"Test API: customer acme", "HTTP 401 InvalidAuthenticationToken: Access token has expired.", "check the Test API credentials"}},
		{403, `{"errors":[{"title":"Forbidden","detail":"bad key"}]}`, []string{"HTTP 403: Forbidden: bad key"}},
		{400, `{"errors":["MaxRecords must be 500 or less"]}`, []string{"MaxRecords must be 500 or less"}},
		{400, `{"code":"InvalidObject","message":"Contact object is invalid"}`, []string{"HTTP 400 InvalidObject: Contact object is invalid"}},
		{404, `not json`, []string{"HTTP 404: not json", "check the Test API URL"}},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		_, err := fastClient(srv).JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/p?api_key=SECRET", Customer: "acme"}, nil)
		srv.Close()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("status %d: error %v, want %q", tc.status, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error leaks the query: %v", err)
		}
	}
}

func TestMalformedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"data": [`)) }))
	defer srv.Close()
	var out struct{ Data []int }
	_, err := fastClient(srv).JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/p", Customer: "acme"}, &out)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "customer acme") {
		t.Fatalf("err = %v", err)
	}
}

func TestSharedLimiterPerCredential(t *testing.T) {
	a := SharedLimiter("IT Glue", "key-1", rate.Limit(10), 1)
	b := SharedLimiter("IT Glue", "key-1", rate.Limit(99), 5)
	c := SharedLimiter("IT Glue", "key-2", rate.Limit(10), 1)
	if a != b || a == c {
		t.Fatal("one limiter per integration and credential")
	}
}

func TestParseRate(t *testing.T) {
	cases := map[string]float64{"10/s": 10, "3000/5m": 10, "600/h": 1.0 / 6, "1.5/s": 1.5}
	for in, want := range cases {
		got, err := ParseRate(in)
		if err != nil || float64(got) < want*0.999 || float64(got) > want*1.001 {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10", "x/s", "-1/s", "10/fortnight", "10/0s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func FuzzVendorMessage(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"x","message":"y"}}`))
	f.Add([]byte(`{"errors":[1,{"title":2}]}`))
	f.Add([]byte(`{"error":"invalid_client","error_description":"AADSTS7000215"}`))
	f.Fuzz(func(t *testing.T, b []byte) { VendorMessage(b) })
}

func TestWrapNamesTheOperationOnce(t *testing.T) {
	he := &Error{Integration: "IT Glue", Customer: "acme", Method: "GET", Path: "/passwords", Status: 503, Err: ErrMalformed}
	err := Wrap("IT Glue", "acme", "list passwords page 2", fmt.Errorf("page: %w", he))
	want := "IT Glue: customer acme: list passwords page 2: GET /passwords: HTTP 503: " + ErrMalformed.Error()
	if !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "customer acme") != 1 {
		t.Fatalf("got  %q\nwant %q…", err, want)
	}
	var re *Error
	if !errors.As(err, &re) || !errors.Is(err, ErrMalformed) {
		t.Fatal("the HTTP error is not reachable")
	}
	plain := Wrap("Hudu", "acme", "create", errors.New("boom"))
	if plain.Error() != "Hudu: customer acme: create: boom" {
		t.Fatalf("got %q", plain)
	}
}

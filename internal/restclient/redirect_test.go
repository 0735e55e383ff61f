package restclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// A request with credentials is never carried to another origin by a
// redirect: not a GET with an API key header, not a POST whose body would
// be re-sent by a 307. The error names the integration and the target,
// and the request is not retried.
func TestCredentialsNeverFollowARedirectToAnotherOrigin(t *testing.T) {
	var calls atomic.Int32
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			calls.Store(0)
			rd := redirecttest.Start(t, nil, func(*http.Request) bool { calls.Add(1); return true })
			c := New(Config{Integration: "IT Glue", MinWait: 1, MaxWait: 2})
			_, err := c.JSON(context.Background(), Request{Method: method, URL: rd.URL + "/passwords/7?show_password=true", Customer: "acme",
				Header: http.Header{"x-api-key": {"ITG.secret-key"}}, Body: map[string]string{"password": "hunter2"}}, nil)
			if !errors.Is(err, ErrCrossOriginRedirect) {
				t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
			}
			target := strings.TrimPrefix(rd.Target, "http://")
			for _, want := range []string{"IT Glue", "customer acme", target} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			for _, leak := range []string{"ITG.secret-key", "hunter2", "show_password"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks %q: %v", leak, err)
				}
			}
			if got := rd.Reached(); len(got) != 0 {
				t.Fatalf("the other origin received %d requests, first %+v", len(got), got[0])
			}
			if calls.Load() != 1 {
				t.Fatalf("%d requests to the redirecting server, want 1 (a refused redirect is not retried)", calls.Load())
			}
		})
	}
}

// A redirect within the origin (a trailing slash, a moved path) is
// followed as before.
func TestSameOriginRedirectIsFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
			return
		}
		if r.Header.Get("x-api-key") != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	var out struct{ OK bool }
	if _, err := fastClient(srv).JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/old", Header: http.Header{"x-api-key": {"k"}}}, &out); err != nil || !out.OK {
		t.Fatalf("JSON = %v, %+v", err, out)
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://api.itglue.com/x", "https://API.itglue.com:443/y", true},
		{"http://127.0.0.1/x", "http://127.0.0.1:80/y", true},
		{"https://api.itglue.com/x", "http://api.itglue.com/x", false},
		{"https://api.itglue.com/x", "https://api.itglue.com:8443/x", false},
		{"https://api.itglue.com/x", "https://evil.example/x", false},
		{"https://api.itglue.com/x", "https://api.itglue.com.evil.example/x", false},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := sameOrigin(a, b); got != tc.same {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// The OAuth token client (the client secret in a form) refuses a 307 to
// another origin the same way, and the secret never reaches it.
func TestTokenClientRefusesRedirects(t *testing.T) {
	rd := redirecttest.Start(t, nil, nil)
	cc := &clientcredentials.Config{ClientID: "id", ClientSecret: "the-client-secret", TokenURL: rd.URL + "/tenant/oauth2/v2.0/token", AuthStyle: oauth2.AuthStyleInParams}
	hc := TokenClient("Microsoft Entra ID", nil, MaxTokenBody, 0, false)
	_, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, hc))
	if !errors.Is(err, ErrCrossOriginRedirect) || !strings.Contains(err.Error(), "Microsoft Entra ID") || !strings.Contains(err.Error(), strings.TrimPrefix(rd.Target, "http://")) {
		t.Fatalf("err = %v, want ErrCrossOriginRedirect naming the integration and the target", err)
	}
	if got := rd.Reached(); len(got) != 0 {
		t.Fatalf("the client secret was posted to the other origin: %+v", got)
	}
}

// withNames makes the plain-http dialer resolve names from a table for
// one test.
func withNames(t *testing.T, table map[string]string) {
	t.Helper()
	old := loopbackDialer.LookupNetIP
	loopbackDialer.LookupNetIP = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if a, ok := table[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return nil, errors.New("no such host " + host)
	}
	t.Cleanup(func() { loopbackDialer.LookupNetIP = old })
}

// Plain http is allowed by the address dialled, not by the name: a
// .localhost name that resolves to another machine gets nothing, not even
// a connection; a name that resolves to loopback is served; with
// AllowInsecureHTTP the operator's choice stands.
func TestPlainHTTPGoesToLoopbackAddressesOnly(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	withNames(t, map[string]string{"evil.localhost": "10.255.255.1", "good.localhost": "127.0.0.1", "relay.internal": "127.0.0.1"})
	c := New(Config{Integration: "Hudu", MinWait: 1, MaxWait: 2})
	for host, ok := range map[string]bool{"evil.localhost": false, "10.255.255.1": false, "good.localhost": true, "relay.internal": true, "127.0.0.1": true} {
		hits.Store(0)
		_, err := c.JSON(context.Background(), Request{Method: "GET", URL: "http://" + host + ":" + port + "/api/v1/companies", Customer: "acme", Header: http.Header{"x-api-key": {"k"}}}, nil)
		if ok {
			if err != nil || hits.Load() != 1 {
				t.Errorf("%s: %v after %d requests, want served", host, err, hits.Load())
			}
			continue
		}
		if !errors.Is(err, ErrInsecureURL) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "Hudu") {
			t.Errorf("%s: %v, want ErrInsecureURL naming Hudu and the host", host, err)
		}
	}
	// https is not concerned, and allow_insecure_http uses the base
	// transport as it is.
	insecure := New(Config{Integration: "Hudu", AllowInsecureHTTP: true})
	if _, err := insecure.JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/x"}, nil); err != nil {
		t.Fatalf("allow_insecure_http: %v", err)
	}
}

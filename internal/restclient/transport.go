package restclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/internal/loopback"
)

// ErrInsecureURL marks an API URL that would send credentials in clear.
var ErrInsecureURL = errors.New("credentials are only sent over https")

// CheckURL accepts an API base URL that credentials may be sent to: an
// https:// URL; an http:// URL only to a host named as this machine
// (127.0.0.0/8, ::1, localhost) or when allowInsecure says the operator
// chose it for this integration. The error says why and how to fix it.
//
// The name is only the first check: a client sends a plain-http request
// without allowInsecure only over a connection to a loopback address,
// whatever the name resolves to (see Config.AllowInsecureHTTP).
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || loopback.IsLoopbackName(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: %w: use https://, or set allow_insecure_http: true on this integration if the host is reached over a network you trust", raw, ErrInsecureURL)
	}
	return fmt.Errorf("%q is not an http(s) URL", raw)
}

// loopbackDialer dials every plain-http connection a client makes without
// AllowInsecureHTTP; tests give it their own name resolution.
var loopbackDialer = &loopback.Dialer{}

// loopbackTransports holds, per base transport, its copy that connects to
// loopback addresses only, so that every client over one base shares one
// connection pool as it would without the copy.
var loopbackTransports sync.Map // *http.Transport -> *http.Transport

// loopbackOnly is base's copy for plain-http requests: no proxy (the
// address dialled is the server's own) and a dialer that refuses any
// address that is not this machine. A base that is not an
// *http.Transport (nothing in autoimport passes one) is replaced by
// http.DefaultTransport's copy.
func loopbackOnly(base http.RoundTripper) http.RoundTripper {
	ht, ok := base.(*http.Transport)
	if !ok {
		if ht, ok = http.DefaultTransport.(*http.Transport); !ok {
			ht = fallbackTransport
		}
	}
	if t, ok := loopbackTransports.Load(ht); ok {
		return t.(*http.Transport)
	}
	t := ht.Clone()
	t.Proxy = nil
	t.DialContext = loopbackDialer.DialContext
	t.DialTLSContext = nil
	actual, _ := loopbackTransports.LoadOrStore(ht, t)
	return actual.(*http.Transport)
}

// fallbackTransport stands in for http.DefaultTransport when a program
// replaced it by another kind of RoundTripper.
var fallbackTransport = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}

// guardedTransport sends plain-http requests over loopback connections
// only, unless the operator allowed http for the integration.
type guardedTransport struct {
	base          http.RoundTripper
	allowInsecure bool
}

func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || t.allowInsecure {
		return t.base.RoundTrip(req)
	}
	resp, err := loopbackOnly(t.base).RoundTrip(req)
	if err != nil && errors.Is(err, loopback.ErrNotLoopback) {
		return nil, fmt.Errorf("%w: http://%s is not on this machine: %w (use https://, or set allow_insecure_http: true on this integration if the host is reached over a network you trust)",
			ErrInsecureURL, req.URL.Host, err)
	}
	return resp, err
}

// guard wraps base (http.DefaultTransport when nil) so that plain http
// goes to this machine only, unless allowInsecure.
func guard(base http.RoundTripper, allowInsecure bool) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &guardedTransport{base: base, allowInsecure: allowInsecure}
}

// ErrCrossOriginRedirect marks a redirect to another scheme, host or port,
// which a request carrying credentials never follows: Go's client would
// keep headers such as x-api-key and re-send a 307's body (an OAuth
// client secret) to wherever the answer points.
var ErrCrossOriginRedirect = errors.New("a redirect to another scheme, host or port is never followed with credentials")

// maxRedirects bounds a chain of same-origin redirects.
const maxRedirects = 10

// RefuseCrossOriginRedirects is an http.Client CheckRedirect for a client
// that sends credentials: a redirect within the first request's origin
// (scheme, host and port) is followed, up to 10; any other fails with an
// error wrapping ErrCrossOriginRedirect that names the integration and
// the target (without its query).
func RefuseCrossOriginRedirects(integration string) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if !sameOrigin(first, req.URL) {
			return fmt.Errorf("%s answered %s %s with a redirect to %s: %w (check the %s URL)",
				integration, via[len(via)-1].Method, stripURL(via[len(via)-1].URL.String()), stripURL(req.URL.String()), ErrCrossOriginRedirect, integration)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("%s: stopped after %d redirects at %s", integration, len(via), stripURL(req.URL.String()))
		}
		return nil
	}
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// TokenClient is the http.Client an OAuth library (golang.org/x/oauth2)
// fetches tokens with, where the client secret travels: plain http only
// to this machine unless allowInsecure, no redirect to another origin,
// each answer read whole up to limit bytes (see LimitBodies), timeout per
// request (default 30 s).
func TokenClient(integration string, base http.RoundTripper, limit int64, timeout time.Duration, allowInsecure bool) *http.Client {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{
		Transport:     LimitBodies(integration, guard(base, allowInsecure), limit),
		CheckRedirect: RefuseCrossOriginRedirects(integration),
		Timeout:       timeout,
	}
}

// isRefusal reports an error no retry can change: a redirect refused, a
// plain-http connection to another machine, or a write its fence stopped.
func isRefusal(err error) bool {
	return errors.Is(err, ErrCrossOriginRedirect) || errors.Is(err, ErrInsecureURL) || errors.Is(err, fence.ErrNotSent)
}

// Package restclient is the HTTP client every vendor API client of
// autoimport is built on: a per-attempt timeout, retries with exponential
// backoff and jitter on 429/5xx that honour Retry-After, a rate limiter shared
// by every customer that uses the same API credential, request counting,
// response bodies read up to a fixed limit (a longer one is malformed), and
// errors that name the integration, the customer and the vendor's own message
// without ever carrying a secret. CheckURL says which URLs credentials may be
// sent to.
package restclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"

	"github.com/msp-tools/autoimport/internal/fence"
)

// Config configures a Client.
type Config struct {
	// Integration names the API in messages: "IT Glue", "Autotask", ...
	Integration string
	// Timeout bounds one attempt (default 30s); the caller's context bounds
	// the whole call, retries included.
	Timeout time.Duration
	// MaxRetries is how often a retryable failure is retried (default 5).
	MaxRetries int
	// MinWait and MaxWait bound the backoff between attempts (default 500ms
	// and 60s). A Retry-After longer than MaxWait is still honoured, up to
	// 5 minutes.
	MinWait, MaxWait time.Duration
	// Limiter paces every attempt; share one per API credential (see
	// SharedLimiter). Nil means unlimited.
	Limiter *rate.Limiter
	// Transport is the underlying transport (default http.DefaultTransport);
	// tests pass their fake server's.
	Transport http.RoundTripper
	// AllowInsecureHTTP sends plain-http requests to any host. Without it
	// a plain-http request is sent only over a connection to a loopback
	// address (whatever its host name resolves to), directly, never
	// through a proxy; any other is refused with ErrInsecureURL before a
	// byte is written. It is the integration's allow_insecure_http.
	AllowInsecureHTTP bool
	// Log receives one debug line per attempt (method, path, status,
	// elapsed); never headers or bodies.
	Log logrus.FieldLogger
	// MaxBody bounds every response body the client reads, success or
	// error (default DefaultMaxBody; tests set it small). A longer body is
	// an *Error wrapping ErrMalformed.
	MaxBody int64
}

// DefaultMaxBody is the most of one response body a client reads. A page
// of 1,000 records of any supported API is a few MiB; a body past this
// is not what the API documents, and reading it on would only cost
// memory.
const DefaultMaxBody int64 = 32 << 20

// MaxTokenBody bounds the answer of an OAuth token endpoint, a few KiB in
// practice. golang.org/x/oauth2 reads at most 1 MiB of it and silently
// drops the rest, so a longer answer is refused before it gets there.
const MaxTokenBody int64 = 1 << 20

// Client sends requests to one vendor API.
type Client struct {
	cfg       Config
	transport http.RoundTripper // cfg.Transport behind the plain-http guard
	retry     *retryablehttp.Client
	stats     stats
	total     *stats // shared by every client of the integration
}

type stats struct {
	requests, retries, throttled atomic.Int64
	limiterWait                  atomic.Int64 // nanoseconds
}

func (s *stats) snapshot() Stats {
	return Stats{Requests: s.requests.Load(), Retries: s.retries.Load(), Throttled: s.throttled.Load(), LimiterWait: time.Duration(s.limiterWait.Load())}
}

// totals are every client's counters summed by integration, for metrics.
var totals sync.Map // integration name -> *stats

func totalsOf(integration string) *stats {
	v, _ := totals.LoadOrStore(integration, &stats{})
	return v.(*stats)
}

// Totals returns the counters of every client made in this process,
// summed by integration.
func Totals() map[string]Stats {
	out := map[string]Stats{}
	totals.Range(func(k, v any) bool {
		out[k.(string)] = v.(*stats).snapshot()
		return true
	})
	return out
}

// Stats are a client's counters since it was made.
type Stats struct {
	Requests    int64         // attempts sent, retries included
	Retries     int64         // attempts that were retries
	Throttled   int64         // 429 answers
	LimiterWait time.Duration // time spent waiting on the rate limiter
}

type idempotentKey struct{}

// New makes a client.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if cfg.MinWait <= 0 {
		cfg.MinWait = 500 * time.Millisecond
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = l
	}
	c := &Client{cfg: cfg, transport: guard(cfg.Transport, cfg.AllowInsecureHTTP), total: totalsOf(cfg.Integration)}
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	// Every request carries credentials (a header, a token, a form): a
	// redirect is followed within its origin only.
	rc.HTTPClient = &http.Client{Transport: &pacedTransport{c: c}, CheckRedirect: RefuseCrossOriginRedirects(cfg.Integration)}
	rc.RetryMax = cfg.MaxRetries
	rc.RetryWaitMin = cfg.MinWait
	rc.RetryWaitMax = cfg.MaxWait
	rc.CheckRetry = checkRetry
	rc.Backoff = backoff
	rc.RequestLogHook = func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
		if attempt > 0 {
			c.stats.retries.Add(1)
			c.total.retries.Add(1)
		}
	}
	// Return the last response instead of a generic "giving up" error, so
	// the caller reports the vendor's status and message.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.retry = rc
	return c
}

// Integration is the API's name.
func (c *Client) Integration() string { return c.cfg.Integration }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return c.stats.snapshot()
}

// pacedTransport waits on the limiter, asks the request's fence (after
// that wait and any backoff before it: a write whose holder lost its
// lease meanwhile is not sent), applies the per-attempt timeout, counts
// and logs every attempt.
type pacedTransport struct{ c *Client }

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if c.cfg.Limiter != nil {
		start := time.Now()
		if err := c.cfg.Limiter.Wait(req.Context()); err != nil {
			return nil, err
		}
		c.stats.limiterWait.Add(int64(time.Since(start)))
		c.total.limiterWait.Add(int64(time.Since(start)))
	}
	if err := fence.Check(req.Context()); err != nil {
		return nil, err
	}
	c.stats.requests.Add(1)
	c.total.requests.Add(1)
	ctx, cancel := context.WithTimeout(req.Context(), c.cfg.Timeout)
	start := time.Now()
	resp, err := c.transport.RoundTrip(req.WithContext(ctx))
	fields := logrus.Fields{"integration": c.cfg.Integration, "method": req.Method, "path": req.URL.Path, "elapsed_ms": time.Since(start).Milliseconds()}
	if err != nil {
		cancel()
		c.cfg.Log.WithFields(fields).WithError(redactURLError(err)).Debug("api request failed")
		return nil, err
	}
	fields["status"] = resp.StatusCode
	if id := requestID(resp.Header); id != "" {
		fields["request_id"] = id
	}
	c.cfg.Log.WithFields(fields).Debug("api request")
	if resp.StatusCode == http.StatusTooManyRequests {
		c.stats.throttled.Add(1)
		c.total.throttled.Add(1)
	}
	resp.Body = &cancelOnClose{ReadCloser: &limitedBody{ReadCloser: resp.Body, left: c.cfg.MaxBody, limit: c.cfg.MaxBody}, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

// limitedBody reads at most limit bytes of a body; once they are read, any
// further byte makes the read fail with an error wrapping ErrMalformed
// (unlike io.LimitReader, which would end the body there as if complete).
type limitedBody struct {
	io.ReadCloser
	left, limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, tooLarge(b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, limit)
}

func requestID(h http.Header) string {
	for _, k := range []string{"request-id", "X-Request-Id", "x-ms-request-id", "X-Correlation-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// checkRetry retries throttling and transient server or network failures.
// A request that is not idempotent (a POST that creates something) is only
// retried when the server refused it without processing it (429). A
// refused redirect or plain-http connection is final.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	idempotent, _ := ctx.Value(idempotentKey{}).(bool)
	if err != nil {
		return idempotent && !isRefusal(err), nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true, nil
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError:
		return idempotent, nil
	}
	return false, nil
}

// backoff honours Retry-After (seconds or an HTTP date) on any status, else
// waits exponentially with full jitter between min and the capped delay.
func backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Header.Get("Retry-After") != "" {
		// DefaultBackoff only reads Retry-After on 429 and 503; present it
		// as a 429 so every status that carries the header is honoured.
		r := *resp
		r.StatusCode = http.StatusTooManyRequests
		if d := retryablehttp.DefaultBackoff(min, 5*time.Minute, attempt, &r); d <= 5*time.Minute {
			return d
		}
		return 5 * time.Minute
	}
	d := retryablehttp.DefaultBackoff(min, max, attempt, nil)
	return min/2 + rand.N(d-min/2+1)
}

// Request describes one API call.
type Request struct {
	Method string
	URL    string
	// Header is added to the request (authentication, content type, ...).
	Header http.Header
	// Body is marshalled as JSON unless it is []byte or io.Reader.
	Body any
	// Customer is autoimport's customer id, for messages.
	Customer string
	// Idempotent marks a request safe to retry on 5xx and network errors.
	// Defaults to true for GET, HEAD, PUT, PATCH and DELETE.
	Idempotent *bool
	// Secret marks a call whose response carries secrets: its body never
	// appears in an error.
	Secret bool
}

// Do sends the request and returns the response with a body the caller
// must close. A response other than 2xx is returned as an *Error with the
// body drained and closed.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	var body any
	switch b := r.Body.(type) {
	case nil:
	case []byte, io.Reader:
		body = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s: customer %s: encode request: %w", c.cfg.Integration, r.Customer, err)
		}
		body = enc
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, &Error{Integration: c.cfg.Integration, Customer: r.Customer, Method: r.Method, Path: pathOf(r.URL), Err: err}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	idem := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodDelete
	if r.Idempotent != nil {
		idem = *r.Idempotent
	}
	req = req.WithContext(context.WithValue(ctx, idempotentKey{}, idem))
	resp, err := c.retry.Do(req)
	if err != nil {
		e := &Error{Integration: c.cfg.Integration, Customer: r.Customer, Method: r.Method, Path: req.URL.Path, Err: redactURLError(err)}
		if resp != nil {
			// A redirect that was refused: the server answered, with a
			// 3xx, and did not process the request.
			e.Status, e.RequestID = resp.StatusCode, requestID(resp.Header)
			resp.Body.Close()
		}
		return nil, e
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Integration: c.cfg.Integration, Customer: r.Customer, Method: r.Method, Path: req.URL.Path, Status: resp.StatusCode, RequestID: requestID(resp.Header)}
	e.Code, e.Message = VendorMessage(raw)
	if e.Message == "" && !r.Secret {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(raw[:min(len(raw), 200)], []byte("?"))))
	}
	return nil, e
}

// ReadBody reads the whole body of a response that Do returned and closes
// it. It reads into buf (reset first) when one is given, so a caller can
// reuse it. A body longer than the client's MaxBody, or one that breaks
// off, is an *Error naming the integration and the request's customer.
func (c *Client) ReadBody(resp *http.Response, r Request, buf *bytes.Buffer) ([]byte, error) {
	defer resp.Body.Close()
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if err := readBody(buf, resp.Body); err != nil {
		return nil, &Error{Integration: c.cfg.Integration, Customer: r.Customer, Method: r.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode, RequestID: requestID(resp.Header), Err: err}
	}
	return buf.Bytes(), nil
}

// readBody reads a (limited) body into buf; an error other than a body
// over its limit says the body broke off.
func readBody(buf *bytes.Buffer, body io.Reader) error {
	_, err := buf.ReadFrom(body)
	if err != nil && !errors.Is(err, ErrMalformed) {
		err = fmt.Errorf("read body: %w", err)
	}
	return err
}

// JSON sends the request and decodes a 2xx JSON body into out (when out is
// not nil). A body that is not the JSON the caller expects, or is longer
// than MaxBody, is an *Error naming the integration and customer.
func (c *Client) JSON(ctx context.Context, r Request, out any) (http.Header, error) {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return nil, err
	}
	body, err := c.ReadBody(resp, r, nil)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, &Error{Integration: c.cfg.Integration, Customer: r.Customer, Method: r.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	return resp.Header, nil
}

// LimitBodies wraps a transport for code outside this package that reads
// responses itself (an OAuth library fetching a token): each response
// body is read whole, up to limit bytes (DefaultMaxBody when limit <= 0),
// before the round trip returns. A longer body fails the round trip with
// an *Error naming the integration and wrapping ErrMalformed.
func LimitBodies(integration string, rt http.RoundTripper, limit int64) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return &boundedTransport{integration: integration, rt: rt, limit: limit}
}

type boundedTransport struct {
	integration string
	rt          http.RoundTripper
	limit       int64
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if err := readBody(&buf, &limitedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit}); err != nil {
		return nil, &Error{Integration: t.integration, Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, RequestID: requestID(resp.Header), Err: err}
	}
	resp.Body = io.NopCloser(&buf)
	resp.ContentLength = int64(buf.Len())
	return resp, nil
}

// ErrMalformed marks a response body that is not what the API documents.
var ErrMalformed = errors.New("malformed response body")

// Error is a failed API call.
type Error struct {
	Integration string
	Customer    string
	Method      string
	Path        string
	Status      int    // 0 when no response came back
	Code        string // the vendor's error code, if any
	Message     string // the vendor's error message, if any
	RequestID   string
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Integration)
	if e.Customer != "" {
		fmt.Fprintf(&b, ": customer %s", e.Customer)
	}
	fmt.Fprintf(&b, ": %s %s", e.Method, e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if hint := e.Hint(); hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request id %s]", e.RequestID)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says what a person can do about the error.
func (e *Error) Hint() string {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return "check the " + e.Integration + " credentials and their permissions"
	case e.Status == http.StatusNotFound:
		return "check the " + e.Integration + " URL and the customer's mapping id"
	case e.Status == http.StatusTooManyRequests:
		return "the " + e.Integration + " rate limit was still exceeded after retries; lower the configured rate"
	case e.Status >= 500:
		return e.Integration + " had a server error; the next run retries"
	case errors.Is(e.Err, ErrMalformed):
		return e.Integration + " answered with a body that is not what its API documents"
	}
	return ""
}

// Temporary reports whether a later attempt may succeed.
func (e *Error) Temporary() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// VendorMessage extracts an error code and message from the error body
// shapes the supported APIs use: Graph's {"error":{"code","message"}},
// JSON:API's {"errors":[{"title","detail"}]}, Autotask's {"errors":["..."]},
// ConnectWise's {"code","message"}, Hudu's {"error":"..."} and Halo's
// {"error","error_description"}.
func VendorMessage(body []byte) (code, message string) {
	var v struct {
		Error            json.RawMessage   `json:"error"`
		ErrorDescription string            `json:"error_description"`
		Errors           []json.RawMessage `json:"errors"`
		Code             any               `json:"code"`
		Message          string            `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", ""
	}
	if len(v.Error) > 0 {
		var nested struct{ Code, Message string }
		if json.Unmarshal(v.Error, &nested) == nil && (nested.Code != "" || nested.Message != "") {
			return nested.Code, nested.Message
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			if v.ErrorDescription != "" {
				return s, v.ErrorDescription
			}
			return "", s
		}
	}
	if len(v.Errors) > 0 {
		var msgs []string
		for _, raw := range v.Errors {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				msgs = append(msgs, s)
				continue
			}
			var o struct{ Title, Detail, Message string }
			if json.Unmarshal(raw, &o) == nil {
				msgs = append(msgs, strings.TrimSpace(strings.Join(nonEmpty(o.Title, o.Detail, o.Message), ": ")))
			}
		}
		return "", strings.Join(msgs, "; ")
	}
	if v.Message != "" {
		c := ""
		if v.Code != nil {
			c = fmt.Sprint(v.Code)
		}
		return c, v.Message
	}
	return "", ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func pathOf(rawURL string) string {
	if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
		rawURL = rawURL[:i]
	}
	return rawURL
}

// redactURLError removes the query string, fragment and user info of the
// URL in a *url.Error, where API keys and user names sometimes travel. The
// whole query goes, whatever it holds (colons, quotes, spaces); the method,
// scheme, host and path stay. An error that wraps a *url.Error has that
// URL removed from its message too. Errors without one are returned as
// they are.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	clean := &url.Error{Op: ue.Op, URL: stripURL(ue.URL), Err: ue.Err}
	if clean.URL == ue.URL {
		return err
	}
	if err == error(ue) {
		return clean
	}
	// A wrapper printed the URL in its own words: replace it wherever it
	// appears, quoted as url.Error quotes it or bare.
	msg := strings.ReplaceAll(err.Error(), strconv.Quote(ue.URL), strconv.Quote(clean.URL))
	msg = strings.ReplaceAll(msg, ue.URL, clean.URL)
	return &redactedError{msg: msg, err: clean}
}

// stripURL keeps a URL's scheme, host and path.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Not parseable: cut at the first query or fragment mark.
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// redactedError is an error message with a URL removed; it unwraps to
// the redacted *url.Error, so errors.Is still finds a timeout or a
// cancellation.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

var (
	limitersMu sync.Mutex
	limiters   = map[string]*rate.Limiter{}
)

// SharedLimiter returns the one limiter for an API credential: every client
// made with the same integration and credential shares it, whichever
// customer it serves. Only a hash of the credential is kept.
func SharedLimiter(integration, credential string, r rate.Limit, burst int) *rate.Limiter {
	sum := sha256.Sum256([]byte(integration + "\x00" + credential))
	key := hex.EncodeToString(sum[:])
	limitersMu.Lock()
	defer limitersMu.Unlock()
	if l, ok := limiters[key]; ok {
		return l
	}
	if burst < 1 {
		burst = 1
	}
	l := rate.NewLimiter(r, burst)
	limiters[key] = l
	return l
}

// ParseRate reads a rate such as "10/s", "3000/5m" or "600/h".
func ParseRate(s string) (rate.Limit, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("rate %q: want COUNT/PERIOD such as 10/s or 3000/5m", s)
	}
	var count float64
	if _, err := fmt.Sscanf(n, "%g", &count); err != nil || count <= 0 {
		return 0, fmt.Errorf("rate %q: count must be a positive number", s)
	}
	switch per {
	case "s":
		per = "1s"
	case "m":
		per = "1m"
	case "h":
		per = "1h"
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("rate %q: period must be a duration such as s, 5m or 1h", s)
	}
	return rate.Limit(count / d.Seconds()), nil
}

// OpError is an error whose message names the integration, the customer
// and the operation, with the error it describes still reachable through
// errors.As and errors.Is.
type OpError struct {
	Msg string
	Err error
}

func (e *OpError) Error() string { return e.Msg }
func (e *OpError) Unwrap() error { return e.Err }

// Wrap names the integration, the customer and the operation in err. The
// HTTP detail of an *Error follows the operation, once.
func Wrap(integration, customer, op string, err error) error {
	var re *Error
	if errors.As(err, &re) {
		detail := strings.TrimPrefix(re.Error(), fmt.Sprintf("%s: customer %s: ", re.Integration, re.Customer))
		return &OpError{Msg: fmt.Sprintf("%s: customer %s: %s: %s", integration, customer, op, detail), Err: err}
	}
	return &OpError{Msg: fmt.Sprintf("%s: customer %s: %s: %v", integration, customer, op, err), Err: err}
}

// Package autotask is autoimport's Autotask PSA sink: it discovers the
// API user's zone, lists a customer company's contacts into a
// sinks.ContactIndex with the REST query API (JSON filter, 500 records per
// page, pageDetails.nextPageUrl) and creates new contacts. Requests are
// paced by one limiter per Autotask credential, sized below the database's
// hourly request threshold.
package autotask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Integration is the name used in messages.
const Integration = "Autotask"

// DefaultZoneURL is where zone discovery starts.
const DefaultZoneURL = "https://webservices.autotask.net/atservicesrest"

// zoneInfoPath is zone discovery's endpoint under the REST root.
const zoneInfoPath = "/v1.0/zoneInformation"

// DefaultRate paces requests when Config.Rate is empty: Autotask allows
// 10,000 requests per rolling hour per database, shared by every
// integration of the MSP, and slows calls down past half of it; autoimport
// takes at most half.
const DefaultRate = "5000/h"

// DefaultBurst lets short runs go without waiting on the limiter.
const DefaultBurst = 50

// MaxRecords is the largest page a query may ask for.
const MaxRecords = 500

const maxPages = 10000

// Config configures a Client.
type Config struct {
	// ZoneURL is where zone discovery is asked (default DefaultZoneURL):
	// the bare host, https://webservices.autotask.net, or its REST root,
	// https://webservices.autotask.net/atservicesrest (any case, trailing
	// slash or not). Another path is taken as a prefix the REST root is
	// under.
	ZoneURL string
	// APIURL is the zone's REST base (e.g.
	// https://webservices15.autotask.net/ATServicesRest/); when set, zone
	// discovery is skipped.
	APIURL string
	// UserName is the API-only user, Secret its password, IntegrationCode
	// the integration's tracking identifier (ApiIntegrationCode).
	UserName, Secret, IntegrationCode string
	// ImpersonationResourceID, when set, is sent as ImpersonationResourceId.
	ImpersonationResourceID string
	// Rate paces requests, shared by every client of the same user name,
	// e.g. "5000/h" (default DefaultRate); Burst is the limiter's burst
	// (default DefaultBurst).
	Rate  string
	Burst int
	// PageSize is MaxRecords per query page (default and maximum 500).
	PageSize int
	// AllowInsecureHTTP lets ZoneURL, APIURL and the zone URL that
	// discovery returns be http:// to a host other than this machine
	// (restclient.CheckURL); credentials then cross the network in clear.
	// Off, only https:// and http:// to loopback are accepted.
	AllowInsecureHTTP bool
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
	// Log receives one debug line per request.
	Log logrus.FieldLogger
	// Timeout, MaxRetries, MinWait and MaxWait tune restclient (zero means
	// its defaults; a negative MaxRetries means no retry).
	Timeout          time.Duration
	MaxRetries       int
	MinWait, MaxWait time.Duration
	// MaxBody bounds one response body (default
	// restclient.DefaultMaxBody); a longer one is a malformed answer.
	MaxBody int64
}

// Client is an Autotask PSA implementing sinks.PSA.
type Client struct {
	cfg    Config
	header http.Header
	rest   *restclient.Client

	mu   sync.Mutex
	zone string // REST base ending in "V1.0/"
	// zoneMu lets one zone discovery run at a time, so that concurrent
	// calls wait for the first instead of each asking.
	zoneMu sync.Mutex
	// answered is set once any API call got a 2xx: a 500 before that is
	// more likely a credential problem.
	answered atomic.Bool
}

var _ sinks.PSA = (*Client)(nil)

// New checks the configuration and makes a client. It sends no request.
func New(cfg Config) (*Client, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"UserName", cfg.UserName}, {"Secret", cfg.Secret}, {"IntegrationCode", cfg.IntegrationCode}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: config: missing %s", Integration, strings.Join(missing, ", "))
	}
	if cfg.ZoneURL == "" {
		cfg.ZoneURL = DefaultZoneURL
	}
	zoneURL, err := zoneRoot(cfg.ZoneURL)
	if err != nil {
		return nil, fmt.Errorf("%s: config: ZoneURL: %w", Integration, err)
	}
	if err := restclient.CheckURL(strings.TrimSpace(cfg.ZoneURL), cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: config: ZoneURL %w", Integration, err)
	}
	cfg.ZoneURL = zoneURL
	c := &Client{cfg: cfg}
	if cfg.APIURL != "" {
		z, err := normaliseZone(cfg.APIURL)
		if err != nil {
			return nil, fmt.Errorf("%s: config: APIURL: %w", Integration, err)
		}
		if err := restclient.CheckURL(z, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("%s: config: APIURL %w", Integration, err)
		}
		c.zone = z
	}
	if cfg.Rate == "" {
		cfg.Rate = DefaultRate
	}
	lim, err := restclient.ParseRate(cfg.Rate)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", Integration, err)
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.PageSize <= 0 || cfg.PageSize > MaxRecords {
		cfg.PageSize = MaxRecords
	}
	h := http.Header{}
	h.Set("ApiIntegrationCode", cfg.IntegrationCode)
	h.Set("UserName", cfg.UserName)
	h.Set("Secret", cfg.Secret)
	h.Set("Accept", "application/json")
	if cfg.ImpersonationResourceID != "" {
		h.Set("ImpersonationResourceId", cfg.ImpersonationResourceID)
	}
	c.cfg, c.header = cfg, h
	c.rest = restclient.New(restclient.Config{
		Integration: Integration,
		Timeout:     cfg.Timeout,
		MaxRetries:  cfg.MaxRetries,
		MinWait:     cfg.MinWait,
		MaxWait:     cfg.MaxWait,
		// The threshold is per database; the API user stands for it.
		Limiter:           restclient.SharedLimiter(Integration, strings.ToLower(cfg.UserName), rate.Limit(lim), cfg.Burst),
		Transport:         cfg.Transport,
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Log:               cfg.Log,
		MaxBody:           cfg.MaxBody,
	})
	return c, nil
}

// Name is the integration's name.
func (c *Client) Name() string { return Integration }

// Stats returns the HTTP client's counters.
func (c *Client) Stats() restclient.Stats { return c.rest.Stats() }

func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// zoneRoot turns a configured zone-discovery URL into the REST root that
// zoneInformation lives under, without a trailing slash: a bare host gets
// /atservicesrest, a path that already ends in it (any case, with or
// without a trailing slash or /v1.0) is kept, and any other path is a
// prefix the root is appended to.
func zoneRoot(s string) (string, error) {
	u, err := httpURL(s)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: want the zone-discovery host without a query, e.g. %s", s, DefaultZoneURL)
	}
	p := strings.TrimRight(u.Path, "/")
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	lower := strings.ToLower(p)
	switch {
	case strings.HasSuffix(lower, "/atservicesrest"):
	case strings.HasSuffix(lower, "/atservicesrest/v1.0"):
		p = p[:len(p)-len("/v1.0")]
	default:
		p += "/atservicesrest"
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// normaliseZone turns the url of zoneInformation into the REST base: it
// collapses repeated slashes in the path, adds the trailing slash and
// appends V1.0/ (unless present).
func normaliseZone(s string) (string, error) {
	u, err := httpURL(s)
	if err != nil {
		return "", err
	}
	p := u.Path
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	p = strings.TrimSuffix(p, "/") + "/"
	if !strings.HasSuffix(strings.ToLower(p), "/v1.0/") {
		p += "V1.0/"
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = p, "", "", ""
	return u.String(), nil
}

// Zone returns the REST base of the API user's zone, discovering it once.
func (c *Client) Zone(ctx context.Context, customer string) (string, error) {
	c.zoneMu.Lock()
	defer c.zoneMu.Unlock()
	c.mu.Lock()
	z := c.zone
	c.mu.Unlock()
	if z != "" {
		return z, nil
	}
	var info struct {
		ZoneName string `json:"zoneName"`
		URL      string `json:"url"`
	}
	u := c.cfg.ZoneURL + zoneInfoPath + "?" + url.Values{"user": {c.cfg.UserName}}.Encode()
	// An unknown user may come back as 500: report it at once (a 429 is
	// still retried).
	req := restclient.Request{Method: http.MethodGet, URL: u, Customer: customer, Header: http.Header{"Accept": {"application/json"}}, Idempotent: new(bool)}
	if _, err := c.rest.JSON(ctx, req, &info); err != nil {
		return "", wrap(customer, "zone discovery for user "+c.cfg.UserName, err)
	}
	z, err := normaliseZone(info.URL)
	if err != nil {
		return "", fmt.Errorf("%s: customer %s: zone discovery for user %s: %w: zone url: %v", Integration, customer, c.cfg.UserName, restclient.ErrMalformed, err)
	}
	// The zone gets the secret on every call: it must pass the same
	// check as a configured URL.
	if err := restclient.CheckURL(z, c.cfg.AllowInsecureHTTP); err != nil {
		return "", fmt.Errorf("%s: customer %s: zone discovery for user %s answered zone URL %w", Integration, customer, c.cfg.UserName, err)
	}
	c.mu.Lock()
	c.zone = z
	c.mu.Unlock()
	return z, nil
}

func companyID(scope sinks.PSAScope) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(scope.CompanyID), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: company id %q is not a positive integer", Integration, scope.Customer, scope.CompanyID)
	}
	return id, nil
}

type filter struct {
	Op    string `json:"op"`
	Field string `json:"field,omitempty"`
	Value any    `json:"value,omitempty"`
}

type query struct {
	MaxRecords    int      `json:"MaxRecords"`
	IncludeFields []string `json:"IncludeFields"`
	Filter        []filter `json:"filter"`
}

type contact struct {
	ID           int64   `json:"id"`
	CompanyID    int64   `json:"companyID"`
	FirstName    string  `json:"firstName"`
	LastName     string  `json:"lastName"`
	EmailAddress *string `json:"emailAddress"`
}

// page is one page of a query's answer.
type page struct {
	Items       []contact `json:"items"`
	PageDetails struct {
		Count       int     `json:"count"`
		NextPageURL *string `json:"nextPageUrl"`
	} `json:"pageDetails"`
}

func (ct contact) toContact() sinks.Contact {
	c := sinks.Contact{Ref: strconv.FormatInt(ct.ID, 10), FirstName: ct.FirstName, LastName: ct.LastName}
	if ct.EmailAddress != nil {
		c.Email = strings.TrimSpace(*ct.EmailAddress)
	}
	return c
}

// DecodePage decodes one page of a contact query: its contacts and the
// next page's URL ("" on the last page).
func DecodePage(body []byte) ([]sinks.Contact, string, error) {
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	out := make([]sinks.Contact, 0, len(p.Items))
	for _, it := range p.Items {
		if it.ID <= 0 {
			return nil, "", fmt.Errorf("%w: contact without an id", restclient.ErrMalformed)
		}
		out = append(out, it.toContact())
	}
	next := ""
	if p.PageDetails.NextPageURL != nil {
		next = *p.PageDetails.NextPageURL
	}
	return out, next, nil
}

var yes = true

// Index lists every contact (active or not) of the customer's company.
func (c *Client) Index(ctx context.Context, scope sinks.PSAScope) (*sinks.ContactIndex, error) {
	id, err := companyID(scope)
	if err != nil {
		return nil, err
	}
	zone, err := c.Zone(ctx, scope.Customer)
	if err != nil {
		return nil, err
	}
	zu, _ := url.Parse(zone)
	req := restclient.Request{
		Method: http.MethodPost, URL: zone + "Contacts/query", Header: c.jsonHeader(), Customer: scope.Customer,
		Body: query{
			MaxRecords:    c.cfg.PageSize,
			IncludeFields: []string{"id", "companyID", "firstName", "lastName", "emailAddress", "isActive"},
			Filter:        []filter{{Op: "eq", Field: "companyID", Value: id}},
		},
		// A query reads; retrying it is safe.
		Idempotent: &yes,
	}
	var all []sinks.Contact
	seen := map[int64]bool{}
	for n := 1; ; n++ {
		if n > maxPages {
			return nil, fmt.Errorf("%s: customer %s: query contacts of company %d: more than %d pages, giving up", Integration, scope.Customer, id, maxPages)
		}
		op := fmt.Sprintf("query contacts of company %d page %d", id, n)
		var p page
		if !c.answered.Load() {
			// Autotask answers bad credentials with 500: until a call has
			// succeeded, a 500 is reported at once, not retried.
			req.Idempotent = new(bool)
		}
		if _, err := c.rest.JSON(ctx, req, &p); err != nil {
			return nil, c.wrapFirst(scope.Customer, op, err)
		}
		c.answered.Store(true)
		fresh := 0
		for _, it := range p.Items {
			if it.ID <= 0 {
				return nil, fmt.Errorf("%s: customer %s: %s: %w: contact without an id", Integration, scope.Customer, op, restclient.ErrMalformed)
			}
			if it.CompanyID != 0 && it.CompanyID != id {
				return nil, fmt.Errorf("%s: customer %s: %s: contact %d belongs to company %d: the server ignored the filter", Integration, scope.Customer, op, it.ID, it.CompanyID)
			}
			if seen[it.ID] {
				continue
			}
			seen[it.ID] = true
			fresh++
			all = append(all, it.toContact())
		}
		if p.PageDetails.NextPageURL == nil || *p.PageDetails.NextPageURL == "" {
			break
		}
		if fresh == 0 {
			return nil, fmt.Errorf("%s: customer %s: %s: the server repeated a page; stopping", Integration, scope.Customer, op)
		}
		nu, err := url.Parse(*p.PageDetails.NextPageURL)
		if err != nil || nu.Host != zu.Host || nu.Scheme != zu.Scheme {
			return nil, fmt.Errorf("%s: customer %s: %s: %w: nextPageUrl is not on the zone's host", Integration, scope.Customer, op, restclient.ErrMalformed)
		}
		req = restclient.Request{Method: http.MethodGet, URL: nu.String(), Header: c.header, Customer: scope.Customer, Idempotent: &yes}
	}
	return sinks.NewContactIndex(all), nil
}

func (c *Client) jsonHeader() http.Header {
	h := c.header.Clone()
	h.Set("Content-Type", "application/json")
	return h
}

// Create creates an active contact in the customer's company. Autotask
// requires both names. It is never retried after the server may have
// processed it.
func (c *Client) Create(ctx context.Context, scope sinks.PSAScope, nc sinks.NewContact) (sinks.Contact, error) {
	id, err := companyID(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	first, last, email := strings.TrimSpace(nc.FirstName), strings.TrimSpace(nc.LastName), strings.TrimSpace(nc.Email)
	if first == "" || last == "" {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: create contact: Autotask requires a first and a last name", Integration, scope.Customer)
	}
	zone, err := c.Zone(ctx, scope.Customer)
	if err != nil {
		return sinks.Contact{}, err
	}
	body := map[string]any{"companyID": id, "firstName": first, "lastName": last, "isActive": 1}
	if email != "" {
		body["emailAddress"] = email
	}
	var out struct {
		ItemID *int64 `json:"itemId"`
	}
	op := fmt.Sprintf("create contact in company %d", id)
	if _, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodPost, URL: zone + "Contacts", Header: c.jsonHeader(), Body: body, Customer: scope.Customer}, &out); err != nil {
		return sinks.Contact{}, c.wrapFirst(scope.Customer, op, err)
	}
	c.answered.Store(true)
	if out.ItemID == nil || *out.ItemID <= 0 {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: no itemId in the answer", Integration, scope.Customer, op, restclient.ErrMalformed)
	}
	return sinks.Contact{Ref: strconv.FormatInt(*out.ItemID, 10), FirstName: first, LastName: last, Email: email}, nil
}

// Threshold is the database's request usage.
type Threshold struct {
	Limit         int // externalRequestThreshold
	WindowMinutes int // requestThresholdTimeframe
	Used          int // currentTimeframeRequestCount
}

// Threshold reads the database's request usage (check it before a large
// run and stop early when close).
func (c *Client) Threshold(ctx context.Context, customer string) (Threshold, error) {
	zone, err := c.Zone(ctx, customer)
	if err != nil {
		return Threshold{}, err
	}
	var t struct {
		Limit  int `json:"externalRequestThreshold"`
		Window int `json:"requestThresholdTimeframe"`
		Used   int `json:"currentTimeframeRequestCount"`
	}
	if _, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodGet, URL: zone + "ThresholdInformation", Header: c.header, Customer: customer}, &t); err != nil {
		return Threshold{}, c.wrapFirst(customer, "threshold information", err)
	}
	c.answered.Store(true)
	return Threshold{Limit: t.Limit, WindowMinutes: t.Window, Used: t.Used}, nil
}

// wrapFirst wraps err and, for a 500 before any call succeeded, says that
// Autotask answers a wrong user name or integration code that way.
func (c *Client) wrapFirst(customer, op string, err error) error {
	var re *restclient.Error
	if errors.As(err, &re) && re.Status == http.StatusInternalServerError && !c.answered.Load() {
		op += " (Autotask answers 500 to a wrong API user name or integration code: check them)"
	}
	return wrap(customer, op, err)
}

// wrap names the integration, the customer and the operation in err.
func wrap(customer, op string, err error) error {
	return restclient.Wrap(Integration, customer, op, err)
}

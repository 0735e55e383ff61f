// Package halopsa is autoimport's HaloPSA sink: it lists a customer
// client's users (Halo's contacts) into a sinks.ContactIndex and creates new
// users on the client's site, over Halo's REST API with an OAuth
// client-credentials token that is refreshed before it expires and again
// when the API refuses it.
package halopsa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"
)

// Integration is the name used in messages.
const Integration = "HaloPSA"

// DefaultRate paces requests when Config.Rate is empty; Halo publishes no
// figure.
const DefaultRate = "120/m"

// DefaultPageSize is the users page size when Config.PageSize is zero.
const DefaultPageSize = 250

const maxPages = 10000

// Config configures a Client.
type Config struct {
	// URL is the resource server, e.g. https://acme.halopsa.com (the API
	// is URL/api; a URL ending in /api is used as it is).
	URL string
	// AuthURL is the authorisation server (default URL/auth); the token
	// endpoint is AuthURL/token.
	AuthURL string
	// Tenant is the hosted instance's tenant, sent as ?tenant= to the token
	// endpoint; empty for self-hosted instances.
	Tenant string
	// ClientID and ClientSecret are the API application's credentials.
	ClientID, ClientSecret string
	// Scope of the token (default "all").
	Scope string
	// Rate paces requests, shared by every client of the same application,
	// e.g. "120/m" (default DefaultRate); Burst is the limiter's burst
	// (default 1).
	Rate  string
	Burst int
	// PageSize of user listings (default DefaultPageSize).
	PageSize int
	// AllowInsecureHTTP lets URL and AuthURL be http:// to a host other
	// than this machine (restclient.CheckURL); credentials then cross the
	// network in clear. Off, only https:// and http:// to loopback are
	// accepted.
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

// Client is a HaloPSA implementing sinks.PSA.
type Client struct {
	cfg    Config
	api    string
	cc     *clientcredentials.Config
	hc     *http.Client // for the token endpoint
	rest   *restclient.Client
	apiURL *url.URL

	mu    sync.Mutex
	tok   *oauth2.Token
	sites map[int]int // client id -> site id for new users
	// siteMu lets one site lookup run at a time, so that concurrent
	// creates wait for the first lookup instead of each making their own.
	siteMu sync.Mutex
}

var _ sinks.PSA = (*Client)(nil)

// New checks the configuration and makes a client. It sends no request.
func New(cfg Config) (*Client, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"URL", cfg.URL}, {"ClientID", cfg.ClientID}, {"ClientSecret", cfg.ClientSecret}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: config: missing %s", Integration, strings.Join(missing, ", "))
	}
	u, err := httpURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: config: URL: %w", Integration, err)
	}
	if err := restclient.CheckURL(strings.TrimSpace(cfg.URL), cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: config: URL %w", Integration, err)
	}
	api := strings.TrimRight(u.String(), "/")
	root := api
	if strings.HasSuffix(strings.ToLower(api), "/api") {
		root = api[:len(api)-len("/api")]
	} else {
		api += "/api"
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = root + "/auth"
	}
	au, err := httpURL(cfg.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("%s: config: AuthURL: %w", Integration, err)
	}
	// The client secret goes to the authorisation server.
	if err := restclient.CheckURL(strings.TrimSpace(cfg.AuthURL), cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: config: AuthURL %w", Integration, err)
	}
	tokenURL := strings.TrimRight(au.String(), "/") + "/token"
	if cfg.Tenant != "" {
		tokenURL += "?" + url.Values{"tenant": {cfg.Tenant}}.Encode()
	}
	if cfg.Scope == "" {
		cfg.Scope = "all"
	}
	if cfg.Rate == "" {
		cfg.Rate = DefaultRate
	}
	lim, err := restclient.ParseRate(cfg.Rate)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", Integration, err)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	apiURL, _ := url.Parse(api)
	c := &Client{
		cfg: cfg, api: api, apiURL: apiURL,
		cc: &clientcredentials.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: tokenURL,
			Scopes: strings.Fields(cfg.Scope), AuthStyle: oauth2.AuthStyleInParams,
		},
		// The client secret goes in the token request: plain http to this
		// machine only, no redirect to another origin, and the answer
		// bounded before oauth2 reads it.
		hc:    restclient.TokenClient(Integration, tr, tokenBodyLimit(cfg.MaxBody), timeout, cfg.AllowInsecureHTTP),
		sites: map[int]int{},
	}
	c.rest = restclient.New(restclient.Config{
		Integration:       Integration,
		Timeout:           cfg.Timeout,
		MaxRetries:        cfg.MaxRetries,
		MinWait:           cfg.MinWait,
		MaxWait:           cfg.MaxWait,
		Limiter:           restclient.SharedLimiter(Integration, root+"\x00"+cfg.ClientID, rate.Limit(lim), cfg.Burst),
		Transport:         cfg.Transport,
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Log:               cfg.Log,
		MaxBody:           cfg.MaxBody,
	})
	return c, nil
}

// tokenBodyLimit is the most of a token answer read: MaxBody when it is
// smaller than restclient.MaxTokenBody.
func tokenBodyLimit(maxBody int64) int64 {
	if maxBody > 0 && maxBody < restclient.MaxTokenBody {
		return maxBody
	}
	return restclient.MaxTokenBody
}

func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%q is not an http(s) URL without a query", s)
	}
	return u, nil
}

// Name is the integration's name.
func (c *Client) Name() string { return Integration }

// Stats returns the HTTP client's counters (token requests excluded).
func (c *Client) Stats() restclient.Stats { return c.rest.Stats() }

// token returns a valid bearer token, fetching a new one when there is
// none or it expires within a minute.
func (c *Client) token(ctx context.Context, customer string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken != "" && (c.tok.Expiry.IsZero() || time.Until(c.tok.Expiry) > time.Minute) {
		return c.tok.AccessToken, nil
	}
	tok, err := c.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			detail := strings.TrimSpace(strings.Join(nonEmpty(re.ErrorCode, re.ErrorDescription), ": "))
			if detail == "" {
				detail = strings.TrimSpace(string(bytes.ToValidUTF8(re.Body[:min(len(re.Body), 200)], []byte("?"))))
			}
			return "", &restclient.OpError{Msg: fmt.Sprintf("%s: customer %s: token: HTTP %d: %s (check the %s client id, secret and tenant)", Integration, customer, re.Response.StatusCode, detail, Integration), Err: err}
		}
		var rest *restclient.Error
		if errors.As(err, &rest) {
			// An answer that is not a token (too long, cut off).
			return "", &restclient.OpError{Msg: fmt.Sprintf("%s: customer %s: token: %s", Integration, customer, strings.TrimPrefix(rest.Error(), Integration+": ")), Err: err}
		}
		return "", &restclient.OpError{Msg: fmt.Sprintf("%s: customer %s: token: %s", Integration, customer, redact(err.Error(), c.cfg.ClientSecret)), Err: err}
	}
	c.tok = tok
	return tok.AccessToken, nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

// forget drops the cached token if it is still the one that was refused.
func (c *Client) forget(access string) {
	c.mu.Lock()
	if c.tok != nil && c.tok.AccessToken == access {
		c.tok = nil
	}
	c.mu.Unlock()
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

// call sends an API request with a bearer token; a 401 (the token expired
// or was revoked early) is answered once with a fresh token — safe for a
// POST too, since Halo refused it without processing it.
func (c *Client) call(ctx context.Context, customer, op string, r restclient.Request, out any) error {
	r.Customer = customer
	for attempt := 0; ; attempt++ {
		access, err := c.token(ctx, customer)
		if err != nil {
			return err
		}
		r.Header = r.Header.Clone()
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set("Authorization", "Bearer "+access)
		r.Header.Set("Accept", "application/json")
		_, err = c.rest.JSON(ctx, r, out)
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusUnauthorized && attempt == 0 {
			c.forget(access)
			continue
		}
		if err != nil {
			return wrap(customer, op, err)
		}
		return nil
	}
}

func clientSite(scope sinks.PSAScope) (clientID, siteID int, err error) {
	cs, ss, hasSite := strings.Cut(strings.TrimSpace(scope.CompanyID), ":")
	clientID, err = strconv.Atoi(cs)
	if err == nil && hasSite {
		siteID, err = strconv.Atoi(ss)
		if siteID <= 0 {
			err = errors.New("bad site")
		}
	}
	if err != nil || clientID <= 0 {
		return 0, 0, fmt.Errorf("%s: customer %s: client id %q is not a positive integer (or CLIENT:SITE)", Integration, scope.Customer, scope.CompanyID)
	}
	return clientID, siteID, nil
}

// user is the subset of a Halo user autoimport reads.
type user struct {
	ID           int    `json:"id"`
	Name         string `json:"name"`
	FirstName    string `json:"firstname"`
	Surname      string `json:"surname"`
	EmailAddress string `json:"emailaddress"`
	ClientID     int    `json:"client_id"`
}

func (u user) toContact() sinks.Contact {
	first, last := strings.TrimSpace(u.FirstName), strings.TrimSpace(u.Surname)
	if first == "" && last == "" {
		// Users made in the UI may carry only the full name.
		name := strings.TrimSpace(u.Name)
		if i := strings.LastIndexByte(name, ' '); i > 0 {
			first, last = strings.TrimSpace(name[:i]), strings.TrimSpace(name[i+1:])
		} else {
			first = name
		}
	}
	return sinks.Contact{Ref: strconv.Itoa(u.ID), FirstName: first, LastName: last, Email: strings.TrimSpace(u.EmailAddress)}
}

type usersPage struct {
	RecordCount *int   `json:"record_count"`
	Users       []user `json:"users"`
}

// DecodeUsersPage decodes one page of GET /api/Users: its contacts and the
// total record_count (-1 when absent).
func DecodeUsersPage(body []byte) ([]sinks.Contact, int, error) {
	var p usersPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	out := make([]sinks.Contact, 0, len(p.Users))
	for _, u := range p.Users {
		if u.ID <= 0 {
			return nil, 0, fmt.Errorf("%w: user without an id", restclient.ErrMalformed)
		}
		out = append(out, u.toContact())
	}
	total := -1
	if p.RecordCount != nil {
		total = *p.RecordCount
	}
	return out, total, nil
}

// Index lists every user (inactive ones too) of the customer's client,
// page by page until record_count users arrived or a page is empty.
func (c *Client) Index(ctx context.Context, scope sinks.PSAScope) (*sinks.ContactIndex, error) {
	clientID, _, err := clientSite(scope)
	if err != nil {
		return nil, err
	}
	var all []sinks.Contact
	seen := map[int]bool{}
	for page := 1; ; page++ {
		op := fmt.Sprintf("list users of client %d page %d", clientID, page)
		if page > maxPages {
			return nil, fmt.Errorf("%s: customer %s: %s: more than %d pages, giving up", Integration, scope.Customer, op, maxPages)
		}
		q := url.Values{
			"client_id": {strconv.Itoa(clientID)}, "pageinate": {"true"}, "page_size": {strconv.Itoa(c.cfg.PageSize)},
			"page_no": {strconv.Itoa(page)}, "includeinactive": {"true"},
		}
		var p usersPage
		if err := c.call(ctx, scope.Customer, op, restclient.Request{Method: http.MethodGet, URL: c.api + "/Users?" + q.Encode()}, &p); err != nil {
			return nil, err
		}
		if p.RecordCount == nil {
			return nil, fmt.Errorf("%s: customer %s: %s: %w: no record_count", Integration, scope.Customer, op, restclient.ErrMalformed)
		}
		fresh := 0
		for _, u := range p.Users {
			if u.ID <= 0 {
				return nil, fmt.Errorf("%s: customer %s: %s: %w: user without an id", Integration, scope.Customer, op, restclient.ErrMalformed)
			}
			if u.ClientID != 0 && u.ClientID != clientID {
				return nil, fmt.Errorf("%s: customer %s: %s: user %d belongs to client %d: the server ignored client_id", Integration, scope.Customer, op, u.ID, u.ClientID)
			}
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			fresh++
			all = append(all, u.toContact())
		}
		if len(p.Users) == 0 || len(all) >= *p.RecordCount {
			break
		}
		if fresh == 0 {
			return nil, fmt.Errorf("%s: customer %s: %s: the server repeated a page; stopping", Integration, scope.Customer, op)
		}
	}
	return sinks.NewContactIndex(all), nil
}

// site returns the site new users of a client go to: the client's site
// named "Main", else its first, looked up once per client.
func (c *Client) site(ctx context.Context, customer string, clientID int) (int, error) {
	c.siteMu.Lock()
	defer c.siteMu.Unlock()
	c.mu.Lock()
	id, ok := c.sites[clientID]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	var raw json.RawMessage
	q := url.Values{"client_id": {strconv.Itoa(clientID)}}
	if err := c.call(ctx, customer, fmt.Sprintf("list sites of client %d", clientID), restclient.Request{Method: http.MethodGet, URL: c.api + "/Site?" + q.Encode()}, &raw); err != nil {
		return 0, err
	}
	type siteRec struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		ClientID int    `json:"client_id"`
	}
	var sites []siteRec
	if err := json.Unmarshal(raw, &sites); err != nil {
		var wrapped struct {
			Sites []siteRec `json:"sites"`
		}
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return 0, fmt.Errorf("%s: customer %s: list sites of client %d: %w: %v", Integration, customer, clientID, restclient.ErrMalformed, err)
		}
		sites = wrapped.Sites
	}
	for _, s := range sites {
		if s.ID <= 0 || (s.ClientID != 0 && s.ClientID != clientID) {
			continue
		}
		if id == 0 || strings.EqualFold(s.Name, "Main") {
			id = s.ID
		}
	}
	if id == 0 {
		return 0, fmt.Errorf("%s: customer %s: client %d has no site to put new users on", Integration, customer, clientID)
	}
	c.mu.Lock()
	c.sites[clientID] = id
	c.mu.Unlock()
	return id, nil
}

// Create creates a user in the customer's client, on the site given as
// CLIENT:SITE in the scope or else the client's main site. It is never
// retried after the server may have processed it.
func (c *Client) Create(ctx context.Context, scope sinks.PSAScope, nc sinks.NewContact) (sinks.Contact, error) {
	clientID, siteID, err := clientSite(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	first, last, email := strings.TrimSpace(nc.FirstName), strings.TrimSpace(nc.LastName), strings.TrimSpace(nc.Email)
	name := strings.TrimSpace(first + " " + last)
	if name == "" {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: create user: a name is required", Integration, scope.Customer)
	}
	if siteID == 0 {
		if siteID, err = c.site(ctx, scope.Customer, clientID); err != nil {
			return sinks.Contact{}, err
		}
	}
	rec := map[string]any{"name": name, "firstname": first, "surname": last, "client_id": clientID, "site_id": siteID}
	if email != "" {
		rec["emailaddress"] = email
	}
	op := fmt.Sprintf("create user in client %d", clientID)
	var raw json.RawMessage
	hdr := http.Header{"Content-Type": {"application/json"}}
	if err := c.call(ctx, scope.Customer, op, restclient.Request{Method: http.MethodPost, URL: c.api + "/Users", Header: hdr, Body: []map[string]any{rec}}, &raw); err != nil {
		return sinks.Contact{}, err
	}
	u, err := decodeCreated(raw)
	if err != nil {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w", Integration, scope.Customer, op, err)
	}
	got := u.toContact()
	if got.Email == "" {
		got.Email = email
	}
	if got.FirstName == "" && got.LastName == "" {
		got.FirstName, got.LastName = first, last
	}
	return got, nil
}

// decodeCreated reads the saved user from a create's answer, an object or
// an array of one.
func decodeCreated(raw []byte) (user, error) {
	raw = bytes.TrimSpace(raw)
	var u user
	if len(raw) > 0 && raw[0] == '[' {
		var us []user
		if err := json.Unmarshal(raw, &us); err != nil {
			return user{}, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
		}
		if len(us) != 1 {
			return user{}, fmt.Errorf("%w: %d users in the answer to one create", restclient.ErrMalformed, len(us))
		}
		u = us[0]
	} else if err := json.Unmarshal(raw, &u); err != nil {
		return user{}, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if u.ID <= 0 {
		return user{}, fmt.Errorf("%w: no id in the saved user", restclient.ErrMalformed)
	}
	return u, nil
}

// wrap names the integration, the customer and the operation in err.
func wrap(customer, op string, err error) error {
	return restclient.Wrap(Integration, customer, op, err)
}

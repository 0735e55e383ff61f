// Package hudu is autoimport's Hudu vault sink: it lists the asset
// passwords of a customer's company into a sinks.VaultIndex, using the
// password_type field as the category, and creates new asset passwords,
// over the MSP's own Hudu instance at {URL}/api/v1.
//
// Hudu returns password values in clear inside listings: those responses
// are decoded without the value and never appear in an error or log.
package hudu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Integration is the name used in messages.
const Integration = "Hudu"

// DefaultRate is the request rate used when Config.Rate is empty: the 300
// requests per minute client libraries cite, less a margin.
const DefaultRate = "250/m"

// DefaultPageSize is the page_size the client asks for; the API's own
// default is 25.
const DefaultPageSize = 1000

// apiPath is where the API lives on an instance.
const apiPath = "/api/v1"

// maxPages guards against a server that never stops paging.
const maxPages = 10000

// Config configures a Client.
type Config struct {
	// URL is the MSP's Hudu instance, e.g. https://docs.msp.example; a URL
	// that already ends in /api/v1 is used as it is.
	URL string
	// APIKey is the resolved API key.
	APIKey string
	// Rate paces requests, shared by every client of the same instance
	// (Hudu limits per instance, whichever key is used), e.g. "300/m"
	// (default DefaultRate).
	Rate string
	// Burst is the limiter's burst (default 1).
	Burst int
	// PageSize of listings (default DefaultPageSize).
	PageSize int
	// AllowInsecureHTTP lets URL be http:// to a host other than this
	// machine (restclient.CheckURL); credentials then cross the network
	// in clear. Off, only https:// and http:// to loopback are accepted.
	AllowInsecureHTTP bool
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
	// Log receives one debug line per request; never a password.
	Log logrus.FieldLogger
	// Timeout, MaxRetries, MinWait and MaxWait tune restclient (zero means
	// its defaults, except MinWait: 5 s, because Hudu's 429 may come
	// without Retry-After and its window may be minutes long).
	Timeout          time.Duration
	MaxRetries       int
	MinWait, MaxWait time.Duration
	// MaxBody bounds one response body (default
	// restclient.DefaultMaxBody); a longer one is a malformed answer.
	MaxBody int64
}

// Client is a Hudu instance implementing sinks.Vault.
type Client struct {
	cfg    Config
	base   string
	header http.Header
	rest   *restclient.Client
	log    logrus.FieldLogger
}

var _ sinks.Vault = (*Client)(nil)

// New checks the configuration and makes a client. It sends no request.
func New(cfg Config) (*Client, error) {
	var missing []string
	if strings.TrimSpace(cfg.URL) == "" {
		missing = append(missing, "URL")
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		missing = append(missing, "APIKey")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: config: missing %s", Integration, strings.Join(missing, ", "))
	}
	if err := restclient.CheckURL(cfg.URL, cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: config: URL %w", Integration, err)
	}
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("%s: config: URL %q is not an http(s) URL", Integration, cfg.URL)
	}
	base := u.String()
	if !strings.HasSuffix(base, apiPath) {
		base += apiPath
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
	if cfg.MinWait <= 0 {
		cfg.MinWait = 5 * time.Second
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = l
	}
	h := http.Header{}
	h.Set("x-api-key", cfg.APIKey)
	h.Set("Accept", "application/json")
	return &Client{
		cfg:    cfg,
		base:   base,
		header: h,
		log:    cfg.Log.WithField("integration", Integration),
		rest: restclient.New(restclient.Config{
			Integration:       Integration,
			Timeout:           cfg.Timeout,
			MaxRetries:        cfg.MaxRetries,
			MinWait:           cfg.MinWait,
			MaxWait:           cfg.MaxWait,
			Limiter:           restclient.SharedLimiter(Integration, strings.ToLower(u.Host), rate.Limit(lim), cfg.Burst),
			Transport:         cfg.Transport,
			AllowInsecureHTTP: cfg.AllowInsecureHTTP,
			Log:               cfg.Log,
			MaxBody:           cfg.MaxBody,
		}),
	}, nil
}

// Name is the integration's name.
func (c *Client) Name() string { return Integration }

// Stats returns the HTTP client's counters.
func (c *Client) Stats() restclient.Stats { return c.rest.Stats() }

func companyID(scope sinks.VaultScope) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(scope.Container))
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: company id %q is not a positive integer", Integration, scope.Customer, scope.Container)
	}
	return id, nil
}

// AssetPassword is the part of a Hudu asset password autoimport reads; the
// value and OTP secret are never decoded.
type AssetPassword struct {
	ID           int
	CompanyID    int
	Name         string
	Username     string
	PasswordType string
	Archived     bool
}

func (p AssetPassword) entry() sinks.VaultEntry {
	return sinks.VaultEntry{Ref: strconv.Itoa(p.ID), Name: p.Name, Username: p.Username, Category: p.PasswordType}
}

// flexInt reads an integer sent as a JSON number or numeric string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*f = flexInt(n)
	return nil
}

type assetPassword struct {
	ID           flexInt `json:"id"`
	CompanyID    flexInt `json:"company_id"`
	Name         *string `json:"name"`
	Username     *string `json:"username"`
	PasswordType *string `json:"password_type"`
	Archived     *bool   `json:"archived"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

func (a assetPassword) decode() (AssetPassword, error) {
	if a.ID <= 0 {
		return AssetPassword{}, fmt.Errorf("%w: asset password without an id", restclient.ErrMalformed)
	}
	return AssetPassword{ID: int(a.ID), CompanyID: int(a.CompanyID), Name: str(a.Name), Username: str(a.Username), PasswordType: str(a.PasswordType), Archived: a.Archived != nil && *a.Archived}, nil
}

// DecodeAssetPasswords decodes one listing page {"asset_passwords":[…]}.
// A body without that member (an error document, an HTML page) is
// malformed. Errors never quote the body, which holds password values.
func DecodeAssetPasswords(body []byte) ([]AssetPassword, error) {
	var doc struct {
		List *[]assetPassword `json:"asset_passwords"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s", restclient.ErrMalformed, syntaxOnly(err))
	}
	if doc.List == nil {
		return nil, fmt.Errorf("%w: no asset_passwords member", restclient.ErrMalformed)
	}
	out := make([]AssetPassword, 0, len(*doc.List))
	for _, a := range *doc.List {
		p, err := a.decode()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DecodeAssetPassword decodes a single {"asset_password":{…}} document.
func DecodeAssetPassword(body []byte) (AssetPassword, error) {
	var doc struct {
		One *assetPassword `json:"asset_password"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return AssetPassword{}, fmt.Errorf("%w: %s", restclient.ErrMalformed, syntaxOnly(err))
	}
	if doc.One == nil {
		return AssetPassword{}, fmt.Errorf("%w: no asset_password member", restclient.ErrMalformed)
	}
	return doc.One.decode()
}

// syntaxOnly describes a JSON error without quoting the document: a type
// error from a custom decoder may carry a value.
func syntaxOnly(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s is not a %s", te.Field, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end of JSON input"):
		return "truncated JSON"
	}
	return "JSON that does not fit the documented shape"
}

// read sends a request and returns its whole 2xx body, at most
// Config.MaxBody bytes of it.
func (c *Client) read(ctx context.Context, r restclient.Request) ([]byte, int, string, error) {
	resp, err := c.rest.Do(ctx, r)
	if err != nil {
		return nil, 0, "", err
	}
	body, err := c.rest.ReadBody(resp, r, nil)
	if err != nil {
		return nil, 0, "", err
	}
	return body, resp.StatusCode, resp.Request.URL.Path, nil
}

// Index lists every asset password of the customer's company. Hudu gives
// no totals: a page shorter than the page size is the last. Because the
// largest page_size Hudu honours is not documented, a short first page is
// confirmed by asking for the next one; if that one is not empty the
// server capped the size, and the first page's length is used from then
// on. Archived entries are left out of matching.
func (c *Client) Index(ctx context.Context, scope sinks.VaultScope) (*sinks.VaultIndex, error) {
	co, err := companyID(scope)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("list asset passwords of company %d", co)
	var entries []sinks.VaultEntry
	seen := map[int]bool{}
	size := 0 // the page size the server honours, once known
	firstLen := -1
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: customer %s: %s: more than %d pages, giving up", Integration, scope.Customer, op, maxPages)
		}
		q := url.Values{}
		q.Set("company_id", strconv.Itoa(co))
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(c.cfg.PageSize))
		body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: c.base + "/asset_passwords?" + q.Encode(), Header: c.header, Customer: scope.Customer, Secret: true})
		if err != nil {
			return nil, wrap(scope.Customer, fmt.Sprintf("%s page %d", op, page), err)
		}
		list, err := DecodeAssetPasswords(body)
		if err != nil {
			return nil, wrap(scope.Customer, fmt.Sprintf("%s page %d", op, page), &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodGet, Path: path, Status: status, Err: err})
		}
		fresh := 0
		for _, p := range list {
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			fresh++
			if p.CompanyID != 0 && p.CompanyID != co {
				return nil, fmt.Errorf("%s: customer %s: %s page %d: the server returned asset password %d of company %d; is company_id honoured?", Integration, scope.Customer, op, page, p.ID, p.CompanyID)
			}
			if p.Archived {
				continue
			}
			entries = append(entries, p.entry())
		}
		n := len(list)
		if n > 0 && fresh == 0 {
			return nil, fmt.Errorf("%s: customer %s: %s page %d: the server repeated a page; stopping", Integration, scope.Customer, op, page)
		}
		switch {
		case n == 0:
			return sinks.NewVaultIndex(entries), nil
		case page == 1 && n >= c.cfg.PageSize:
			size = c.cfg.PageSize
		case page == 1:
			firstLen = n // short first page: confirm with page 2
			continue
		case size == 0:
			// Page 2 after a short first page was not empty: the server
			// caps page_size at the first page's length.
			size = firstLen
		}
		if n < size {
			return sinks.NewVaultIndex(entries), nil
		}
	}
}

// placeholderPassword makes the value of an entry created before the
// account's password is known (Hudu requires one); the first password
// change written back replaces it.
func placeholderPassword() string {
	return "autoimport-" + rand.Text()
}

// Create creates an asset password in the customer's company with the
// entry's category as its password_type. It is sent once: a failure after
// the server may have processed it is reported, never retried blindly.
func (c *Client) Create(ctx context.Context, scope sinks.VaultScope, e sinks.NewVaultEntry) (sinks.VaultEntry, error) {
	co, err := companyID(scope)
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	name, username, typ := strings.TrimSpace(e.Name), strings.TrimSpace(e.Username), strings.TrimSpace(e.Category)
	if name == "" {
		name = username
	}
	if name == "" {
		return sinks.VaultEntry{}, fmt.Errorf("%s: customer %s: create asset password: a name or username is required", Integration, scope.Customer)
	}
	notes, value := e.Notes, e.Password
	if value == "" {
		value = placeholderPassword()
		if notes == "" {
			notes = "The password is a placeholder until the account's first password change."
		}
	}
	body := map[string]any{"asset_password": map[string]any{
		"company_id": co, "name": name, "username": username, "password": value,
		"password_type": typ, "description": notes, "in_portal": false,
	}}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", "application/json")
	op := fmt.Sprintf("create asset password %q in company %d", name, co)
	raw, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodPost, URL: c.base + "/asset_passwords", Header: hdr, Body: body, Customer: scope.Customer})
	if err != nil {
		return sinks.VaultEntry{}, wrap(scope.Customer, op, err)
	}
	p, err := DecodeAssetPassword(raw)
	if err != nil {
		return sinks.VaultEntry{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodPost, Path: path, Status: status, Err: err})
	}
	out := p.entry()
	if out.Category == "" {
		out.Category = typ
	}
	if out.Username == "" {
		out.Username = username
	}
	if out.Name == "" {
		out.Name = name
	}
	return out, nil
}

// wrap names the integration, the customer and the operation in err.
func wrap(customer, op string, err error) error {
	return restclient.Wrap(Integration, customer, op, err)
}

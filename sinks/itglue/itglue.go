// Package itglue is autoimport's IT Glue vault sink: it lists the password
// entries of a customer's organization into a sinks.VaultIndex and creates
// new entries in the right password category, over IT Glue's JSON:API.
//
// Listings carry no password value and a created entry is requested back
// without it (show_password=false); only Password (passwords.go) reads a
// value, for password rotation to check what it wrote.
package itglue

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
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Integration is the name used in messages.
const Integration = "IT Glue"

// Regional API base URLs.
const (
	URLUS = "https://api.itglue.com"
	URLEU = "https://api.eu.itglue.com"
	URLAU = "https://api.au.itglue.com"
)

// DefaultRate is IT Glue's published limit: 3,000 requests per 5 minutes
// per API key.
const DefaultRate = "3000/5m"

// MaxPageSize is the largest page[size] the API accepts.
const MaxPageSize = 1000

// MediaType is the JSON:API content type IT Glue requires on bodies.
const MediaType = "application/vnd.api+json"

// maxPages guards against a server that never stops paging.
const maxPages = 10000

// Config configures a Client.
type Config struct {
	// URL is the API base. Empty means the Region's URL.
	URL string
	// Region is "us" (default), "eu" or "au"; ignored when URL is set.
	Region string
	// APIKey is the resolved API key (ITG.…).
	APIKey string
	// Rate paces requests, shared by every client made with the same key,
	// e.g. "3000/5m" (default DefaultRate).
	Rate string
	// Burst is the limiter's burst (default 1).
	Burst int
	// PageSize of listings (default and maximum 1,000).
	PageSize int
	// AllowInsecureHTTP lets URL be http:// to a host other than this
	// machine (restclient.CheckURL); credentials then cross the network
	// in clear. Off, only https:// and http:// to loopback are accepted.
	AllowInsecureHTTP bool
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
	// Log receives one debug line per request and a line per entry left
	// out of an index; never a password.
	Log logrus.FieldLogger
	// Timeout, MaxRetries, MinWait and MaxWait tune restclient (zero means
	// its defaults). IT Glue may answer 429 without Retry-After; production
	// use should keep MinWait at 30 s or more (the default here).
	Timeout          time.Duration
	MaxRetries       int
	MinWait, MaxWait time.Duration
	// MaxBody bounds one response body (default
	// restclient.DefaultMaxBody); a longer one is a malformed answer.
	MaxBody int64
}

// RegionURL returns the API base URL of a region: "us", "eu" or "au".
func RegionURL(region string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(region)) {
	case "", "us":
		return URLUS, nil
	case "eu":
		return URLEU, nil
	case "au":
		return URLAU, nil
	}
	return "", fmt.Errorf("%s: config: unknown region %q (want us, eu or au)", Integration, region)
}

// Client is an IT Glue account implementing sinks.Vault.
type Client struct {
	cfg    Config
	base   string
	header http.Header
	rest   *restclient.Client
	log    logrus.FieldLogger

	mu         sync.Mutex // guards categories and serialises their creation
	categories map[string]Category
	byID       map[string]string // category id → name
}

// Category is an IT Glue password category (account-wide).
type Category struct {
	ID   string
	Name string
}

var _ sinks.Vault = (*Client)(nil)

// New checks the configuration and makes a client. It sends no request.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, fmt.Errorf("%s: config: missing APIKey", Integration)
	}
	raw := cfg.URL
	if raw == "" {
		var err error
		if raw, err = RegionURL(cfg.Region); err != nil {
			return nil, err
		}
	}
	if err := restclient.CheckURL(raw, cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s: config: URL %w", Integration, err)
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("%s: config: URL %q is not an http(s) URL", Integration, raw)
	}
	if cfg.Rate == "" {
		cfg.Rate = DefaultRate
	}
	lim, err := restclient.ParseRate(cfg.Rate)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", Integration, err)
	}
	if cfg.PageSize <= 0 || cfg.PageSize > MaxPageSize {
		cfg.PageSize = MaxPageSize
	}
	if cfg.MinWait <= 0 {
		cfg.MinWait = 30 * time.Second
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = l
	}
	h := http.Header{}
	h.Set("x-api-key", cfg.APIKey)
	h.Set("Accept", MediaType)
	return &Client{
		cfg:    cfg,
		base:   u.String(),
		header: h,
		log:    cfg.Log.WithField("integration", Integration),
		rest: restclient.New(restclient.Config{
			Integration:       Integration,
			Timeout:           cfg.Timeout,
			MaxRetries:        cfg.MaxRetries,
			MinWait:           cfg.MinWait,
			MaxWait:           cfg.MaxWait,
			Limiter:           restclient.SharedLimiter(Integration, cfg.APIKey, rate.Limit(lim), cfg.Burst),
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

func orgID(scope sinks.VaultScope) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(scope.Container))
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: organization id %q is not a positive integer", Integration, scope.Customer, scope.Container)
	}
	return id, nil
}

// Index lists every password entry of the customer's organization, following
// meta.next-page until it is null. Archived entries and entries that are
// personal (my-glue) or access-restricted are left out: they are never
// matched, and each one left out is logged by id.
func (c *Client) Index(ctx context.Context, scope sinks.VaultScope) (*sinks.VaultIndex, error) {
	org, err := orgID(scope)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("list passwords of organization %d", org)
	base := fmt.Sprintf("%s/organizations/%d/relationships/passwords", c.base, org)
	var (
		entries  []sinks.VaultEntry
		needName []int // entries with a category id but no name
		skipped  []string
	)
	err = c.pages(ctx, scope.Customer, op, base, func(p *PasswordPage) {
		for _, pw := range p.Passwords {
			if pw.Archived || pw.MyGlue || pw.Restricted {
				skipped = append(skipped, pw.ID)
				continue
			}
			if pw.CategoryName == "" && pw.CategoryID != "" {
				needName = append(needName, len(entries))
			}
			entries = append(entries, pw.entry())
		}
	})
	if err != nil {
		return nil, err
	}
	if len(needName) > 0 {
		// Some entries carry only a category id: name them from the
		// account's category list (one listing per client).
		if err := c.loadCategories(ctx, scope.Customer); err != nil {
			return nil, wrap(scope.Customer, "list password categories", err)
		}
		c.mu.Lock()
		for _, i := range needName {
			entries[i].Category = c.byID[entries[i].Category]
		}
		c.mu.Unlock()
	}
	if len(skipped) > 0 {
		ids := strings.Join(skipped[:min(len(skipped), 20)], ",")
		if len(skipped) > 20 {
			ids += fmt.Sprintf(" and %d more", len(skipped)-20)
		}
		c.log.WithFields(logrus.Fields{"customer": scope.Customer, "organization": org, "entries": ids}).
			Infof("%d archived, personal or restricted password entries are never matched", len(skipped))
	}
	return sinks.NewVaultIndex(entries), nil
}

// pages GETs a JSON:API listing page by page and hands each to fn.
func (c *Client) pages(ctx context.Context, customer, op, base string, fn func(*PasswordPage)) error {
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxPages {
			return fmt.Errorf("%s: customer %s: %s: more than %d pages, giving up", Integration, customer, op, maxPages)
		}
		u := fmt.Sprintf("%s?page[size]=%d&page[number]=%d", base, c.cfg.PageSize, page)
		p, err := c.getPage(ctx, customer, u)
		if err != nil {
			return wrap(customer, fmt.Sprintf("%s page %d", op, page), err)
		}
		n := len(p.Passwords)
		fresh := p.Passwords[:0]
		for _, pw := range p.Passwords {
			if !seen[pw.ID] {
				seen[pw.ID] = true
				fresh = append(fresh, pw)
			}
		}
		if n > 0 && len(fresh) == 0 {
			return fmt.Errorf("%s: customer %s: %s page %d: the server repeated a page; stopping", Integration, customer, op, page)
		}
		p.Passwords = fresh
		fn(p)
		if p.NextPage == 0 {
			return nil
		}
		if p.NextPage <= page {
			return fmt.Errorf("%s: customer %s: %s page %d: %w: next-page %d does not move forward", Integration, customer, op, page, restclient.ErrMalformed, p.NextPage)
		}
		if n == 0 {
			return fmt.Errorf("%s: customer %s: %s page %d: %w: an empty page names a next page", Integration, customer, op, page, restclient.ErrMalformed)
		}
		page = p.NextPage - 1
	}
}

// getPage reads one listing page and decodes it.
func (c *Client) getPage(ctx context.Context, customer, u string) (*PasswordPage, error) {
	body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: u, Header: c.header, Customer: customer, Secret: true})
	if err != nil {
		return nil, err
	}
	p, err := DecodePasswordPage(body)
	if err != nil {
		return nil, &restclient.Error{Integration: Integration, Customer: customer, Method: http.MethodGet, Path: path, Status: status, Err: err}
	}
	return p, nil
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

// Password is the part of an IT Glue password resource autoimport reads;
// the value itself is never decoded.
type Password struct {
	ID           string
	Name         string
	Username     string
	CategoryID   string
	CategoryName string
	Archived     bool
	MyGlue       bool
	Restricted   bool
}

func (p Password) entry() sinks.VaultEntry {
	cat := p.CategoryName
	if cat == "" {
		// Resolved to a name by the caller from the category list.
		cat = p.CategoryID
	}
	return sinks.VaultEntry{Ref: p.ID, Name: p.Name, Username: p.Username, Category: cat}
}

// PasswordPage is one decoded page of a password listing.
type PasswordPage struct {
	Passwords []Password
	// NextPage is meta.next-page, 0 when there is none.
	NextPage int
}

// flexID reads an id sent as a JSON string or number (null is empty).
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*f = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = flexID(strings.TrimSpace(v))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := n.Int64(); err != nil {
		return fmt.Errorf("id %s is not an integer", s)
	}
	*f = flexID(n.String())
	return nil
}

// flexBool reads a boolean that may be null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = false
		return nil
	}
	var v bool
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = flexBool(v)
	return nil
}

type passwordResource struct {
	ID         flexID `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		Name         *string  `json:"name"`
		Username     *string  `json:"username"`
		CategoryID   flexID   `json:"password-category-id"`
		CategoryName *string  `json:"password-category-name"`
		Archived     flexBool `json:"archived"`
		MyGlue       flexBool `json:"my-glue"`
		Restricted   flexBool `json:"restricted"`
	} `json:"attributes"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

func (r passwordResource) password() (Password, error) {
	if r.ID == "" {
		return Password{}, fmt.Errorf("%w: password without an id", restclient.ErrMalformed)
	}
	if r.Type != "" && r.Type != "passwords" {
		return Password{}, fmt.Errorf("%w: resource %s has type %q, want passwords", restclient.ErrMalformed, r.ID, r.Type)
	}
	a := r.Attributes
	return Password{ID: string(r.ID), Name: str(a.Name), Username: str(a.Username), CategoryID: string(a.CategoryID), CategoryName: str(a.CategoryName),
		Archived: bool(a.Archived), MyGlue: bool(a.MyGlue), Restricted: bool(a.Restricted)}, nil
}

// DecodePasswordPage decodes one page of a JSON:API password listing:
// {"data":[…],"meta":{"next-page":…}}. A document without "data" (an
// error document, an HTML page) is malformed.
func DecodePasswordPage(body []byte) (*PasswordPage, error) {
	var doc struct {
		Data *[]passwordResource `json:"data"`
		Meta struct {
			NextPage json.RawMessage `json:"next-page"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if doc.Data == nil {
		return nil, fmt.Errorf("%w: no data member", restclient.ErrMalformed)
	}
	next, err := pageNumber(doc.Meta.NextPage)
	if err != nil {
		return nil, err
	}
	p := &PasswordPage{NextPage: next, Passwords: make([]Password, 0, len(*doc.Data))}
	for _, r := range *doc.Data {
		pw, err := r.password()
		if err != nil {
			return nil, err
		}
		p.Passwords = append(p.Passwords, pw)
	}
	return p, nil
}

// pageNumber reads meta.next-page: null/absent is 0, else a positive
// integer (some servers send it as a string).
func pageNumber(raw json.RawMessage) (int, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: meta next-page %q is not a page number", restclient.ErrMalformed, s)
	}
	return n, nil
}

// loadCategories lists the account's password categories once per client.
func (c *Client) loadCategories(ctx context.Context, customer string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loadCategoriesLocked(ctx, customer)
}

func (c *Client) loadCategoriesLocked(ctx context.Context, customer string) error {
	if c.categories != nil {
		return nil
	}
	cats, byID := map[string]Category{}, map[string]string{}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxPages {
			return fmt.Errorf("more than %d pages of categories", maxPages)
		}
		u := fmt.Sprintf("%s/password_categories?page[size]=%d&page[number]=%d", c.base, c.cfg.PageSize, page)
		body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: u, Header: c.header, Customer: customer})
		if err != nil {
			return err
		}
		list, next, err := DecodeCategories(body)
		if err != nil {
			return &restclient.Error{Integration: Integration, Customer: customer, Method: http.MethodGet, Path: path, Status: status, Err: err}
		}
		fresh := 0
		for _, ct := range list {
			if seen[ct.ID] {
				continue
			}
			seen[ct.ID], byID[ct.ID] = true, ct.Name
			fresh++
			k := strings.ToLower(ct.Name)
			if _, dup := cats[k]; !dup {
				cats[k] = ct
			}
		}
		if next == 0 {
			break
		}
		if next <= page || fresh == 0 {
			return fmt.Errorf("%w: category listing page %d does not move forward", restclient.ErrMalformed, page)
		}
		page = next - 1
	}
	c.categories, c.byID = cats, byID
	return nil
}

// DecodeCategories decodes one page of a password category listing.
func DecodeCategories(body []byte) ([]Category, int, error) {
	var doc struct {
		Data *[]struct {
			ID         flexID `json:"id"`
			Attributes struct {
				Name *string `json:"name"`
			} `json:"attributes"`
		} `json:"data"`
		Meta struct {
			NextPage json.RawMessage `json:"next-page"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if doc.Data == nil {
		return nil, 0, fmt.Errorf("%w: no data member", restclient.ErrMalformed)
	}
	next, err := pageNumber(doc.Meta.NextPage)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Category, 0, len(*doc.Data))
	for _, d := range *doc.Data {
		if d.ID == "" || str(d.Attributes.Name) == "" {
			return nil, 0, fmt.Errorf("%w: password category without id or name", restclient.ErrMalformed)
		}
		out = append(out, Category{ID: string(d.ID), Name: str(d.Attributes.Name)})
	}
	return out, next, nil
}

// categoryID returns the id of a category by name, creating the category
// (account-wide) when the account has none of that name.
func (c *Client) categoryID(ctx context.Context, customer, name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadCategoriesLocked(ctx, customer); err != nil {
		return "", wrap(customer, "list password categories", err)
	}
	if ct, ok := c.categories[strings.ToLower(name)]; ok {
		return ct.ID, nil
	}
	body := map[string]any{"data": map[string]any{"type": "password-categories", "attributes": map[string]string{"name": name}}}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", MediaType)
	raw, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodPost, URL: c.base + "/password_categories", Header: hdr, Body: body, Customer: customer})
	if err != nil {
		return "", wrap(customer, fmt.Sprintf("password category %q does not exist and could not be created; create it in IT Glue or give the key the right to", name), err)
	}
	var doc struct {
		Data struct {
			ID flexID `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Data.ID == "" {
		return "", wrap(customer, fmt.Sprintf("create password category %q", name), &restclient.Error{Integration: Integration, Customer: customer, Method: http.MethodPost, Path: path, Status: status, Err: fmt.Errorf("%w: no id in the created category", restclient.ErrMalformed)})
	}
	ct := Category{ID: string(doc.Data.ID), Name: name}
	c.categories[strings.ToLower(name)] = ct
	c.byID[ct.ID] = name
	c.log.WithFields(logrus.Fields{"customer": customer, "category": name, "id": ct.ID}).Info("created password category")
	return ct.ID, nil
}

// placeholderPassword makes the value of an entry created before the
// account's password is known (IT Glue requires one); it is replaced by the
// first password change written back.
func placeholderPassword() string {
	return "autoimport-" + rand.Text()
}

// Create creates a password entry in the customer's organization, in the
// entry's category (created when missing). It is sent once: a failure after
// the server may have processed it is reported, never retried blindly.
func (c *Client) Create(ctx context.Context, scope sinks.VaultScope, e sinks.NewVaultEntry) (sinks.VaultEntry, error) {
	org, err := orgID(scope)
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	name, username, cat := strings.TrimSpace(e.Name), strings.TrimSpace(e.Username), strings.TrimSpace(e.Category)
	if name == "" {
		name = username
	}
	if name == "" {
		return sinks.VaultEntry{}, fmt.Errorf("%s: customer %s: create password: a name or username is required", Integration, scope.Customer)
	}
	attrs := map[string]any{"organization-id": org, "name": name, "username": username}
	if e.Notes != "" {
		attrs["notes"] = e.Notes
	}
	if e.Password != "" {
		attrs["password"] = e.Password
	} else {
		attrs["password"] = placeholderPassword()
		if e.Notes == "" {
			attrs["notes"] = "The password is a placeholder until the account's first password change."
		}
	}
	if cat != "" {
		id, err := c.categoryID(ctx, scope.Customer, cat)
		if err != nil {
			return sinks.VaultEntry{}, err
		}
		// Ids are strings in data[].id but numbers inside attributes.
		if n, err := strconv.Atoi(id); err == nil {
			attrs["password-category-id"] = n
		} else {
			attrs["password-category-id"] = id
		}
	}
	body := map[string]any{"data": map[string]any{"type": "passwords", "attributes": attrs}}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", MediaType)
	op := fmt.Sprintf("create password %q in organization %d", name, org)
	u := fmt.Sprintf("%s/organizations/%d/relationships/passwords?show_password=false", c.base, org)
	raw, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodPost, URL: u, Header: hdr, Body: body, Customer: scope.Customer, Secret: true})
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && (re.Status == http.StatusForbidden || re.Status == http.StatusUnauthorized) {
			op += " (writing passwords needs the API key's Password Access option)"
		}
		return sinks.VaultEntry{}, wrap(scope.Customer, op, err)
	}
	pw, err := DecodePassword(raw)
	if err != nil {
		return sinks.VaultEntry{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodPost, Path: path, Status: status, Err: err})
	}
	out := pw.entry()
	if out.Category == "" || out.Category == pw.CategoryID {
		out.Category = cat
	}
	if out.Username == "" {
		out.Username = username
	}
	return out, nil
}

// DecodePassword decodes a single-resource document {"data":{…}}, as
// returned by create and show. A one-element array is accepted too.
func DecodePassword(body []byte) (Password, error) {
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return Password{}, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	var r passwordResource
	d := strings.TrimSpace(string(doc.Data))
	switch {
	case strings.HasPrefix(d, "{"):
		if err := json.Unmarshal(doc.Data, &r); err != nil {
			return Password{}, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
		}
	case strings.HasPrefix(d, "["):
		var rs []passwordResource
		if err := json.Unmarshal(doc.Data, &rs); err != nil {
			return Password{}, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
		}
		if len(rs) != 1 {
			return Password{}, fmt.Errorf("%w: %d resources where one was created", restclient.ErrMalformed, len(rs))
		}
		r = rs[0]
	default:
		return Password{}, fmt.Errorf("%w: no data member", restclient.ErrMalformed)
	}
	return r.password()
}

// wrap names the integration, the customer and the operation in err.
func wrap(customer, op string, err error) error {
	return restclient.Wrap(Integration, customer, op, err)
}

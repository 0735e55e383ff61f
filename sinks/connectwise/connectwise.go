// Package connectwise is autoimport's ConnectWise PSA (Manage) sink: it lists
// a customer company's contacts into a sinks.ContactIndex and creates new
// contacts with their email address as a communication item, over the
// REST API at {site}/v4_6_release/apis/3.0.
package connectwise

import (
	"context"
	"encoding/base64"
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
	"golang.org/x/time/rate"
)

// Integration is the name used in messages.
const Integration = "ConnectWise"

// DefaultRate is the request rate used when Config.Rate is empty.
// ConnectWise publishes no figure; third-party guides quote 60 to 1,000
// requests per minute, so the default stays at the low end.
const DefaultRate = "60/m"

// MaxPageSize is the largest pageSize the API accepts.
const MaxPageSize = 1000

// apiPath routes to the partner's current codebase.
const apiPath = "/v4_6_release/apis/3.0"

// maxPages guards against a server that never stops paging.
const maxPages = 10000

// Config configures a Client.
type Config struct {
	// URL is the API site, e.g. https://api-na.myconnectwise.net, or an
	// on-premise host. A URL that already ends in /apis/3.0 (e.g. one built
	// from login/companyinfo's Codebase) is used as it is.
	URL string
	// CompanyID is the partner's login company id.
	CompanyID string
	// PublicKey and PrivateKey are an API member's keys.
	PublicKey, PrivateKey string
	// ClientID is the integration's clientId from developer.connectwise.com.
	ClientID string
	// Rate paces requests, shared by every client with the same company and
	// public key, e.g. "60/m" (default DefaultRate).
	Rate string
	// Burst is the limiter's burst (default 1).
	Burst int
	// PageSize of contact listings (default and maximum 1,000).
	PageSize int
	// ForwardOnly asks for forward-only paging (pagination-type header),
	// which stays fast on deep pages.
	ForwardOnly bool
	// EmailType is the name of the communication type used for email
	// addresses when the instance's types cannot be listed (default
	// "Email").
	EmailType string
	// AllowInsecureHTTP lets URL be http:// to a host other than this
	// machine (restclient.CheckURL); credentials then cross the network
	// in clear. Off, only https:// and http:// to loopback are accepted.
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

// Client is a ConnectWise PSA implementing sinks.PSA.
type Client struct {
	cfg    Config
	base   string
	header http.Header
	rest   *restclient.Client

	mu        sync.Mutex
	emailType *typeRef // resolved communication type for email
	// typeMu lets one lookup of the communication types run at a time, so
	// that concurrent creates wait for the first instead of each listing.
	typeMu sync.Mutex
}

var _ sinks.PSA = (*Client)(nil)

type typeRef struct {
	ID   int    `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// New checks the configuration and makes a client. It sends no request.
func New(cfg Config) (*Client, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"URL", cfg.URL}, {"CompanyID", cfg.CompanyID}, {"PublicKey", cfg.PublicKey}, {"PrivateKey", cfg.PrivateKey}, {"ClientID", cfg.ClientID}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
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
	if !strings.HasSuffix(base, "/apis/3.0") {
		base += apiPath
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
	if cfg.EmailType == "" {
		cfg.EmailType = "Email"
	}
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.CompanyID+"+"+cfg.PublicKey+":"+cfg.PrivateKey)))
	h.Set("clientId", cfg.ClientID)
	h.Set("Accept", "application/json")
	c := &Client{cfg: cfg, base: base, header: h}
	c.rest = restclient.New(restclient.Config{
		Integration:       Integration,
		Timeout:           cfg.Timeout,
		MaxRetries:        cfg.MaxRetries,
		MinWait:           cfg.MinWait,
		MaxWait:           cfg.MaxWait,
		Limiter:           restclient.SharedLimiter(Integration, strings.ToLower(cfg.CompanyID)+"+"+cfg.PublicKey, rate.Limit(lim), cfg.Burst),
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

func companyID(scope sinks.PSAScope) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(scope.CompanyID))
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: company id %q is not a positive integer", Integration, scope.Customer, scope.CompanyID)
	}
	return id, nil
}

// contact is the subset of a ConnectWise contact autoimport reads.
type contact struct {
	ID                 int        `json:"id"`
	FirstName          string     `json:"firstName"`
	LastName           string     `json:"lastName"`
	Company            *idRef     `json:"company"`
	InactiveFlag       bool       `json:"inactiveFlag"`
	CommunicationItems []commItem `json:"communicationItems"`
}

type idRef struct {
	ID int `json:"id"`
}

type commItem struct {
	Type              *typeRef `json:"type"`
	Value             string   `json:"value"`
	DefaultFlag       bool     `json:"defaultFlag"`
	CommunicationType string   `json:"communicationType"`
}

// email picks the contact's email address: the default email item, else
// the first one. An item is an email when its communicationType says so or
// its type is the instance's email type.
func (ct contact) email(emailType *typeRef, emailName string) string {
	var first string
	for _, it := range ct.CommunicationItems {
		isEmail := strings.EqualFold(it.CommunicationType, "Email")
		if it.Type != nil && !isEmail {
			isEmail = (emailType != nil && emailType.ID != 0 && it.Type.ID == emailType.ID) || (it.Type.Name != "" && strings.EqualFold(it.Type.Name, emailName))
		}
		v := strings.TrimSpace(it.Value)
		if !isEmail || v == "" {
			continue
		}
		if it.DefaultFlag {
			return v
		}
		if first == "" {
			first = v
		}
	}
	return first
}

func (c *Client) toContact(ct contact) sinks.Contact {
	c.mu.Lock()
	et := c.emailType
	c.mu.Unlock()
	return sinks.Contact{Ref: strconv.Itoa(ct.ID), FirstName: ct.FirstName, LastName: ct.LastName, Email: ct.email(et, c.cfg.EmailType)}
}

// DecodeContacts decodes one page of a contact listing (a bare JSON array).
func DecodeContacts(body []byte) ([]sinks.Contact, error) {
	var page []contact
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	out := make([]sinks.Contact, 0, len(page))
	for _, ct := range page {
		if ct.ID <= 0 {
			return nil, fmt.Errorf("%w: contact without an id", restclient.ErrMalformed)
		}
		out = append(out, sinks.Contact{Ref: strconv.Itoa(ct.ID), FirstName: ct.FirstName, LastName: ct.LastName, Email: ct.email(nil, "Email")})
	}
	return out, nil
}

// Index lists every contact (active or not) of the customer's company,
// following the Link header until there is no next page.
func (c *Client) Index(ctx context.Context, scope sinks.PSAScope) (*sinks.ContactIndex, error) {
	id, err := companyID(scope)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("conditions", fmt.Sprintf("company/id=%d", id))
	q.Set("fields", "id,firstName,lastName,company/id,communicationItems")
	q.Set("pageSize", strconv.Itoa(c.cfg.PageSize))
	hdr := c.header.Clone()
	if c.cfg.ForwardOnly {
		hdr.Set("pagination-type", "forward-only")
	} else {
		q.Set("page", "1")
		q.Set("orderBy", "id asc")
	}
	next := c.base + "/company/contacts?" + q.Encode()
	var all []sinks.Contact
	seen := map[int]bool{}
	for page := 1; next != ""; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: customer %s: list contacts of company %d: more than %d pages, giving up", Integration, scope.Customer, id, maxPages)
		}
		var items []contact
		h, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodGet, URL: next, Header: hdr, Customer: scope.Customer}, &items)
		if err != nil {
			return nil, wrap(scope.Customer, fmt.Sprintf("list contacts of company %d page %d", id, page), err)
		}
		fresh := 0
		for _, ct := range items {
			if ct.ID <= 0 {
				return nil, fmt.Errorf("%s: customer %s: list contacts of company %d page %d: %w: contact without an id", Integration, scope.Customer, id, page, restclient.ErrMalformed)
			}
			if ct.Company != nil && ct.Company.ID != 0 && ct.Company.ID != id {
				return nil, fmt.Errorf("%s: customer %s: list contacts of company %d page %d: contact %d belongs to company %d: the server ignored the condition", Integration, scope.Customer, id, page, ct.ID, ct.Company.ID)
			}
			if seen[ct.ID] {
				continue
			}
			seen[ct.ID] = true
			fresh++
			all = append(all, c.toContact(ct))
		}
		next, err = nextLink(h.Values("Link"), c.base)
		if err != nil {
			return nil, fmt.Errorf("%s: customer %s: list contacts of company %d page %d: %w", Integration, scope.Customer, id, page, err)
		}
		if next != "" && fresh == 0 {
			return nil, fmt.Errorf("%s: customer %s: list contacts of company %d page %d: the server repeated a page; stopping", Integration, scope.Customer, id, page)
		}
	}
	return sinks.NewContactIndex(all), nil
}

// nextLink returns the rel="next" target of Link headers, or "" when there
// is none. The target must stay on the API's host.
func nextLink(values []string, base string) (string, error) {
	for _, v := range values {
		for _, part := range splitLinks(v) {
			target, params, ok := strings.Cut(part, ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			isNext := false
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.EqualFold(strings.Trim(val, `"`), "next") {
					isNext = true
				}
			}
			if !isNext {
				continue
			}
			u, err := url.Parse(target[1 : len(target)-1])
			if err != nil {
				return "", fmt.Errorf("%w: next link: %v", restclient.ErrMalformed, err)
			}
			b, _ := url.Parse(base)
			u = b.ResolveReference(u)
			if u.Host != b.Host || u.Scheme != b.Scheme {
				return "", fmt.Errorf("%w: next link points to another host %q", restclient.ErrMalformed, u.Scheme+"://"+u.Host)
			}
			return u.String(), nil
		}
	}
	return "", nil
}

// splitLinks splits a Link header on the commas between <...> entries.
func splitLinks(v string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// resolveEmailType finds the instance's email communication type once;
// when the types cannot be listed it refers to the type by name.
func (c *Client) resolveEmailType(ctx context.Context, customer string) (*typeRef, error) {
	c.typeMu.Lock()
	defer c.typeMu.Unlock()
	c.mu.Lock()
	et := c.emailType
	c.mu.Unlock()
	if et != nil {
		return et, nil
	}
	var types []struct {
		ID          int    `json:"id"`
		Description string `json:"description"`
		EmailFlag   bool   `json:"emailFlag"`
	}
	q := url.Values{"conditions": {"emailFlag=true"}}
	_, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodGet, URL: c.base + "/company/communicationTypes?" + q.Encode(), Header: c.header, Customer: customer}, &types)
	var re *restclient.Error
	switch {
	case errors.As(err, &re) && (re.Status == http.StatusForbidden || re.Status == http.StatusNotFound):
		et = &typeRef{Name: c.cfg.EmailType}
	case err != nil:
		return nil, err
	default:
		for _, t := range types {
			if !t.EmailFlag {
				continue
			}
			if et == nil || strings.EqualFold(t.Description, c.cfg.EmailType) {
				et = &typeRef{ID: t.ID}
			}
		}
		if et == nil {
			et = &typeRef{Name: c.cfg.EmailType}
		}
	}
	c.mu.Lock()
	c.emailType = et
	c.mu.Unlock()
	return et, nil
}

// Create creates a contact in the customer's company with its email as the
// default email communication item. It is never retried after the server
// may have processed it.
func (c *Client) Create(ctx context.Context, scope sinks.PSAScope, nc sinks.NewContact) (sinks.Contact, error) {
	id, err := companyID(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	first, last, email := strings.TrimSpace(nc.FirstName), strings.TrimSpace(nc.LastName), strings.TrimSpace(nc.Email)
	if first == "" {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: create contact: a first name is required", Integration, scope.Customer)
	}
	body := map[string]any{"firstName": first, "company": map[string]int{"id": id}}
	if last != "" {
		body["lastName"] = last
	}
	if email != "" {
		et, err := c.resolveEmailType(ctx, scope.Customer)
		if err != nil {
			return sinks.Contact{}, wrap(scope.Customer, fmt.Sprintf("create contact in company %d: list communication types", id), err)
		}
		body["communicationItems"] = []commItem{{Type: et, Value: email, DefaultFlag: true}}
	}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", "application/json")
	var out contact
	if _, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodPost, URL: c.base + "/company/contacts", Header: hdr, Body: body, Customer: scope.Customer}, &out); err != nil {
		return sinks.Contact{}, wrap(scope.Customer, fmt.Sprintf("create contact in company %d", id), err)
	}
	if out.ID <= 0 {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: create contact in company %d: %w: no id in the created contact", Integration, scope.Customer, id, restclient.ErrMalformed)
	}
	got := c.toContact(out)
	if got.Email == "" {
		got.Email = email
	}
	return got, nil
}

// wrap names the integration, the customer and the operation in err.
func wrap(customer, op string, err error) error {
	return restclient.Wrap(Integration, customer, op, err)
}

// Package m365 reads a customer's Microsoft 365 / Entra ID users over
// Microsoft Graph and classifies them for import: end users selected by group
// (transitive members), administrators holding privileged directory roles,
// guests and disabled accounts skipped with a reason, hybrid users carrying
// their on-premises immutable id.
//
// It authenticates with the MSP's multi-tenant app registration through the
// OAuth 2.0 client-credentials grant against the customer's tenant, and calls
// Graph through internal/restclient, which paces, retries and honours
// Retry-After. There is no Graph SDK underneath: only the few calls autoimport
// needs, typed.
package m365

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/sirupsen/logrus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"
)

// Default endpoints of the global Microsoft cloud. National clouds use other
// hosts (US Government: login.microsoftonline.us / graph.microsoft.us; China:
// login.chinacloudapi.cn / microsoftgraph.chinacloudapi.cn).
const (
	DefaultLoginURL = "https://login.microsoftonline.com"
	DefaultGraphURL = "https://graph.microsoft.com"
)

// MaxPageSize is the largest $top Graph accepts on user and member lists.
const MaxPageSize = 999

// loginIntegration names the token endpoint in messages.
const loginIntegration = "Microsoft identity platform"

// Config configures a Source for one customer's tenant.
type Config struct {
	// Customer is autoimport's customer id, named in every error.
	Customer string
	// TenantID is the customer's Entra tenant id (a GUID or a verified
	// domain such as contoso.onmicrosoft.com).
	TenantID string
	// ClientID and ClientSecret are the MSP's multi-tenant app registration.
	// ClientSecret is the resolved secret value, never logged.
	ClientID     string
	ClientSecret string
	// LoginURL and GraphURL are the cloud's base URLs, without a trailing
	// path (defaults DefaultLoginURL and DefaultGraphURL).
	LoginURL string
	GraphURL string
	// AllowInsecureHTTP lets LoginURL and GraphURL be http:// to a host
	// other than this machine (restclient.CheckURL); the client secret
	// and tokens then cross the network in clear. Off, only https:// and
	// http:// to loopback are accepted.
	AllowInsecureHTTP bool
	// Scope is the token scope (default GraphURL + "/.default", which is
	// https://graph.microsoft.com/.default for the global cloud).
	Scope string
	// PageSize is the $top of user and member lists and the
	// odata.maxpagesize of delta reads: 1 to 999, default 999.
	PageSize int
	// Limiter paces every Graph request; share one per app registration
	// (restclient.SharedLimiter), since Graph throttles per app and tenant
	// and per app across tenants. Nil means unlimited.
	Limiter *rate.Limiter
	// PrivilegedRoles names the directory roles (display names or role
	// template ids) whose holders are administrators. Default
	// DefaultPrivilegedRoles. Roles of the Selection are added to these.
	PrivilegedRoles []string
	// HTTPClient is used for the token endpoint (default: a client over
	// restclient, so a throttled or failing login endpoint is retried like
	// Graph, without the Graph limiter, over
	// Transport with a 30 s timeout). Either way a token answer longer
	// than restclient.MaxTokenBody is refused as malformed.
	HTTPClient *http.Client
	// Transport carries Graph requests under restclient (default
	// http.DefaultTransport); tests pass their fake server's.
	Transport http.RoundTripper
	// Timeout, MaxRetries, MinWait and MaxWait tune restclient (zero means
	// its defaults: 30 s, 5, 500 ms, 60 s).
	Timeout          time.Duration
	MaxRetries       int
	MinWait, MaxWait time.Duration
	// MaxPages bounds one paged read (default 10,000 pages), a guard against
	// a server that never stops paging.
	MaxPages int
	// MaxBody bounds one Graph response body (default
	// restclient.DefaultMaxBody) and, when smaller than
	// restclient.MaxTokenBody, a token answer; a longer body is a
	// malformed answer.
	MaxBody int64
	// Log receives debug lines per request (never tokens or bodies).
	Log logrus.FieldLogger
}

// DefaultPrivilegedRoles are the directory roles whose holders are imported
// as administrators: the role template ids of Global, Privileged Role, User,
// Exchange, SharePoint, Security and Helpdesk Administrator, and further
// administrator roles by display name.
var DefaultPrivilegedRoles = []string{
	"62e90394-69f5-4237-9190-012177145e10", // Global Administrator
	"e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
	"fe930be7-5e62-47db-91af-98c3a49a38b1", // User Administrator
	"29232cdf-9323-42fd-ade2-1d097af3e4de", // Exchange Administrator
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", // SharePoint Administrator
	"194ae4cb-b126-40b2-bd5b-6091b380977d", // Security Administrator
	"729827e3-9c14-49f7-bb1b-9608f156bbb8", // Helpdesk Administrator
	"Teams Administrator",
	"Privileged Authentication Administrator",
	"Authentication Administrator",
	"Application Administrator",
	"Cloud Application Administrator",
	"Intune Administrator",
	"Conditional Access Administrator",
}

// GlobalAdministratorTemplateID is the role template id of Global
// Administrator, the same in every tenant.
const GlobalAdministratorTemplateID = "62e90394-69f5-4237-9190-012177145e10"

// Source reads one customer's tenant. It is safe for concurrent use; its
// access token is shared and refreshed before it expires.
type Source struct {
	cfg  Config
	rest *restclient.Client

	// tokens caches the access token; newTokens makes a fresh cache when
	// Graph refuses a token before its announced expiry.
	tokMu     sync.Mutex
	tokens    oauth2.TokenSource
	newTokens func() oauth2.TokenSource
}

// New checks the configuration and makes a Source. It does not contact the
// tenant: the first read fetches the token.
func New(cfg Config) (*Source, error) {
	var missing []string
	if cfg.Customer == "" {
		missing = append(missing, "customer")
	}
	if cfg.TenantID == "" {
		missing = append(missing, "tenant id")
	}
	if cfg.ClientID == "" {
		missing = append(missing, "client id")
	}
	if cfg.ClientSecret == "" {
		missing = append(missing, "client secret")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("Microsoft 365: customer %s: config: missing %s", cfg.Customer, strings.Join(missing, ", "))
	}
	if strings.ContainsAny(cfg.TenantID, "/?#% ") {
		return nil, fmt.Errorf("Microsoft 365: customer %s: config: tenant id %q is not a tenant id or domain", cfg.Customer, cfg.TenantID)
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = DefaultLoginURL
	}
	if cfg.GraphURL == "" {
		cfg.GraphURL = DefaultGraphURL
	}
	cfg.LoginURL = strings.TrimRight(cfg.LoginURL, "/")
	// A base given with its version ("…/v1.0") is accepted as the base.
	cfg.GraphURL = strings.TrimSuffix(strings.TrimRight(cfg.GraphURL, "/"), "/v1.0")
	for _, u := range []struct{ name, url string }{{"login URL", cfg.LoginURL}, {"Graph URL", cfg.GraphURL}} {
		if err := restclient.CheckURL(u.url, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("Microsoft 365: customer %s: config: %s %w", cfg.Customer, u.name, err)
		}
	}
	if cfg.Scope == "" {
		cfg.Scope = cfg.GraphURL + "/.default"
	}
	switch {
	case cfg.PageSize == 0:
		cfg.PageSize = MaxPageSize
	case cfg.PageSize < 1 || cfg.PageSize > MaxPageSize:
		return nil, fmt.Errorf("Microsoft 365: customer %s: config: page size %d out of range 1-%d", cfg.Customer, cfg.PageSize, MaxPageSize)
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 10000
	}
	if cfg.PrivilegedRoles == nil {
		cfg.PrivilegedRoles = DefaultPrivilegedRoles
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	tokenLimit := restclient.MaxTokenBody
	if cfg.MaxBody > 0 && cfg.MaxBody < tokenLimit {
		tokenLimit = cfg.MaxBody
	}
	// The client secret goes in the token request: plain http to this
	// machine only, no redirect to another origin, the answer bounded
	// before oauth2 reads it.
	if cfg.HTTPClient == nil {
		login := restclient.New(restclient.Config{
			Integration:       loginIntegration,
			Timeout:           cfg.Timeout,
			MaxRetries:        cfg.MaxRetries,
			MinWait:           cfg.MinWait,
			MaxWait:           cfg.MaxWait,
			Transport:         cfg.Transport,
			AllowInsecureHTTP: cfg.AllowInsecureHTTP,
			Log:               cfg.Log,
			MaxBody:           tokenLimit,
		})
		cfg.HTTPClient = &http.Client{Transport: tokenTransport{login}, CheckRedirect: restclient.RefuseCrossOriginRedirects(loginIntegration)}
	} else {
		cfg.HTTPClient = restclient.TokenClient(loginIntegration, cfg.HTTPClient.Transport, tokenLimit, cfg.HTTPClient.Timeout, cfg.AllowInsecureHTTP)
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		cfg.Log = l
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.LoginURL + "/" + cfg.TenantID + "/oauth2/v2.0/token",
		Scopes:       []string{cfg.Scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	// The token source outlives any one call, so it gets its own context
	// carrying only the HTTP client; the client's timeout bounds a fetch.
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, cfg.HTTPClient)
	newTokens := func() oauth2.TokenSource {
		return oauth2.ReuseTokenSourceWithExpiry(nil, cc.TokenSource(tctx), 5*time.Minute)
	}
	s := &Source{
		cfg:       cfg,
		tokens:    newTokens(),
		newTokens: newTokens,
		rest: restclient.New(restclient.Config{
			Integration: "Graph",
			Timeout:     cfg.Timeout,
			MaxRetries:  cfg.MaxRetries,
			MinWait:     cfg.MinWait,
			MaxWait:     cfg.MaxWait,
			Limiter:     cfg.Limiter,
			Transport:   cfg.Transport,
			Log:         cfg.Log,
			MaxBody:     cfg.MaxBody,
			// Graph's own answers, nextLinks included, are held to the
			// same rule as the configured URL.
			AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		}),
	}
	return s, nil
}

// tokenSource returns the current token cache.
func (s *Source) tokenSource() oauth2.TokenSource {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	return s.tokens
}

// renewTokens drops the cached token unless another caller already did.
func (s *Source) renewTokens(old oauth2.TokenSource) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if s.tokens == old {
		s.tokens = s.newTokens()
	}
}

// Stats returns the Graph request counters (token requests excluded).
func (s *Source) Stats() restclient.Stats { return s.rest.Stats() }

// Error is a failed read from a customer's tenant. It names the customer,
// the tenant and the operation, and says what to fix when that is known.
type Error struct {
	Customer string
	Tenant   string
	// Op is what was being done, e.g. "list users page 3".
	Op string
	// Code is Graph's error code (Authorization_RequestDenied, ...) or the
	// token endpoint's AADSTS code (AADSTS7000215, ...), when there is one.
	Code string
	// Fix says what a person can do, when known.
	Fix string
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("Microsoft 365: customer %s: tenant %s: %s: %v", e.Customer, e.Tenant, e.Op, e.Err)
	if e.Fix != "" {
		msg += " — " + e.Fix
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrTokenRefused marks a token request the tenant refused: wrong or
// expired secret, app not consented in the tenant, unknown tenant.
var ErrTokenRefused = errors.New("token refused")

var aadstsCode = regexp.MustCompile(`AADSTS(\d+)`)

// tokenError turns a token failure into an *Error saying what to fix.
func (s *Source) tokenError(err error) error {
	e := &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: "get access token"}
	var status int
	var code, fullDesc string
	var re *oauth2.RetrieveError
	var rest *restclient.Error
	switch {
	case errors.Is(err, restclient.ErrMalformed):
		// Not an OAuth answer at all (too long, cut off).
		e.Err = err
		if errors.As(err, &rest) {
			e.Err = rest
		}
		e.Fix = "the token endpoint's answer is not an OAuth token: check the login URL " + s.cfg.LoginURL
		return e
	case errors.As(err, &re):
		code, fullDesc = re.ErrorCode, re.ErrorDescription
		if re.Response != nil {
			status = re.Response.StatusCode
		}
	case errors.As(err, &rest) && rest.Status != 0:
		status, code, fullDesc = rest.Status, rest.Code, rest.Message
	default:
		e.Err = err
		var ue *url.Error
		if errors.As(err, &ue) {
			e.Fix = "check the login URL and network access to " + s.cfg.LoginURL
		} else {
			e.Fix = "the token endpoint's answer is not an OAuth token: check the login URL " + s.cfg.LoginURL
		}
		return e
	}
	desc := fullDesc
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i]
	}
	if desc == "" {
		desc = code
	}
	if desc == "" {
		desc = "no error description"
	}
	if m := aadstsCode.FindStringSubmatch(fullDesc); m != nil {
		e.Code = "AADSTS" + m[1]
	}
	e.Err = fmt.Errorf("%w: HTTP %d %s: %s", ErrTokenRefused, status, code, desc)
	switch e.Code {
	case "AADSTS7000215":
		e.Fix = "the client secret is wrong: set the current secret of the MSP's app registration (client id " + s.cfg.ClientID + ")"
	case "AADSTS7000222":
		e.Fix = "the client secret has expired: create a new secret for the app registration and update autoimport"
	case "AADSTS700016":
		e.Fix = "the app registration is not present in this tenant: a Global Administrator of the customer must grant admin consent to the MSP's app"
	case "AADSTS90002", "AADSTS90023":
		e.Fix = "the tenant was not found: check the customer's tenant id (or the login URL for a national cloud)"
	case "AADSTS70011", "AADSTS1002012":
		e.Fix = "the scope was refused: it must be the Graph resource followed by /.default"
	case "AADSTS65001":
		e.Fix = "admin consent is missing in this tenant: a Global Administrator of the customer must consent to the app's permissions"
	default:
		if code == "invalid_client" || status == http.StatusUnauthorized {
			e.Fix = "check the app registration's client id and secret"
		}
	}
	return e
}

// tokenTransport sends token requests through restclient: 429, 5xx and
// network failures are retried with backoff and Retry-After (a token
// request creates nothing, so it is safe to repeat). Other failures come
// back as *restclient.Error carrying the endpoint's error and description;
// the form, which holds the client secret, never appears in an error.
type tokenTransport struct{ c *restclient.Client }

func (t tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	idempotent := true
	r := restclient.Request{
		Method: req.Method, URL: req.URL.String(), Header: req.Header.Clone(),
		Body: body, Idempotent: &idempotent, Secret: true,
	}
	resp, err := t.c.Do(req.Context(), r)
	if err != nil {
		var ue *url.Error
		if errors.Is(err, restclient.ErrCrossOriginRedirect) && errors.As(err, &ue) {
			// A refused redirect is no answer of the token endpoint: it
			// goes back as the transport's error, as from any client.
			return nil, ue.Err
		}
		return nil, err
	}
	// oauth2 reads the answer itself and would cut a long one short
	// silently: read it here, bounded, and hand it on whole.
	b, err := t.c.ReadBody(resp, r, nil)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// graphError wraps a Graph call failure with the customer, tenant and what
// to fix for the common codes.
func (s *Source) graphError(op string, err error) error {
	e := &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Err: err}
	var te *Error
	if errors.As(err, &te) {
		return err // already wrapped (a token failure)
	}
	var re *restclient.Error
	if errors.As(err, &re) {
		e.Code = re.Code
		switch {
		case re.Code == "Authorization_RequestDenied" || re.Status == http.StatusForbidden:
			e.Fix = "grant the app the application permissions User.Read.All, GroupMember.Read.All and RoleManagement.Read.Directory (or Directory.Read.All) with admin consent in this tenant"
		case re.Code == "InvalidAuthenticationToken" || re.Status == http.StatusUnauthorized:
			e.Fix = "the access token was refused: check that the token's tenant and the Graph URL belong to the same cloud"
		}
	}
	return e
}

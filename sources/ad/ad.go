// Package ad reads a customer's user accounts from on-prem Active Directory
// over LDAP (LDAPS or StartTLS) and classifies them as end users or
// administrators for autoimport.
//
// Every read is a streamed, paged search (simple paged results control), so
// memory stays proportional to one page however large the directory is.
// Group membership is resolved server-side with LDAP_MATCHING_RULE_IN_CHAIN
// plus the primaryGroupID of each group; privileged groups are found by SID,
// never by name.
//
// Read and CopyAccounts (read.go) read incrementally instead: a local copy
// of the domain kept up to date with DirSync or uSNChanged polling, from
// which the same accounts are computed.
package ad

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sources"
)

// Defaults applied by New when a Config leaves a field zero.
const (
	DefaultPageSize      = 1000
	DefaultDialTimeout   = 10 * time.Second
	DefaultBindTimeout   = 15 * time.Second
	DefaultSearchTimeout = 2 * time.Minute
	// MaxPageSize is the largest page a DC hands out under the default
	// query policy; larger requests are cut down by the server anyway.
	MaxPageSize = 1000
)

// Config is one customer's Active Directory connection.
type Config struct {
	// Customer names the customer in errors.
	Customer string
	// URL is ldaps://host[:636] or ldap://host[:389]. Connect by DNS name:
	// DC certificates rarely carry an IP SAN.
	URL string
	// CAFile is a PEM bundle with the CA(s) that signed the DC certificate.
	CAFile string
	// CAPEM is the same bundle given inline; used together with CAFile.
	CAPEM []byte
	// ServerName overrides the TLS server name checked against the
	// certificate (default: the URL's host).
	ServerName string
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool
	// AllowPlaintext permits ldap:// without StartTLS. The bind password then
	// travels in clear: for tests and labs only.
	AllowPlaintext bool
	// InsecureSkipVerify disables certificate verification. For tests only.
	InsecureSkipVerify bool
	// BindDN is the account to bind as: a DN, a UPN (svc@corp.example) or
	// DOMAIN\user.
	BindDN string
	// BindPassword is the resolved password of BindDN; never logged.
	BindPassword string
	// BaseDN is the domain's naming context (DC=corp,DC=example). Empty: the
	// rootDSE's defaultNamingContext.
	BaseDN string
	// Domain is the NetBIOS domain name. Empty: read from the crossRef of
	// the domain partition, else derived from the first DC= component.
	Domain string
	// PageSize is the paged-search page size (default and maximum 1000).
	PageSize int
	// DialTimeout bounds TCP connect plus TLS handshake.
	DialTimeout time.Duration
	// BindTimeout bounds StartTLS and the bind.
	BindTimeout time.Duration
	// SearchTimeout bounds each page of a search; in-chain searches on big
	// forests can take seconds.
	SearchTimeout time.Duration
}

// Source reads accounts from one customer's Active Directory and changes
// its administrators' passwords. Each read dials, binds, reads and
// closes; the exchanges of password changes reuse the few connections
// kept idle between them (see idleConns). A Source is safe for
// concurrent use.
type Source struct {
	cfg    Config
	url    *url.URL
	tlsCfg *tls.Config
	idle   idleConns
}

// New validates cfg, fills in defaults and returns a Source. It does not
// connect.
func New(cfg Config) (*Source, error) {
	fail := func(format string, a ...any) (*Source, error) {
		return nil, fmt.Errorf("AD: customer %s: config: %s", cfg.Customer, fmt.Sprintf(format, a...))
	}
	if cfg.Customer == "" {
		return fail("customer name is empty")
	}
	if cfg.URL == "" {
		return fail("url is empty: set ldaps://dc.example:636 or ldap://dc.example:389 with start_tls")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return fail("url %q is not ldaps://host[:port] or ldap://host[:port]", cfg.URL)
	}
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		if cfg.StartTLS {
			return fail("start_tls makes no sense with ldaps:// (TLS from the first byte): drop one")
		}
	case "ldap":
		if !cfg.StartTLS && !cfg.AllowPlaintext {
			return fail("ldap:// without start_tls would send the bind password in clear: use ldaps://, set start_tls, or (labs only) allow_plaintext")
		}
	default:
		return fail("url scheme %q: want ldaps or ldap", u.Scheme)
	}
	if cfg.BindDN == "" {
		return fail("bind_dn is empty: a read-only account (DN, UPN or DOMAIN\\user) is needed")
	}
	if cfg.BindPassword == "" {
		return fail("bind_password is empty: an empty password would be an anonymous bind")
	}
	if cfg.PageSize < 0 {
		return fail("page_size %d is negative", cfg.PageSize)
	}
	if cfg.PageSize == 0 || cfg.PageSize > MaxPageSize {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = DefaultBindTimeout
	}
	if cfg.SearchTimeout <= 0 {
		cfg.SearchTimeout = DefaultSearchTimeout
	}
	s := &Source{cfg: cfg, url: u}
	if strings.EqualFold(u.Scheme, "ldaps") || cfg.StartTLS {
		s.tlsCfg, err = tlsConfig(cfg, u)
		if err != nil {
			return fail("%v", err)
		}
	}
	return s, nil
}

// tlsSessions is how many TLS sessions a source keeps for resumption: one
// per DC it dials (a source dials one; a few spare).
const tlsSessions = 4

func tlsConfig(cfg Config, u *url.URL) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         u.Hostname(),
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // explicit test-only option
		// A source dials its DC for every read and every step of a
		// password change: resuming the first connection's TLS session
		// spares each later one the DC's certificate, its signature and
		// its verification (the key exchange, and so forward secrecy,
		// stays). The cache belongs to this source: its clones share it.
		ClientSessionCache: tls.NewLRUClientSessionCache(tlsSessions),
	}
	if cfg.ServerName != "" {
		tc.ServerName = cfg.ServerName
	}
	if cfg.CAFile == "" && len(cfg.CAPEM) == 0 {
		return tc, nil // system roots
	}
	pool := x509.NewCertPool()
	if cfg.CAFile != "" {
		// Opened once and checked as the file it is: /dev/zero or a FIFO
		// is refused at once instead of filling memory or blocking.
		pem, err := secret.ReadFile(cfg.CAFile, secret.MaxFileSize)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if len(cfg.CAPEM) > 0 && !pool.AppendCertsFromPEM(cfg.CAPEM) {
		return nil, errors.New("ca_pem holds no PEM certificate")
	}
	tc.RootCAs = pool
	return tc, nil
}

// Compile-time check that *Source is a sources.Source.
var _ sources.Source = (*Source)(nil)

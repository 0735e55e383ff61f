// Package connect turns a customer's tenant configuration into ready
// clients for the import job: its directories, its vault and PSA, and the
// mailer. Secret references are resolved here, when a run needs them, so a
// missing one fails that customer's run only and names the reference.
package connect

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Connector builds clients from the tenant configuration.
type Connector struct {
	// Key opens sealed secrets and seals Technician Vault entries.
	Key *secret.Key
	// TechVault stores Technician Vault entries (the database).
	TechVault techvault.Store
	Log       logrus.FieldLogger
	// Transport, when set, carries every HTTP client's requests (tests
	// and the sandbox point it at their fakes' TLS roots).
	Transport http.RoundTripper
	// InsecureLDAP skips LDAP certificate checks (the sandbox's fake DC).
	InsecureLDAP bool
	// SMTPRootCAs verifies the SMTP relay's certificate (system roots when nil).
	SMTPRootCAs *x509.CertPool
	// SecretsDir is AUTOIMPORT_SECRETS_DIR: the only directory file:
	// references and welcome-email templates are read from (none when
	// empty).
	SecretsDir string
	// Withheld are values no secret or template may hold besides the key
	// in any encoding: the password of AUTOIMPORT_DATABASE_URL.
	Withheld []string
}

var _ jobs.Connector = (*Connector)(nil)

// secrets resolves references and reads templates as this process may:
// inside SecretsDir only, never a value that holds the key or a withheld
// value.
func (c *Connector) secrets() *secret.Resolver {
	return &secret.Resolver{Key: c.Key, Dir: c.SecretsDir, Withheld: c.Withheld}
}

// resolve opens a secret reference, naming the integration on failure.
func (c *Connector) resolve(what string, r secret.Ref) (string, error) {
	if r.IsZero() {
		return "", nil
	}
	v, err := c.secrets().Resolve(r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

func limiter(integration, credential, spec string, def rate.Limit, burst int) (*rate.Limiter, error) {
	r := def
	if spec != "" {
		var err error
		if r, err = restclient.ParseRate(spec); err != nil {
			return nil, fmt.Errorf("%s rate_limit: %w", integration, err)
		}
	}
	return restclient.SharedLimiter(integration, credential, r, burst), nil
}

// Connect makes one customer's clients.
func (c *Connector) Connect(ctx context.Context, t *jobs.Tenant, cu jobs.Customer) (*jobs.Connections, error) {
	in := t.Integrations
	conn := &jobs.Connections{Vaults: map[jobs.AccountType]sinks.Vault{}, VaultScope: map[jobs.AccountType]sinks.VaultScope{},
		Directories: map[string]jobs.PasswordDirectory{}}
	log := c.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		log = l
	}
	log = log.WithField("customer", cu.ID)

	if s := cu.Sources.AD; s != nil {
		pw, err := c.resolve("Active Directory bind_password", s.BindPassword)
		if err != nil {
			return nil, err
		}
		src, err := ad.New(ad.Config{Customer: cu.ID, URL: s.URL, CAFile: s.CAFile, StartTLS: s.StartTLS, AllowPlaintext: s.AllowPlaintext,
			InsecureSkipVerify: c.InsecureLDAP, BindDN: s.BindDN, BindPassword: pw, BaseDN: s.BaseDN, Domain: s.Domain})
		if err != nil {
			return nil, fmt.Errorf("Active Directory: %w", err)
		}
		conn.AD = adSource{src}
		conn.Directories["ad"] = adDirectory{src: src, bound: &bindAccount{}}
	}
	if s := cu.Sources.M365; s != nil && in.M365 != nil {
		id, err := c.resolve("Microsoft 365 client_id", in.M365.ClientID)
		if err != nil {
			return nil, err
		}
		sec, err := c.resolve("Microsoft 365 client_secret", in.M365.ClientSecret)
		if err != nil {
			return nil, err
		}
		// Graph throttles per app and tenant (3,500 resource units per 10 s
		// for a small tenant, up to 5 units a call): one limiter per
		// tenant of the app registration. The per-app ceiling across
		// tenants is far above what one process sends.
		lim, err := limiter("Microsoft Graph", id+"/"+s.TenantID, in.M365.RateLimit, rate.Limit(60), 20)
		if err != nil {
			return nil, err
		}
		src, err := m365.New(m365.Config{Customer: cu.ID, TenantID: s.TenantID, ClientID: id, ClientSecret: sec, LoginURL: in.M365.LoginURL, GraphURL: in.M365.GraphURL,
			AllowInsecureHTTP: in.M365.AllowInsecureHTTP, Limiter: lim, Transport: c.Transport, HTTPClient: c.httpClient(), Log: log})
		if err != nil {
			return nil, fmt.Errorf("Microsoft 365: %w", err)
		}
		conn.M365 = src
		conn.Directories["m365"] = m365Directory{src}
	}

	// Vaults: end users go to the customer's documentation vault (IT Glue
	// before Hudu), else the Technician Vault; administrators go to the
	// Technician Vault when it is enabled.
	var docVault sinks.Vault
	var docScope sinks.VaultScope
	var err error
	if docVault, docScope, err = c.documentationVault(in, cu, log); err != nil {
		return nil, err
	}
	var tech sinks.Vault
	if in.TechVaultEnabled() {
		if c.TechVault == nil {
			return nil, fmt.Errorf("Technician Vault: no store to keep its entries in")
		}
		if c.Key == nil {
			return nil, fmt.Errorf("Technician Vault: AUTOIMPORT_SECRET_KEY is not set, and entries are sealed with it")
		}
		tech = techvault.New(c.TechVault, c.Key)
	}
	techScope := sinks.VaultScope{Customer: cu.ID, Container: cu.ID}
	switch {
	case docVault != nil:
		conn.Vaults[jobs.EndUser], conn.VaultScope[jobs.EndUser] = docVault, docScope
	case tech != nil:
		conn.Vaults[jobs.EndUser], conn.VaultScope[jobs.EndUser] = tech, techScope
	}
	switch {
	case tech != nil:
		conn.Vaults[jobs.Admin], conn.VaultScope[jobs.Admin] = tech, techScope
	case docVault != nil:
		conn.Vaults[jobs.Admin], conn.VaultScope[jobs.Admin] = docVault, docScope
	}

	if cu.PSA.CompanyID != "" {
		psa, err := c.psa(in, cu, log)
		if err != nil {
			return nil, err
		}
		if psa != nil {
			conn.PSA, conn.PSAScope = psa, sinks.PSAScope{Customer: cu.ID, CompanyID: cu.PSA.CompanyID}
		}
	}
	if in.SMTP != nil {
		m, err := c.mailer(in.SMTP, log)
		if err != nil {
			return nil, err
		}
		conn.Mailer, conn.EnrollmentURL = m, in.SMTP.EnrollmentURL
	}
	return conn, nil
}

func (c *Connector) httpClient() *http.Client {
	if c.Transport == nil {
		return nil
	}
	return &http.Client{Transport: c.Transport}
}

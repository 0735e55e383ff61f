package connect

import (
	"fmt"
	"github.com/msp-tools/autoimport/internal/loopback"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/email"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/sirupsen/logrus"
)

// documentationVault is the customer's IT Glue organization, else its Hudu
// company; nil when it is mapped to neither.
func (c *Connector) documentationVault(in jobs.Integrations, cu jobs.Customer, log logrus.FieldLogger) (sinks.Vault, sinks.VaultScope, error) {
	switch {
	case in.ITGlue != nil && cu.Vault.ITGlueOrganizationID != "":
		key, err := c.resolve("IT Glue api_key", in.ITGlue.APIKey)
		if err != nil {
			return nil, sinks.VaultScope{}, err
		}
		v, err := itglue.New(itglue.Config{URL: in.ITGlue.URL, AllowInsecureHTTP: in.ITGlue.AllowInsecureHTTP, APIKey: key, Rate: in.ITGlue.RateLimit, Transport: c.Transport, Log: log})
		if err != nil {
			return nil, sinks.VaultScope{}, fmt.Errorf("IT Glue: %w", err)
		}
		return v, sinks.VaultScope{Customer: cu.ID, Container: cu.Vault.ITGlueOrganizationID}, nil
	case in.Hudu != nil && cu.Vault.HuduCompanyID != "":
		key, err := c.resolve("Hudu api_key", in.Hudu.APIKey)
		if err != nil {
			return nil, sinks.VaultScope{}, err
		}
		v, err := hudu.New(hudu.Config{URL: in.Hudu.URL, AllowInsecureHTTP: in.Hudu.AllowInsecureHTTP, APIKey: key, Rate: in.Hudu.RateLimit, Transport: c.Transport, Log: log})
		if err != nil {
			return nil, sinks.VaultScope{}, fmt.Errorf("Hudu: %w", err)
		}
		return v, sinks.VaultScope{Customer: cu.ID, Container: cu.Vault.HuduCompanyID}, nil
	}
	return nil, sinks.VaultScope{}, nil
}

// psa is the client of the PSA the customer's company is in.
func (c *Connector) psa(in jobs.Integrations, cu jobs.Customer, log logrus.FieldLogger) (sinks.PSA, error) {
	switch in.PSAKindOf(cu) {
	case "connectwise":
		cw := in.ConnectWise
		pub, err := c.resolve("ConnectWise public_key", cw.PublicKey)
		if err != nil {
			return nil, err
		}
		priv, err := c.resolve("ConnectWise private_key", cw.PrivateKey)
		if err != nil {
			return nil, err
		}
		id, err := c.resolve("ConnectWise client_id", cw.ClientID)
		if err != nil {
			return nil, err
		}
		p, err := connectwise.New(connectwise.Config{URL: cw.URL, AllowInsecureHTTP: cw.AllowInsecureHTTP, CompanyID: cw.CompanyID, PublicKey: pub, PrivateKey: priv, ClientID: id, Rate: cw.RateLimit, Transport: c.Transport, Log: log})
		if err != nil {
			return nil, fmt.Errorf("ConnectWise PSA: %w", err)
		}
		return p, nil
	case "autotask":
		at := in.Autotask
		user, err := c.resolve("Autotask username", at.Username)
		if err != nil {
			return nil, err
		}
		sec, err := c.resolve("Autotask secret", at.Secret)
		if err != nil {
			return nil, err
		}
		code, err := c.resolve("Autotask integration_code", at.IntegrationCode)
		if err != nil {
			return nil, err
		}
		p, err := autotask.New(autotask.Config{ZoneURL: at.URL, AllowInsecureHTTP: at.AllowInsecureHTTP, UserName: user, Secret: sec, IntegrationCode: code, Rate: at.RateLimit, Transport: c.Transport, Log: log})
		if err != nil {
			return nil, fmt.Errorf("Autotask: %w", err)
		}
		return p, nil
	case "halopsa":
		h := in.HaloPSA
		id, err := c.resolve("HaloPSA client_id", h.ClientID)
		if err != nil {
			return nil, err
		}
		sec, err := c.resolve("HaloPSA client_secret", h.ClientSecret)
		if err != nil {
			return nil, err
		}
		p, err := halopsa.New(halopsa.Config{URL: h.URL, AllowInsecureHTTP: h.AllowInsecureHTTP, Tenant: h.Tenant, ClientID: id, ClientSecret: sec, Rate: h.RateLimit, Transport: c.Transport, Log: log})
		if err != nil {
			return nil, fmt.Errorf("HaloPSA: %w", err)
		}
		return p, nil
	}
	return nil, nil
}

// mailer is the SMTP relay. Its errors answer errors.Is for the
// sinks.Mailer contract themselves (sinks.ErrUnconfirmed, sinks.ErrNotSent,
// sinks.ErrRelayUnavailable), so it is used as it is.
func (c *Connector) mailer(s *jobs.SMTP, log logrus.FieldLogger) (sinks.Mailer, error) {
	user, err := c.resolve("SMTP username", s.Username)
	if err != nil {
		return nil, err
	}
	pw, err := c.resolve("SMTP password", s.Password)
	if err != nil {
		return nil, err
	}
	// Read here, once, from the secrets directory and checked as a run
	// reads them: a tenant applied by an older version, or a file
	// replaced since, must not mail a system file or autoimport's own
	// secrets.
	var templates [2]email.Template
	for i, path := range []string{s.TextTemplate, s.HTMLTemplate} {
		if path == "" {
			continue
		}
		text, err := c.secrets().ReadTemplate(path)
		if err != nil {
			return nil, fmt.Errorf("SMTP: template: %w", err)
		}
		templates[i] = email.Template{Name: path, Text: text}
	}
	// The name is a first check; the mailer dials a relay without TLS at
	// a loopback address only, whatever the name resolves to.
	if s.TLS == email.TLSNone && !loopback.IsLoopbackName(s.Host) {
		return nil, fmt.Errorf("SMTP: tls none is allowed only to a relay on this machine, not %s: use starttls or implicit (autoimport apply refuses it too)", s.Host)
	}
	m, err := email.New(email.Config{Host: s.Host, Port: s.Port, Username: user, Password: pw, From: s.From, TLS: s.TLS, AllowNoTLS: s.TLS == email.TLSNone,
		RootCAs: c.SMTPRootCAs, TextTemplate: templates[0], HTMLTemplate: templates[1], Log: log})
	if err != nil {
		return nil, fmt.Errorf("SMTP: %w", err)
	}
	return m, nil
}

// Package jobs holds autoimport's business logic: the tenant model, the
// Automatic Import Options and Policies (resolution, availability, rules),
// the audit chain, and the import job and its runner. It speaks to storage
// only through the Store interface it defines.
package jobs

import (
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sources"
)

// AccountType is end-user or admin.
type AccountType = sources.AccountType

// The account types.
const (
	EndUser = sources.EndUser
	Admin   = sources.Admin
)

// AccountTypes lists the account types in display order.
var AccountTypes = []AccountType{EndUser, Admin}

// ParseAccountType reads "end-user" or "admin".
func ParseAccountType(s string) (AccountType, error) {
	switch s {
	case string(EndUser), "enduser", "end_user":
		return EndUser, nil
	case string(Admin), "administrator":
		return Admin, nil
	}
	return "", &UsageError{Msg: "unknown account type " + quote(s) + ": want end-user or admin"}
}

// Tenant is the whole configuration of one MSP: its integrations, policies
// and customers.
type Tenant struct {
	Integrations Integrations
	Policies     []Policy
	Customers    []Customer
}

// Policy returns the policy with the given name and type.
func (t *Tenant) Policy(typ AccountType, name string) (Policy, bool) {
	for _, p := range t.Policies {
		if p.Type == typ && p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

// DefaultPolicy returns the type's default policy, if any.
func (t *Tenant) DefaultPolicy(typ AccountType) (Policy, bool) {
	for _, p := range t.Policies {
		if p.Type == typ && p.Default {
			return p, true
		}
	}
	return Policy{}, false
}

// Customer returns the customer with the given id.
func (t *Tenant) Customer(id string) (Customer, bool) {
	for _, c := range t.Customers {
		if c.ID == id {
			return c, true
		}
	}
	return Customer{}, false
}

// Integrations are the MSP-level integrations, at most one of each kind.
type Integrations struct {
	ITGlue      *ITGlue      `yaml:"itglue,omitempty" json:"itglue,omitempty"`
	Hudu        *Hudu        `yaml:"hudu,omitempty" json:"hudu,omitempty"`
	TechVault   *TechVault   `yaml:"techvault,omitempty" json:"techvault,omitempty"`
	ConnectWise *ConnectWise `yaml:"connectwise,omitempty" json:"connectwise,omitempty"`
	Autotask    *Autotask    `yaml:"autotask,omitempty" json:"autotask,omitempty"`
	HaloPSA     *HaloPSA     `yaml:"halopsa,omitempty" json:"halopsa,omitempty"`
	M365        *M365App     `yaml:"m365,omitempty" json:"m365,omitempty"`
	SMTP        *SMTP        `yaml:"smtp,omitempty" json:"smtp,omitempty"`
}

// Kinds names the integration kinds in the order they are shown.
var IntegrationKinds = []string{"itglue", "hudu", "techvault", "connectwise", "autotask", "halopsa", "m365", "smtp"}

// ITGlue is the MSP's IT Glue account.
type ITGlue struct {
	URL       string     `yaml:"url" json:"url"`
	APIKey    secret.Ref `yaml:"api_key" json:"api_key"`
	RateLimit string     `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets url be http:// to a host that is not this
	// machine; credentials then cross the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// Hudu is the MSP's Hudu instance.
type Hudu struct {
	URL       string     `yaml:"url" json:"url"`
	APIKey    secret.Ref `yaml:"api_key" json:"api_key"`
	RateLimit string     `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets url be http:// to a host that is not this
	// machine; credentials then cross the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// TechVault is the built-in Technician Vault.
type TechVault struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
}

// ConnectWise is the MSP's ConnectWise PSA (Manage).
type ConnectWise struct {
	URL        string     `yaml:"url" json:"url"`
	CompanyID  string     `yaml:"company_id" json:"company_id"`
	PublicKey  secret.Ref `yaml:"public_key" json:"public_key"`
	PrivateKey secret.Ref `yaml:"private_key" json:"private_key"`
	ClientID   secret.Ref `yaml:"client_id" json:"client_id"`
	RateLimit  string     `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets url be http:// to a host that is not this
	// machine; credentials then cross the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// Autotask is the MSP's Autotask PSA.
type Autotask struct {
	URL             string     `yaml:"url,omitempty" json:"url,omitempty"`
	Username        secret.Ref `yaml:"username" json:"username"`
	Secret          secret.Ref `yaml:"secret" json:"secret"`
	IntegrationCode secret.Ref `yaml:"integration_code" json:"integration_code"`
	RateLimit       string     `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets url be http:// to a host that is not this
	// machine; credentials then cross the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// HaloPSA is the MSP's HaloPSA instance.
type HaloPSA struct {
	URL          string     `yaml:"url" json:"url"`
	Tenant       string     `yaml:"tenant,omitempty" json:"tenant,omitempty"`
	ClientID     secret.Ref `yaml:"client_id" json:"client_id"`
	ClientSecret secret.Ref `yaml:"client_secret" json:"client_secret"`
	RateLimit    string     `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets url be http:// to a host that is not this
	// machine; credentials then cross the network in clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// M365App is the MSP's multi-tenant app registration.
type M365App struct {
	ClientID     secret.Ref `yaml:"client_id" json:"client_id"`
	ClientSecret secret.Ref `yaml:"client_secret" json:"client_secret"`
	LoginURL     string     `yaml:"login_url,omitempty" json:"login_url,omitempty"`
	GraphURL     string     `yaml:"graph_url,omitempty" json:"graph_url,omitempty"`
	// RateLimit paces Graph per customer tenant (Graph throttles per app
	// and tenant); default 60/s.
	RateLimit string `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// AllowInsecureHTTP lets login_url and graph_url be http:// to a host
	// that is not this machine.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty" json:"allow_insecure_http,omitempty"`
}

// SMTP is the relay welcome emails go through.
type SMTP struct {
	Host          string     `yaml:"host" json:"host"`
	Port          int        `yaml:"port" json:"port"`
	TLS           string     `yaml:"tls,omitempty" json:"tls,omitempty"` // starttls (587), implicit (465), none
	Username      secret.Ref `yaml:"username,omitempty" json:"username,omitempty"`
	Password      secret.Ref `yaml:"password,omitempty" json:"password,omitempty"`
	From          string     `yaml:"from" json:"from"`
	EnrollmentURL string     `yaml:"enrollment_url" json:"enrollment_url"`
	TextTemplate  string     `yaml:"text_template,omitempty" json:"text_template,omitempty"`
	HTMLTemplate  string     `yaml:"html_template,omitempty" json:"html_template,omitempty"`
}

// PSAKinds lists the configured PSAs ("connectwise", "autotask",
// "halopsa").
func (in Integrations) PSAKinds() []string {
	var out []string
	if in.ConnectWise != nil {
		out = append(out, "connectwise")
	}
	if in.Autotask != nil {
		out = append(out, "autotask")
	}
	if in.HaloPSA != nil {
		out = append(out, "halopsa")
	}
	return out
}

// PSAKindOf returns the PSA a customer's contacts live in: the one its
// mapping names, or the only one configured; "" when there is none.
func (in Integrations) PSAKindOf(c Customer) string {
	kinds := in.PSAKinds()
	if c.PSA.Kind != "" {
		for _, k := range kinds {
			if k == c.PSA.Kind {
				return k
			}
		}
		return ""
	}
	if len(kinds) == 1 {
		return kinds[0]
	}
	return ""
}

// TechVaultEnabled reports whether the Technician Vault is on.
func (in Integrations) TechVaultEnabled() bool { return in.TechVault != nil && in.TechVault.Enabled }

// Customer is one of the MSP's clients.
type Customer struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	// Policies assigns a policy per account type by name; "none" takes the
	// customer out of policies for that type (its own options apply);
	// absent means the type's default policy.
	Policies map[AccountType]string `yaml:"policies,omitempty" json:"policies,omitempty"`
	// Options are customer-specific options, per account type; only used
	// for a type the customer follows no policy for. Numbers are the
	// numeric ones (administrators' rotation_days, rotation_length). Both
	// are written as one options mapping per type, {admin: {rotation: true,
	// rotation_days: 7}}: see OptionSet and Customer.MarshalYAML.
	Options map[AccountType]Values  `yaml:"-" json:"-"`
	Numbers map[AccountType]Numbers `yaml:"-" json:"-"`
	Vault   VaultMapping            `yaml:"vault,omitempty" json:"vault,omitempty"`
	PSA     PSAMapping              `yaml:"psa,omitempty" json:"psa,omitempty"`
	Sources CustomerSources         `yaml:"sources,omitempty" json:"sources,omitempty"`
	// Surge overrides the global surge guard for this customer.
	Surge *SurgeThreshold `yaml:"surge,omitempty" json:"surge,omitempty"`
}

// NoPolicy is the policy assignment that takes a customer out of policies.
const NoPolicy = "none"

// VaultMapping maps a customer to its place in the vaults.
type VaultMapping struct {
	ITGlueOrganizationID string `yaml:"itglue_organization_id,omitempty" json:"itglue_organization_id,omitempty"`
	HuduCompanyID        string `yaml:"hudu_company_id,omitempty" json:"hudu_company_id,omitempty"`
}

// PSAMapping maps a customer to its company in one of the MSP's PSAs.
type PSAMapping struct {
	// Kind is connectwise, autotask or halopsa; it may be left out when
	// the MSP has one PSA only.
	Kind      string `yaml:"kind,omitempty" json:"kind,omitempty"`
	CompanyID string `yaml:"company_id,omitempty" json:"company_id,omitempty"`
}

// CustomerSources are the customer's directories.
type CustomerSources struct {
	AD   *ADSource   `yaml:"ad,omitempty" json:"ad,omitempty"`
	M365 *M365Tenant `yaml:"m365,omitempty" json:"m365,omitempty"`
}

// ADSource is a customer's on-prem Active Directory.
type ADSource struct {
	URL             string     `yaml:"url" json:"url"`
	CAFile          string     `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	StartTLS        bool       `yaml:"start_tls,omitempty" json:"start_tls,omitempty"`
	AllowPlaintext  bool       `yaml:"allow_plaintext,omitempty" json:"allow_plaintext,omitempty"`
	BindDN          string     `yaml:"bind_dn" json:"bind_dn"`
	BindPassword    secret.Ref `yaml:"bind_password" json:"bind_password"`
	BaseDN          string     `yaml:"base_dn" json:"base_dn"`
	Domain          string     `yaml:"domain,omitempty" json:"domain,omitempty"` // NetBIOS name; derived when empty
	IncludeDisabled bool       `yaml:"include_disabled,omitempty" json:"include_disabled,omitempty"`
	Select          ADSelect   `yaml:"select" json:"select"`
}

// ADSelect is the AD import selection.
type ADSelect struct {
	Groups  []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	OUs     []string `yaml:"ous,omitempty" json:"ous,omitempty"`
	Builtin []string `yaml:"builtin,omitempty" json:"builtin,omitempty"`
}

// M365Tenant is a customer's Microsoft 365 tenant.
type M365Tenant struct {
	TenantID        string     `yaml:"tenant_id" json:"tenant_id"`
	IncludeDisabled bool       `yaml:"include_disabled,omitempty" json:"include_disabled,omitempty"`
	Select          M365Select `yaml:"select" json:"select"`
}

// M365Select is the M365 import selection.
type M365Select struct {
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	Roles  []string `yaml:"roles,omitempty" json:"roles,omitempty"`
}

// SurgeThreshold holds a customer when a run would import more than Max
// new accounts and more than Percent of what its ledger holds.
type SurgeThreshold struct {
	Max     int     `yaml:"max" json:"max"`
	Percent float64 `yaml:"percent" json:"percent"`
}

// Policy is an Automatic Import Policy.
type Policy struct {
	Name        string      `yaml:"name" json:"name"`
	Type        AccountType `yaml:"type" json:"type"`
	Default     bool        `yaml:"default,omitempty" json:"default,omitempty"`
	Description string      `yaml:"description,omitempty" json:"description,omitempty"`
	// Options are the on/off options and Numbers the numeric ones; both
	// are written as one options mapping (see OptionSet).
	Options Values  `yaml:"-" json:"-"`
	Numbers Numbers `yaml:"-" json:"-"`
}

// PolicyAssignment returns what the customer's assignment for a type says:
// a policy name, NoPolicy, or "" (the default policy).
func (c Customer) PolicyAssignment(t AccountType) string { return c.Policies[t] }

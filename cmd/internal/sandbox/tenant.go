package sandbox

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
)

// The environment variables the tenant's env: references name.
const (
	envITGlueKey  = "SANDBOX_ITGLUE_API_KEY"
	envHuduKey    = "SANDBOX_HUDU_API_KEY"
	envHaloID     = "SANDBOX_HALO_CLIENT_ID"
	envHaloSecret = "SANDBOX_HALO_CLIENT_SECRET"
	envCWPublic   = "SANDBOX_CW_PUBLIC_KEY"
	envCWPrivate  = "SANDBOX_CW_PRIVATE_KEY"
	envCWClientID = "SANDBOX_CW_CLIENT_ID"
	envATUser     = "SANDBOX_AT_USERNAME"
	envATSecret   = "SANDBOX_AT_SECRET"
	envATCode     = "SANDBOX_AT_INTEGRATION_CODE"
	envM365ID     = "SANDBOX_M365_CLIENT_ID"
	// The files the tenant's file: references and template name, in
	// SecretsDir.
	fileADPassword  = "ad-bind-password"
	fileM365Secret  = "m365-client-secret"
	fileWelcomeText = "welcome.txt.tmpl"
	policyStandard  = "Standard end users"
	policyWelcome   = "Cloud staff with welcome email"
	policyAdmins    = "Rotated admins"
)

func ref(name string) secret.Ref { return secret.Ref("env:" + name) }

// fileRef is a reference to a file in the sandbox's secrets directory.
func fileRef(name string) secret.Ref { return secret.Ref("file:" + name) }

// welcomeText is the sandbox's own welcome email, read from the secrets
// directory as an MSP's template would be.
const welcomeText = `Hello {{.DisplayName}},

{{.CustomerName}} now uses self-service password reset, run by its IT
provider (this is the sandbox's template, read from AUTOIMPORT_SECRETS_DIR).
Your account {{.Username}} has been added. Please enrol:

    {{.EnrollmentURL}}

-- 
{{.CustomerName}} IT support
`

// tenant describes the MSP: every integration pointing at its fake, three
// policies and the customers, and records the variables it refers to.
func (e *Env) tenant() *jobs.Tenant {
	rate := e.opts.rateSpec()
	e.Vars[envITGlueKey] = e.ITGlue.APIKey
	e.Vars[envHuduKey] = e.Hudu.APIKey
	e.Vars[envHaloID], e.Vars[envHaloSecret] = e.HaloPSA.ClientID, e.HaloPSA.ClientSecret
	e.Vars[envCWPublic], e.Vars[envCWPrivate], e.Vars[envCWClientID] = e.ConnectWise.PublicKey, e.ConnectWise.PrivateKey, e.ConnectWise.ClientID
	e.Vars[envATUser], e.Vars[envATSecret], e.Vars[envATCode] = e.Autotask.UserName, e.Autotask.Secret, e.Autotask.IntegrationCode
	e.Vars[envM365ID] = e.Graph.ClientID

	t := &jobs.Tenant{
		Integrations: jobs.Integrations{
			ITGlue:      &jobs.ITGlue{URL: e.ITGlue.URL, APIKey: ref(envITGlueKey), RateLimit: rate},
			Hudu:        &jobs.Hudu{URL: e.Hudu.URL, APIKey: ref(envHuduKey), RateLimit: rate},
			TechVault:   &jobs.TechVault{Enabled: true},
			HaloPSA:     &jobs.HaloPSA{URL: e.HaloPSA.URL, Tenant: e.HaloPSA.Tenant, ClientID: ref(envHaloID), ClientSecret: ref(envHaloSecret), RateLimit: rate},
			ConnectWise: &jobs.ConnectWise{URL: e.ConnectWise.URL, CompanyID: e.ConnectWise.CompanyID, PublicKey: ref(envCWPublic), PrivateKey: ref(envCWPrivate), ClientID: ref(envCWClientID), RateLimit: rate},
			Autotask:    &jobs.Autotask{URL: e.Autotask.ZoneURL(), Username: ref(envATUser), Secret: ref(envATSecret), IntegrationCode: ref(envATCode), RateLimit: rate},
			M365:        &jobs.M365App{ClientID: ref(envM365ID), ClientSecret: fileRef(fileM365Secret), LoginURL: e.Graph.URL, GraphURL: e.Graph.URL},
			SMTP: &jobs.SMTP{Host: e.SMTP.Host(), Port: e.SMTP.Port(), TLS: "none", From: "Sandbox MSP Service Desk <servicedesk@sandbox-msp.example>",
				EnrollmentURL: "https://selfserve.sandbox-msp.example/enroll", TextTemplate: fileWelcomeText},
		},
		Policies: []jobs.Policy{
			{Name: policyStandard, Type: jobs.EndUser, Default: true, Description: "Match and create in the vault and PSA; no welcome email until roll-out.",
				Options: jobs.Values{jobs.Paused: false, jobs.VaultMatch: true, jobs.VaultCreate: true, jobs.WelcomeEmail: false,
					jobs.PSAMatch: true, jobs.PSACreate: true, jobs.SelfServe: true, jobs.M365Sync: true}},
			{Name: policyWelcome, Type: jobs.EndUser, Description: "Rolled out: new staff get the welcome email.",
				Options: jobs.Values{jobs.VaultMatch: true, jobs.VaultCreate: true, jobs.WelcomeEmail: true,
					jobs.PSAMatch: true, jobs.PSACreate: true, jobs.SelfServe: true}},
			{Name: policyAdmins, Type: jobs.Admin, Default: true, Description: "Administrators stored in the Technician Vault and rotated.",
				Options: jobs.Values{jobs.Rotation: true, jobs.VaultMatch: true, jobs.VaultCreate: true}},
		},
	}
	adPassword := ""
	for _, c := range e.customers {
		cu := jobs.Customer{ID: c.id, Name: c.name, PSA: jobs.PSAMapping{Kind: c.psaKind, CompanyID: strconv.Itoa(c.psaID)}}
		if c.itglueOrg != 0 {
			cu.Vault.ITGlueOrganizationID = strconv.Itoa(c.itglueOrg)
		}
		if c.huduCompany != 0 {
			cu.Vault.HuduCompanyID = strconv.Itoa(c.huduCompany)
		}
		if c.ad != nil {
			adPassword = c.ad.Password()
			ad := &jobs.ADSource{URL: c.ad.URL(), CAFile: c.caFile, BindDN: c.ad.BindDN(), BindPassword: fileRef(fileADPassword), BaseDN: c.dir.BaseDN}
			if c.profile == hybrid {
				ad.Select.Groups = []string{"CN=All Staff,OU=Groups,OU=Corp," + c.dir.BaseDN}
			} else {
				ad.Select.Builtin = []string{"Domain Users"}
			}
			cu.Sources.AD = ad
		}
		switch c.profile {
		case hybrid:
			cu.Sources.M365 = &jobs.M365Tenant{TenantID: c.tenantID, Select: jobs.M365Select{Roles: []string{"Global Administrator"}}}
		case cloud:
			cu.Sources.M365 = &jobs.M365Tenant{TenantID: c.tenantID, Select: jobs.M365Select{Groups: []string{"All Staff"}, Roles: []string{"Global Administrator"}}}
			cu.Policies = map[jobs.AccountType]string{jobs.EndUser: policyWelcome}
		case onPrem:
			cu.Policies = map[jobs.AccountType]string{jobs.EndUser: jobs.NoPolicy}
			cu.Options = map[jobs.AccountType]jobs.Values{jobs.EndUser: {jobs.VaultMatch: true, jobs.VaultCreate: true,
				jobs.PSAMatch: true, jobs.PSACreate: true, jobs.SelfServe: true}}
		}
		t.Customers = append(t.Customers, cu)
	}
	e.secretFiles[fileM365Secret] = e.Graph.ClientSecret
	e.secretFiles[fileWelcomeText] = welcomeText
	if adPassword != "" {
		e.secretFiles[fileADPassword] = adPassword
	}
	return t
}

// writeSecrets writes the files the tenant's file: references and
// template name into SecretsDir, readable by the owner only, as Docker
// and Kubernetes mount secrets.
func (e *Env) writeSecrets() error {
	if err := os.MkdirAll(e.SecretsDir, 0o700); err != nil {
		return err
	}
	for name, content := range e.secretFiles {
		if err := os.WriteFile(filepath.Join(e.SecretsDir, name), []byte(content+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

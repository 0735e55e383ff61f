package connect_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
)

// TestAllowInsecureHTTPReachesTheClients: an integration configured with
// an http:// URL to another host fails to connect naming that URL, and
// connects once its allow_insecure_http is set.
func TestAllowInsecureHTTPReachesTheClients(t *testing.T) {
	t.Setenv("INSECURE_TEST_SECRET", "value")
	ref := secret.Ref("env:INSECURE_TEST_SECRET")
	const url = "http://api.msp.example"
	for _, tt := range []struct {
		name string
		set  func(in *jobs.Integrations, cu *jobs.Customer, allow bool)
	}{
		{"IT Glue", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.ITGlue = &jobs.ITGlue{URL: url, APIKey: ref, AllowInsecureHTTP: allow}
			cu.Vault.ITGlueOrganizationID = "100"
		}},
		{"Hudu", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.Hudu = &jobs.Hudu{URL: url, APIKey: ref, AllowInsecureHTTP: allow}
			cu.Vault.HuduCompanyID = "7"
		}},
		{"ConnectWise", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.ConnectWise = &jobs.ConnectWise{URL: url, CompanyID: "msp", PublicKey: ref, PrivateKey: ref, ClientID: ref, AllowInsecureHTTP: allow}
			cu.PSA.CompanyID = "250"
		}},
		{"Autotask", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.Autotask = &jobs.Autotask{URL: url, Username: ref, Secret: ref, IntegrationCode: ref, AllowInsecureHTTP: allow}
			cu.PSA.CompanyID = "123"
		}},
		{"HaloPSA", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.HaloPSA = &jobs.HaloPSA{URL: url, ClientID: ref, ClientSecret: ref, AllowInsecureHTTP: allow}
			cu.PSA.CompanyID = "12"
		}},
		{"Microsoft 365", func(in *jobs.Integrations, cu *jobs.Customer, allow bool) {
			in.M365 = &jobs.M365App{ClientID: ref, ClientSecret: ref, LoginURL: url, GraphURL: url, AllowInsecureHTTP: allow}
			cu.Sources.M365 = &jobs.M365Tenant{TenantID: "contoso.onmicrosoft.com"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, allow := range []bool{false, true} {
				tn := &jobs.Tenant{}
				cu := jobs.Customer{ID: "acme", Name: "Acme"}
				tt.set(&tn.Integrations, &cu, allow)
				_, err := (&connect.Connector{}).Connect(context.Background(), tn, cu)
				if allow {
					if err != nil {
						t.Errorf("allow_insecure_http set: %v", err)
					}
					continue
				}
				if !errors.Is(err, restclient.ErrInsecureURL) || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), url) {
					t.Errorf("err = %v, want ErrInsecureURL naming %s and %s", err, tt.name, url)
				}
			}
		})
	}
}

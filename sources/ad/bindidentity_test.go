package ad_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// The account autoimport binds as is found in the directory whatever form
// bind_dn takes, so that rotation can leave it alone.
func TestBindIdentityEveryForm(t *testing.T) {
	dir := adtest.Generate(5, 10)
	svc := dir.AddUser(adtest.User{Parent: dir.Users(), SAM: "svc-import", CN: "svc-import"}) // adtest.DefaultBindDN
	if !strings.EqualFold(svc.DN, adtest.DefaultBindDN) {
		t.Fatalf("the service account is %s, not the fake's bind DN", svc.DN)
	}
	// A second account binding as itself, with a UPN whose suffix is not
	// the domain's.
	auto := dir.AddUser(adtest.User{Parent: dir.Users(), SAM: "svc-auto", CN: "Automation", UPN: "automation@alt.example"})
	if err := dir.SetUserPassword(auto.DN, "Auto-Password-1"); err != nil {
		t.Fatal(err)
	}
	// A user whose sAMAccountName is the prefix of the automation UPN, so
	// that a UPN search finds two accounts and must pick the right one.
	decoy := dir.AddUser(adtest.User{Parent: dir.Users(), SAM: "automation", CN: "Automation Decoy"})
	srv := adtest.NewServer(t, adtest.Options{Directory: dir, LDAPS: true})
	service, own := srv.Password(), "Auto-Password-1"

	cases := []struct {
		name, bindDN, password, want string
		implicitUPN                  bool // the account has no userPrincipalName
	}{
		{"DN", adtest.DefaultBindDN, service, svc.DN, false},
		{"DN in other case", strings.ToLower(adtest.DefaultBindDN), service, svc.DN, false},
		{"UPN", "svc-import@corp.example.test", service, svc.DN, false},
		{"implicit UPN", "svc-import@corp.example.test", service, svc.DN, true},
		{"UPN of another suffix", "automation@alt.example", own, auto.DN, false},
		{`DOMAIN\name`, `CORP\svc-import`, service, svc.DN, false},
		{"sAMAccountName", "svc-auto", own, auto.DN, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upn := []string{"svc-import@corp.example.test"}
			if tc.implicitUPN {
				upn = nil
			}
			if err := dir.Set(svc.DN, "userPrincipalName", upn...); err != nil {
				t.Fatal(err)
			}
			cfg := srv.Config("acme")
			cfg.BindDN, cfg.BindPassword = tc.bindDN, tc.password
			src, err := ad.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.BindIdentity(context.Background())
			if err != nil {
				t.Fatalf("BindIdentity(%q): %v", tc.bindDN, err)
			}
			if !strings.EqualFold(got.DN, tc.want) || got.ObjectGUID != dir.GUID(tc.want) || got.ObjectGUID == dir.GUID(decoy.DN) {
				t.Fatalf("BindIdentity(%q) = %+v, want %s (%s)", tc.bindDN, got, tc.want, dir.GUID(tc.want))
			}
		})
	}
}

// A bind account the search cannot find (not in this domain, or outside
// its base DN) is ErrNotFound, never another account.
func TestBindIdentityNotFound(t *testing.T) {
	dir := adtest.Generate(6, 5) // no entry for the fake's service account
	srv := adtest.NewServer(t, adtest.Options{Directory: dir, LDAPS: true})
	for name, mod := range map[string]func(*ad.Config){
		"DN of no entry":      func(*ad.Config) {},
		"UPN of no entry":     func(c *ad.Config) { c.BindDN = "svc-import@corp.example.test" },
		"another domain":      func(c *ad.Config) { c.BindDN, c.Domain = `OTHER\svc-import`, "CORP" },
		"sAMAccountName gone": func(c *ad.Config) { c.BindDN = `CORP\svc-import` },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := srv.Config("acme")
			mod(&cfg)
			src, err := ad.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.BindIdentity(context.Background())
			if !errors.Is(err, ad.ErrNotFound) || got.ObjectGUID != "" {
				t.Fatalf("BindIdentity = %+v, %v; want ErrNotFound", got, err)
			}
			if !strings.Contains(err.Error(), "customer acme") {
				t.Errorf("the error does not name the customer: %v", err)
			}
		})
	}
}

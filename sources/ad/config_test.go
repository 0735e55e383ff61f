package ad

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewValidates(t *testing.T) {
	ok := Config{Customer: "acme", URL: "ldaps://dc1.acme.example", BindDN: "svc@acme.example", BindPassword: "pw"}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "ldaps ok", mod: func(*Config) {}},
		{name: "ldap with StartTLS ok", mod: func(c *Config) { c.URL = "ldap://dc1.acme.example:389"; c.StartTLS = true }},
		{name: "plain ldap allowed explicitly", mod: func(c *Config) { c.URL = "ldap://dc1.acme.example"; c.AllowPlaintext = true }},
		{name: "plain ldap refused", mod: func(c *Config) { c.URL = "ldap://dc1.acme.example" }, wantErr: "send the bind password in clear"},
		{name: "StartTLS over ldaps", mod: func(c *Config) { c.StartTLS = true }, wantErr: "start_tls"},
		{name: "bad scheme", mod: func(c *Config) { c.URL = "http://dc1" }, wantErr: "scheme"},
		{name: "no host", mod: func(c *Config) { c.URL = "ldaps://" }, wantErr: "url"},
		{name: "no url", mod: func(c *Config) { c.URL = "" }, wantErr: "url is empty"},
		{name: "no customer", mod: func(c *Config) { c.Customer = "" }, wantErr: "customer name is empty"},
		{name: "no bind dn", mod: func(c *Config) { c.BindDN = "" }, wantErr: "bind_dn"},
		{name: "empty password is an anonymous bind", mod: func(c *Config) { c.BindPassword = "" }, wantErr: "anonymous"},
		{name: "negative page size", mod: func(c *Config) { c.PageSize = -1 }, wantErr: "page_size"},
		{name: "missing CA file", mod: func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, wantErr: "ca_file"},
		{name: "CA file without PEM", mod: func(c *Config) { c.CAFile = caFile }, wantErr: "no PEM certificate"},
		{name: "CA PEM garbage", mod: func(c *Config) { c.CAPEM = []byte("junk") }, wantErr: "ca_pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			s, err := New(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.cfg.PageSize != DefaultPageSize || s.cfg.SearchTimeout != DefaultSearchTimeout {
					t.Errorf("defaults not applied: %+v", s.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error %v, want it to contain %q", err, tc.wantErr)
			}
			if cfg.Customer != "" && !strings.Contains(err.Error(), "AD: customer acme") {
				t.Errorf("error does not name the customer: %v", err)
			}
			if strings.Contains(err.Error(), "pw\"") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestNetbiosFromDN(t *testing.T) {
	for dn, want := range map[string]string{
		"DC=corp,DC=example,DC=test":        "CORP",
		"DC=averyveryverylongname,DC=local": "AVERYVERYVERYLO",
		"OU=x,DC=acme,DC=example":           "ACME",
		"":                                  "",
		"not a dn":                          "",
	} {
		if got := netbiosFromDN(dn); got != want {
			t.Errorf("netbiosFromDN(%q) = %q, want %q", dn, got, want)
		}
	}
}

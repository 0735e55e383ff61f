package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tenantWithFileRef = `integrations:
  itglue:
    url: https://api.itglue.com
    api_key: file:itglue_api_key
`

// apply reads file: references from AUTOIMPORT_SECRETS_DIR only: unset,
// the file is refused with how to set it; set, a file there that holds
// the master key is refused before anything is stored.
func TestApplyChecksFileReferencesAgainstTheSecretsDirectory(t *testing.T) {
	freshDir(t)
	os.WriteFile("tenant.yaml", []byte(tenantWithFileRef), 0o600)
	code, _, errs := cli(t, "", "apply", "-f", "tenant.yaml")
	if code != 2 || !strings.Contains(errs, "tenant.yaml:4: integrations.itglue.api_key: secret file:itglue_api_key: AUTOIMPORT_SECRETS_DIR is not set") || !strings.Contains(errs, "/run/secrets") {
		t.Fatalf("apply without AUTOIMPORT_SECRETS_DIR: exit %d, %s", code, errs)
	}
	dir := t.TempDir()
	t.Setenv("AUTOIMPORT_SECRETS_DIR", dir)
	if code, _, errs := cli(t, "", "apply", "-f", "tenant.yaml"); code != 0 {
		t.Fatalf("apply with the file not yet there: exit %d, %s", code, errs)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	t.Setenv("AUTOIMPORT_SECRET_KEY", key)
	os.WriteFile(filepath.Join(dir, "itglue_api_key"), []byte("AUTOIMPORT_SECRET_KEY="+key+"\n"), 0o600)
	code, _, errs = cli(t, "", "apply", "-f", "tenant.yaml", "--check")
	if code != 2 || !strings.Contains(errs, "it holds AUTOIMPORT_SECRET_KEY") || strings.Contains(errs, key) {
		t.Fatalf("apply of a file holding the key: exit %d, %s", code, errs)
	}
	os.WriteFile(filepath.Join(dir, "itglue_api_key"), []byte("ITG.an-ordinary-key\n"), 0o600)
	if code, _, errs := cli(t, "", "apply", "-f", "tenant.yaml", "--check"); code != 0 {
		t.Fatalf("apply of an ordinary key: exit %d, %s", code, errs)
	}
}

func TestSecretsDirConfig(t *testing.T) {
	for _, tc := range []struct {
		dir, db, want string
	}{
		{dir: "/run/secrets"},
		{dir: "/run/secrets/", db: "sqlite:/var/lib/autoimport/autoimport.db"},
		{dir: "run/secrets", want: "AUTOIMPORT_SECRETS_DIR=\"run/secrets\" is invalid: want an absolute directory path"},
		{dir: "/proc/self", want: "not under /proc"},
		{dir: "/", want: "not the root of the file system"},
		{dir: "/srv/autoimport", db: "sqlite:/srv/autoimport/autoimport.db", want: "does not hold the SQLite database /srv/autoimport/autoimport.db"},
	} {
		c := Config{SecretsDir: tc.dir, DatabaseURL: tc.db}
		err := c.checkSecretsDir()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("AUTOIMPORT_SECRETS_DIR=%s, database %s: %v, want %q", tc.dir, tc.db, err, tc.want)
		}
	}
	// The MySQL password is withheld from every secret and template.
	c := Config{DatabaseURL: "autoimport:db-Passw0rd-long@tcp(db:3306)/autoimport"}
	if err := c.checkSecretsDir(); err != nil {
		t.Fatal(err)
	}
	if w := c.secrets().Withheld; len(w) != 1 || w[0] != "db-Passw0rd-long" {
		t.Fatalf("withheld %q, want the database password", w)
	}
}

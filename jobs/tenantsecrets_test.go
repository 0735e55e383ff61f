package jobs

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
)

// A tenant file about to be applied: file: references and templates lie
// in AUTOIMPORT_SECRETS_DIR (unset, they are refused with how to set it),
// and what this machine can read of any secret or template holds none of
// autoimport's own secrets. Each refusal carries its line.
func TestTenantFileToApplyChecksSecrets(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	key, err := secret.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "itglue"), []byte("ITG.ordinary-key\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "autoimport.env"), []byte("AUTOIMPORT_SECRET_KEY="+b64+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "welcome.txt"), []byte("Hello {{.DisplayName}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "leaky.txt"), []byte("Hello {{.DisplayName}} db-password-of-the-store\n"), 0o600)
	t.Setenv("MSP_KEY_COPY", b64)
	secrets := &secret.Resolver{Key: key, Dir: dir, Withheld: []string{"db-password-of-the-store"}}
	smtp := func(extra string) string {
		return "integrations:\n  smtp:\n    host: smtp.example\n    from: a@b.example\n    enrollment_url: https://e.example\n" + extra
	}
	itglue := func(ref string) string {
		return "integrations:\n  itglue:\n    url: https://api.itglue.com\n    api_key: " + ref + "\n"
	}
	for _, tc := range []struct {
		name, file string
		secrets    *secret.Resolver
		want       string
	}{
		{"file inside the directory", itglue("file:itglue"), secrets, ""},
		{"absolute path inside the directory", itglue("file:" + filepath.Join(dir, "itglue")), secrets, ""},
		{"file not on this machine", itglue("file:not-here-yet"), secrets, ""},
		{"template inside the directory", smtp("    text_template: welcome.txt\n"), secrets, ""},
		{"no secrets directory", itglue("file:itglue"), &secret.Resolver{}, "t.yaml:4: integrations.itglue.api_key: secret file:itglue: AUTOIMPORT_SECRETS_DIR is not set"},
		{"template without a secrets directory", smtp("    text_template: /etc/hostname\n"), &secret.Resolver{}, "t.yaml:6: integrations.smtp.text_template: AUTOIMPORT_SECRETS_DIR is not set"},
		{"file outside the directory", itglue("file:/etc/autoimport.env"), secrets, "t.yaml:4: integrations.itglue.api_key: secret file:/etc/autoimport.env: /etc/autoimport.env is outside AUTOIMPORT_SECRETS_DIR"},
		{"template outside the directory", smtp("    html_template: /etc\n"), secrets, "t.yaml:6: integrations.smtp.html_template: /etc is outside AUTOIMPORT_SECRETS_DIR"},
		{"a copy of the key in a file", itglue("file:autoimport.env"), secrets, "t.yaml:4: integrations.itglue.api_key: secret file:autoimport.env: it holds AUTOIMPORT_SECRET_KEY"},
		{"a copy of the key in a variable", itglue("env:MSP_KEY_COPY"), secrets, "t.yaml:4: integrations.itglue.api_key: secret env:MSP_KEY_COPY: it holds AUTOIMPORT_SECRET_KEY"},
		{"the database password in a template", smtp("    text_template: leaky.txt\n"), secrets, "t.yaml:6: integrations.smtp.text_template: leaky.txt: it holds the password of AUTOIMPORT_DATABASE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTenantFileToApply("t.yaml", []byte(tc.file), tc.secrets)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), b64) {
				t.Fatalf("the error holds the key: %v", err)
			}
		})
	}
	// Parsing alone (no secrets) checks forms only.
	if _, err := ParseTenantFile("t.yaml", []byte(itglue("file:/etc/autoimport.env"))); err != nil {
		t.Fatalf("ParseTenantFile: %v", err)
	}
}

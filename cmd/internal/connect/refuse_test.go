package connect_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/jobs"
)

// A tenant stored by an older version, or edited in the database, is
// checked again when a run connects: it must not make autoimport send its
// own configuration, mail a system file, or send mail in clear.
func TestConnectRefusesWhatApplyRefuses(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(100 + i)
	}
	key, err := secret.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	t.Setenv("AUTOIMPORT_SECRET_KEY", b64)
	t.Setenv("SMTP_PW", "pw")
	t.Setenv("KEY_COPY", "x"+b64)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "autoimport.env"), []byte("AUTOIMPORT_SECRET_KEY="+b64+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "welcome.txt"), []byte("Hello {{.DisplayName}}: "+b64+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "db.txt"), []byte("the store: store-password-123\n"), 0o600)
	os.Symlink("/proc/self/environ", filepath.Join(dir, "environ"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	smtp := func(mod func(*jobs.SMTP)) *jobs.SMTP {
		s := &jobs.SMTP{Host: "127.0.0.1", Port: 2525, TLS: "starttls", From: "desk@msp.example", EnrollmentURL: "https://e.example"}
		mod(s)
		return s
	}
	cases := []struct {
		name       string
		in         jobs.Integrations
		secretsDir string
		want       string
	}{
		{"env ref to the master key", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "env:AUTOIMPORT_SECRET_KEY" })}, dir,
			"SMTP password: secret env:AUTOIMPORT_SECRET_KEY: env:AUTOIMPORT_SECRET_KEY is autoimport's own configuration"},
		{"env ref to a copy of the master key", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "env:KEY_COPY" })}, dir,
			"SMTP password: secret env:KEY_COPY: it holds AUTOIMPORT_SECRET_KEY"},
		{"file ref to the process environment", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Password = "file:/proc/self/environ" })}, dir,
			"under /proc"},
		{"file ref through a link to the process environment", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "file:environ" })}, dir,
			"through links that stay inside it"},
		{"file ref without a secrets directory", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "file:autoimport.env" })}, "",
			"SMTP password: secret file:autoimport.env: AUTOIMPORT_SECRETS_DIR is not set"},
		{"file ref outside the secrets directory", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "file:/etc/hostname" })}, dir,
			"/etc/hostname is outside AUTOIMPORT_SECRETS_DIR"},
		{"file holding the master key", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "file:autoimport.env" })}, dir,
			"SMTP password: secret file:autoimport.env: it holds AUTOIMPORT_SECRET_KEY"},
		{"template that is a system file", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.TextTemplate = "/proc/self/environ" })}, dir,
			"SMTP: template: /proc/self/environ is under /proc"},
		{"template that is a directory", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.HTMLTemplate = "sub" })}, dir,
			"SMTP: template: sub is not a regular file (it is a directory)"},
		{"template outside the secrets directory", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.HTMLTemplate = "/etc/hostname" })}, dir,
			"SMTP: template: /etc/hostname is outside AUTOIMPORT_SECRETS_DIR"},
		{"template holding the master key", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.TextTemplate = "welcome.txt" })}, dir,
			"SMTP: template: welcome.txt: it holds AUTOIMPORT_SECRET_KEY"},
		{"template holding the database password", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.TextTemplate = "db.txt" })}, dir,
			"SMTP: template: db.txt: it holds the password of AUTOIMPORT_DATABASE_URL"},
		{"SMTP in clear to another host", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Host, s.TLS = "smtp.example", "none" })}, dir,
			"tls none is allowed only to a relay on this machine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := &jobs.Tenant{Integrations: c.in}
			cu := jobs.Customer{ID: "acme", Name: "Acme"}
			conn := &connect.Connector{Key: key, SecretsDir: c.secretsDir, Withheld: []string{"store-password-123"}}
			_, err := conn.Connect(context.Background(), tn, cu)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Connect = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), b64) || strings.Contains(err.Error(), "store-password-123") {
				t.Fatalf("the error leaks a secret: %v", err)
			}
		})
	}
}

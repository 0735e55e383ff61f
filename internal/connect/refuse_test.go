package connect_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/connect"
	"github.com/msp-tools/autoimport/jobs"
)

// A tenant stored by an older version, or edited in the database, is
// checked again when a run connects: it must not make autoimport send its
// own configuration, mail a system file, or send mail in clear.
func TestConnectRefusesWhatApplyRefuses(t *testing.T) {
	t.Setenv("AUTOIMPORT_SECRET_KEY", "master")
	t.Setenv("SMTP_PW", "pw")
	smtp := func(mod func(*jobs.SMTP)) *jobs.SMTP {
		s := &jobs.SMTP{Host: "127.0.0.1", Port: 2525, TLS: "starttls", From: "desk@msp.example", EnrollmentURL: "https://e.example"}
		mod(s)
		return s
	}
	cases := []struct {
		name string
		in   jobs.Integrations
		want string
	}{
		{"env ref to the master key", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Username, s.Password = "env:SMTP_PW", "env:AUTOIMPORT_SECRET_KEY" })},
			"SMTP password: secret env:AUTOIMPORT_SECRET_KEY: env:AUTOIMPORT_SECRET_KEY is autoimport's own configuration"},
		{"file ref to the process environment", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Password = "file:/proc/self/environ" })},
			"under /proc"},
		{"template that is a system file", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.TextTemplate = "/proc/self/environ" })},
			"SMTP: template: /proc/self/environ is under /proc"},
		{"template that is a directory", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.HTMLTemplate = "/etc" })},
			"SMTP: template: /etc is not a regular file"},
		{"SMTP in clear to another host", jobs.Integrations{SMTP: smtp(func(s *jobs.SMTP) { s.Host, s.TLS = "smtp.example", "none" })},
			"tls none is allowed only to a relay on this machine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := &jobs.Tenant{Integrations: c.in}
			cu := jobs.Customer{ID: "acme", Name: "Acme"}
			_, err := (&connect.Connector{}).Connect(context.Background(), tn, cu)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Connect = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "master") {
				t.Fatalf("the error leaks the key: %v", err)
			}
		})
	}
}

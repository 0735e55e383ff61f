package email

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"

	"github.com/msp-tools/autoimport/internal/loopback"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
)

const enrol = "https://reset.msp.example/enrol?c=acme"

func welcome(account string) sinks.Welcome {
	return sinks.Welcome{
		Customer: "acme", CustomerName: "Acme Corp", To: account + "@acme.example",
		DisplayName: "Jane Doe", Username: account, EnrollmentURL: enrol,
		MessageID: MessageID("acme", "ad:"+account),
	}
}

// configFor is a mailer config for a fake server.
func configFor(s *emailtest.Server) Config {
	tlsMode := TLSStartTLS
	switch s.Mode() {
	case emailtest.ImplicitTLS:
		tlsMode = TLSImplicit
	case emailtest.Plain:
		tlsMode = TLSNone
	}
	return Config{
		Host: s.Host(), Port: s.Port(), Username: s.Username(), Password: s.Password(),
		From: "Acme IT <it@msp.example>", TLS: tlsMode, RootCAs: s.CertPool(), Timeout: 10 * time.Second,
	}
}

func newMailer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendOverStartTLS(t *testing.T) {
	for _, auth := range []string{"plain", "login"} {
		t.Run(auth, func(t *testing.T) {
			s := emailtest.NewServer(t, emailtest.Options{Mechanisms: []string{strings.ToUpper(auth)}})
			cfg := configFor(s)
			cfg.Auth = auth
			var logs bytes.Buffer
			log := logrus.New()
			log.SetOutput(&logs)
			cfg.Log = log
			m := newMailer(t, cfg)
			ctx := context.Background()
			// The same account twice (a retried send) and another account.
			for _, w := range []sinks.Welcome{welcome("jdoe"), welcome("jdoe"), welcome("bsmith")} {
				if err := m.SendWelcome(ctx, w); err != nil {
					t.Fatal(err)
				}
			}
			msgs := s.Messages()
			if len(msgs) != 3 {
				t.Fatalf("%d messages", len(msgs))
			}
			first := msgs[0]
			if first.MessageID != MessageID("acme", "ad:jdoe") || msgs[1].MessageID != first.MessageID {
				t.Fatalf("Message-IDs %q, %q; want both %q", first.MessageID, msgs[1].MessageID, MessageID("acme", "ad:jdoe"))
			}
			if msgs[2].MessageID == first.MessageID {
				t.Fatal("two accounts share a Message-ID")
			}
			if first.From != `"Acme IT" <it@msp.example>` || first.To != `"Jane Doe" <jdoe@acme.example>` ||
				first.Subject != "Acme Corp: set up your password self-service" {
				t.Fatalf("headers From %q To %q Subject %q", first.From, first.To, first.Subject)
			}
			if first.MailFrom != "it@msp.example" || len(first.RcptTo) != 1 || first.RcptTo[0] != "jdoe@acme.example" {
				t.Fatalf("envelope %q -> %q", first.MailFrom, first.RcptTo)
			}
			if !first.TLS || first.Login != s.Username() || !first.Acked {
				t.Fatalf("not sent over TLS with AUTH: %+v", first)
			}
			for name, body := range map[string]string{"text": first.Text, "html": first.HTML} {
				for _, want := range []string{"Acme Corp", "Jane Doe", "jdoe"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s body lacks %q:\n%s", name, want, body)
					}
				}
			}
			if !strings.Contains(first.Text, enrol) {
				t.Errorf("text body lacks the link:\n%s", first.Text)
			}
			if !strings.Contains(first.HTML, `href="https://reset.msp.example/enrol?c=acme"`) {
				t.Errorf("HTML body lacks the link:\n%s", first.HTML)
			}
			if first.Header.Get("Auto-Submitted") != "auto-generated" {
				t.Errorf("Auto-Submitted = %q", first.Header.Get("Auto-Submitted"))
			}
			c := s.Counts()
			if c.StartTLS != 3 || c.AuthOK != 3 || c.Accepted != 3 {
				t.Fatalf("counts %+v", c)
			}
			if strings.Contains(logs.String(), s.Password()) || strings.Count(logs.String(), "welcome email sent") != 3 {
				t.Fatalf("log:\n%s", logs.String())
			}
		})
	}
}

func TestMessageIDIsStable(t *testing.T) {
	a, b := MessageID("acme", "ad:1"), MessageID("acme", "ad:1")
	if a != b || !strings.HasPrefix(a, "<welcome.") || !strings.HasSuffix(a, "@autoimport.invalid>") {
		t.Fatalf("MessageID = %q, %q", a, b)
	}
	for _, other := range []string{MessageID("acme", "ad:2"), MessageID("globex", "ad:1"), MessageID("acmead", ":1")} {
		if other == a {
			t.Fatalf("different accounts share %q", a)
		}
	}
	if _, err := cleanMessageID(a); err != nil {
		t.Fatal(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.ImplicitTLS})
	m := newMailer(t, configFor(s))
	if err := m.SendWelcome(context.Background(), welcome("jdoe")); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].Login != s.Username() {
		t.Fatalf("messages %+v", msgs)
	}
	if s.Counts().StartTLS != 0 {
		t.Fatal("STARTTLS used on an implicit TLS port")
	}
}

// Mail in clear goes to this machine only, by the address dialled, not by
// the name: a relay named evil.localhost that resolves to another machine
// gets no connection, and a name that resolves to loopback is used.
func TestPlainRelayOnlyAtALoopbackAddress(t *testing.T) {
	old := noTLSDialer.LookupNetIP
	noTLSDialer.LookupNetIP = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		switch host {
		case "evil.localhost":
			return []netip.Addr{netip.MustParseAddr("10.255.255.1")}, nil
		case "relay.internal":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host " + host)
	}
	t.Cleanup(func() { noTLSDialer.LookupNetIP = old })
	s := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
	for host, ok := range map[string]bool{"evil.localhost": false, "10.255.255.1": false, "relay.internal": true} {
		cfg := configFor(s)
		cfg.Host, cfg.Username, cfg.Password, cfg.AllowNoTLS = host, "", "", true
		before := s.Count()
		err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
		if ok {
			if err != nil || s.Count() != before+1 {
				t.Errorf("%s: %v, want delivered", host, err)
			}
			continue
		}
		if !errors.Is(err, loopback.ErrNotLoopback) || !errors.Is(err, sinks.ErrNotSent) || !strings.Contains(err.Error(), host) {
			t.Errorf("%s: %v, want ErrNotLoopback, not sent, naming the host", host, err)
		}
		if s.Count() != before {
			t.Errorf("%s: delivered", host)
		}
	}
}

func TestPlainRelayWhenAllowed(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
	cfg := configFor(s)
	cfg.Username, cfg.Password = "", ""
	cfg.AllowNoTLS = true
	m := newMailer(t, cfg)
	if err := m.SendWelcome(context.Background(), welcome("jdoe")); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 {
		t.Fatal("not delivered")
	}
}

// errOf asserts err is an *Error and returns it.
func errOf(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *email.Error", err, err)
	}
	return e
}

func TestStartTLSIsRequired(t *testing.T) {
	// A server that offers no STARTTLS: the mailer must not fall back to
	// sending the credentials in the clear.
	s := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
	cfg := configFor(s)
	cfg.TLS = TLSStartTLS
	m := newMailer(t, cfg)
	err := m.SendWelcome(context.Background(), welcome("jdoe"))
	e := errOf(t, err)
	t.Log(err)
	if e.Stage != StageTLS || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("error: %v", err)
	}
	if c := s.Counts(); c.AuthRefused != 0 || c.Mail != 0 || s.Count() != 0 {
		t.Fatalf("credentials or mail went out without TLS: %+v", c)
	}
	waitClosed(t, s)
}

func TestBadCredentials(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	cfg := configFor(s)
	cfg.Password = "Wr0ng-Pa55word"
	err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
	e := errOf(t, err)
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"SMTP " + s.Addr(), "customer acme", "535", "check smtp username/password"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, cfg.Password) || strings.Contains(msg, s.Password()) {
		t.Errorf("error leaks a password: %q", msg)
	}
	if e.Stage != StageAuth || e.Code != 535 || e.Enhanced != "5.7.8" || e.Temporary() || e.Unconfirmed {
		t.Fatalf("error fields %+v", e)
	}
	if s.Counts().AuthFailed != 1 || s.Count() != 0 {
		t.Fatalf("counts %+v", s.Counts())
	}
	waitClosed(t, s)
}

// waitClosed waits until the fake has no open connection: the mailer must
// not leave one behind, whatever failed. The server notices a close at
// once; the generous deadline only bounds a broken run.
func waitClosed(t *testing.T, s *emailtest.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Counts().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left open", s.Counts().Open)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestScriptedReplies(t *testing.T) {
	cases := []struct {
		fault     emailtest.Fault
		stage     Stage
		code      int
		temporary bool
		text      string
	}{
		{emailtest.Fault{At: emailtest.AtMail, Code: 451, Enhanced: "4.3.0", Message: "Mail server temporarily unavailable"}, StageMail, 451, true, "451 4.3.0 Mail server temporarily unavailable"},
		{emailtest.Fault{At: emailtest.AtMail, Code: 550, Enhanced: "5.7.60", Message: "SendAsDenied; it@msp.example not allowed to send as it@msp.example"}, StageMail, 550, false, "may not send as the From address"},
		{emailtest.Fault{At: emailtest.AtRcpt, Code: 550, Enhanced: "5.1.1", Message: "Recipient address rejected: User unknown"}, StageRcpt, 550, false, "550 5.1.1 Recipient address rejected"},
		{emailtest.Fault{At: emailtest.AtData, Code: 452, Enhanced: "4.3.1", Message: "Insufficient system storage"}, StageConfirm, 452, true, "452 4.3.1 Insufficient system storage"},
		{emailtest.Fault{At: emailtest.AtData, Code: 554, Enhanced: "5.6.0", Message: "Message content rejected"}, StageConfirm, 554, false, "554 5.6.0 Message content rejected"},
	}
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			s.Script(tc.fault)
			err := m.SendWelcome(context.Background(), welcome("jdoe"))
			e := errOf(t, err)
			t.Log(err)
			if e.Stage != tc.stage || e.Code != tc.code || e.Temporary() != tc.temporary || IsTemporary(err) != tc.temporary || e.Unconfirmed {
				t.Fatalf("error %v: stage %q code %d temporary %v unconfirmed %v", err, e.Stage, e.Code, e.Temporary(), e.Unconfirmed)
			}
			if !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), "customer acme") {
				t.Fatalf("error %q lacks %q", err, tc.text)
			}
		})
	}
	if s.Count() != 0 || s.Pending() != 0 {
		t.Fatalf("%d messages accepted, %d faults left", s.Count(), s.Pending())
	}
}

func TestDropAfterDataIsUnconfirmed(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	s.DropAfterData()
	err := m.SendWelcome(context.Background(), welcome("jdoe"))
	e := errOf(t, err)
	t.Log(err)
	if !e.Unconfirmed || !IsUnconfirmed(err) || e.Temporary() || e.Stage != StageConfirm || e.Code != 0 {
		t.Fatalf("error %v: %+v", err, e)
	}
	if !strings.Contains(err.Error(), "unconfirmed") || !strings.Contains(err.Error(), "must not be resent") {
		t.Fatalf("error %q does not say the attempt is unconfirmed", err)
	}
	// The server did get it: exactly why the caller must not resend.
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].Acked || msgs[0].MessageID != MessageID("acme", "ad:jdoe") {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	for _, mode := range []emailtest.Mode{emailtest.StartTLS, emailtest.ImplicitTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			s := emailtest.NewServer(t, emailtest.Options{Mode: mode})
			cfg := configFor(s)
			cfg.RootCAs = nil // system roots do not trust the fake
			err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
			e := errOf(t, err)
			t.Log(err)
			if e.Stage != StageTLS || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("error %v, stage %q", err, e.Stage)
			}
			if s.Counts().AuthOK != 0 || s.Count() != 0 {
				t.Fatal("credentials or mail sent over an untrusted connection")
			}
			waitClosed(t, s)
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	cfg := configFor(s)
	s.Close()
	err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
	e := errOf(t, err)
	if e.Stage != StageConnect || !e.Temporary() {
		t.Fatalf("error %v: %+v", err, e)
	}
}

func TestContextCancelStopsTheSend(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{Latency: time.Minute})
	m := newMailer(t, configFor(s))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.SendWelcome(ctx, welcome("jdoe")) }()
	// Cancel once the server is holding the MAIL reply.
	for s.Counts().Mail == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	err := <-done
	e := errOf(t, err)
	if !errors.Is(err, context.Canceled) || e.Stage != StageMail || e.Unconfirmed {
		t.Fatalf("error %v: %+v", err, e)
	}
}

func TestComposeErrors(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	cases := []struct {
		name string
		edit func(w *sinks.Welcome)
		want string
	}{
		{"no address", func(w *sinks.Welcome) { w.To = "" }, "no email address"},
		{"bad address", func(w *sinks.Welcome) { w.To = "not an address" }, "is not an email address"},
		{"two addresses", func(w *sinks.Welcome) { w.To = "a@x.example, b@x.example" }, "is not an email address"},
		{"line break in address", func(w *sinks.Welcome) { w.To = "a@x.example\r\nBcc: b@x.example" }, "line break"},
		{"invalid utf-8 name", func(w *sinks.Welcome) { w.DisplayName = "J\xffne" }, "display name is not valid UTF-8"},
		{"no link", func(w *sinks.Welcome) { w.EnrollmentURL = "" }, "no self-serve enrollment link"},
		{"javascript link", func(w *sinks.Welcome) { w.EnrollmentURL = "javascript:alert(1)" }, "not an http(s) address"},
		{"bad message id", func(w *sinks.Welcome) { w.MessageID = "<a b@c>" }, "message id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := welcome("jdoe")
			tc.edit(&w)
			err := m.SendWelcome(context.Background(), w)
			e := errOf(t, err)
			if e.Stage != StageCompose || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "customer acme") {
				t.Fatalf("error %v, want %q at compose", err, tc.want)
			}
		})
	}
	if s.Counts().Connections != 0 {
		t.Fatal("a connection was made for a welcome that cannot be composed")
	}
}

func TestHeaderInjectionIsHarmless(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	w := welcome("jdoe")
	w.DisplayName = "Jane\r\nBcc: victim@evil.example\r\nX-Injected: 1"
	w.CustomerName = "Acme\nSubject: hijacked"
	if err := m.SendWelcome(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	msg := s.Messages()[0]
	if _, ok := msg.Header["Bcc"]; ok {
		t.Fatal("a Bcc header was injected")
	}
	if _, ok := msg.Header["X-Injected"]; ok {
		t.Fatal("a header was injected")
	}
	if len(msg.Header["Subject"]) != 1 || len(msg.RcptTo) != 1 {
		t.Fatalf("headers %v, recipients %v", msg.Header, msg.RcptTo)
	}
	if msg.Subject != "Acme Subject: hijacked: set up your password self-service" {
		t.Fatalf("subject %q", msg.Subject)
	}
}

func TestTemplateOverride(t *testing.T) {
	text := Template{Name: "welcome.txt", Text: "Hi {{.DisplayName}} of {{.CustomerName}}: {{.EnrollmentURL}} ({{.Email}})\n"}
	html := Template{Name: "welcome.html", Text: `<p>Hi {{.DisplayName}} of {{.CustomerName}}: <a href="{{.EnrollmentURL}}">enrol</a></p>`}
	s := emailtest.NewServer(t, emailtest.Options{})
	cfg := configFor(s)
	cfg.TextTemplate, cfg.HTMLTemplate = text, html
	cfg.Subject = "Welcome, {{.Username}}"
	m := newMailer(t, cfg)
	w := welcome("jdoe")
	w.DisplayName = "<b>Jane</b> & co"
	if err := m.SendWelcome(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	got := s.Messages()[0]
	if strings.ReplaceAll(got.Text, "\r\n", "\n") != "Hi <b>Jane</b> & co of Acme Corp: "+enrol+" (jdoe@acme.example)\n" {
		t.Fatalf("text %q", got.Text)
	}
	if got.HTML != `<p>Hi &lt;b&gt;Jane&lt;/b&gt; &amp; co of Acme Corp: <a href="https://reset.msp.example/enrol?c=acme">enrol</a></p>` {
		t.Fatalf("html %q", got.HTML)
	}
	if got.Subject != "Welcome, jdoe" {
		t.Fatalf("subject %q", got.Subject)
	}
}

func TestConfigValidation(t *testing.T) {
	badSyntax := Template{Name: "bad.txt", Text: "Hello {{.DisplayName"}
	badField := Template{Name: "field.html", Text: "<p>{{.Nickname}}</p>"}
	ok := Config{Host: "smtp.example.com", Username: "u", Password: "SuperSecret9", From: "it@msp.example"}
	cases := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"no host", func(c *Config) { c.Host = "" }, "SMTP host"},
		{"bad from", func(c *Config) { c.From = "IT desk" }, "from address \"IT desk\""},
		{"no from", func(c *Config) { c.From = "" }, "from address is not set"},
		{"from with line break", func(c *Config) { c.From = "it@msp.example\r\nBcc: x@y.example" }, "from address"},
		{"bad tls", func(c *Config) { c.TLS = "ssl" }, "tls must be"},
		{"none not allowed", func(c *Config) { c.TLS = "none" }, "allowed only for a relay on this machine"},
		{"none with credentials", func(c *Config) { c.TLS, c.AllowNoTLS = "none", true }, "never sent without TLS"},
		{"username without password", func(c *Config) { c.Password = "" }, "both the username and the password"},
		{"bad auth", func(c *Config) { c.Auth = "cram-md5" }, "auth must be"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "out of range"},
		{"template syntax", func(c *Config) { c.TextTemplate = badSyntax }, "text template"},
		{"template field", func(c *Config) { c.HTMLTemplate = badField }, "HTML template"},
		{"template empty", func(c *Config) { c.TextTemplate = Template{Name: "none.txt"} }, "none.txt is empty"},
		{"template not UTF-8", func(c *Config) { c.TextTemplate = Template{Name: "latin1.txt", Text: "caf\xe9"} }, "latin1.txt is not valid UTF-8"},
		{"subject syntax", func(c *Config) { c.Subject = "{{" }, "subject template"},
		{"subject empty", func(c *Config) { c.Subject = "{{/* nothing */}}" }, "empty subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SuperSecret9") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	m, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.Port != 587 || m.cfg.Timeout != 30*time.Second {
		t.Fatalf("defaults: port %d timeout %v", m.cfg.Port, m.cfg.Timeout)
	}
	imp := ok
	imp.TLS = "implicit"
	if m, err := New(imp); err != nil || m.cfg.Port != 465 {
		t.Fatalf("implicit default port: %v", err)
	}
}

func TestRedact(t *testing.T) {
	m := &Mailer{cfg: Config{Password: "p4ss"}}
	if got := m.redact(errors.New("server said p4ss is wrong")).Error(); got != "server said [redacted] is wrong" {
		t.Fatal(got)
	}
}

func TestConcurrentSends(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.SendWelcome(context.Background(), welcome("user"+string(rune('a'+i)))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, msg := range s.Messages() {
		seen[msg.MessageID] = true
	}
	if len(seen) != 16 {
		t.Fatalf("%d distinct messages of 16", len(seen))
	}
}

func TestXOAuth2(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{Mechanisms: []string{emailtest.XOAuth2}})
	cfg := configFor(s)
	cfg.Auth, cfg.Password = "xoauth2", s.Token()
	if err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe")); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].Login != s.Username() {
		t.Fatalf("messages %+v", msgs)
	}

	cfg.Password = "expired.token.value"
	err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
	e := errOf(t, err)
	t.Log(err)
	if e.Stage != StageAuth || e.Code != 535 || !strings.Contains(err.Error(), "check the OAuth access token") {
		t.Fatalf("error %v: %+v", err, e)
	}
	if strings.Contains(err.Error(), cfg.Password) || strings.Contains(err.Error(), s.Token()) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if c := s.Counts(); c.AuthOK != 1 || c.AuthFailed != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestLimiterPacesSends(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	cfg := configFor(s)
	// One message, then the next only an hour later.
	cfg.Limiter = rate.NewLimiter(rate.Every(time.Hour), 1)
	m := newMailer(t, cfg)
	if err := m.SendWelcome(context.Background(), welcome("jdoe")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.SendWelcome(ctx, welcome("bsmith"))
	e := errOf(t, err)
	if e.Stage != StageWait || !e.Temporary() {
		t.Fatalf("error %v: %+v", err, e)
	}
	if s.Counts().Connections != 1 {
		t.Fatal("a paced send connected anyway")
	}
}

func TestFailuresBeforeTheMessageAreTemporary(t *testing.T) {
	cases := []struct {
		name  string
		opts  emailtest.Options
		fault *emailtest.Fault
		stage Stage
		code  int
	}{
		{"greeting refused", emailtest.Options{}, &emailtest.Fault{At: emailtest.AtGreeting, Code: 421, Enhanced: "4.3.2", Message: "Service not available"}, StageConnect, 421},
		{"dropped at MAIL", emailtest.Options{}, &emailtest.Fault{At: emailtest.AtMail, Drop: true}, StageMail, 0},
		{"dropped at RCPT", emailtest.Options{}, &emailtest.Fault{At: emailtest.AtRcpt, Drop: true}, StageRcpt, 0},
		{"MAIL reply slower than the timeout", emailtest.Options{Latency: time.Minute}, nil, StageMail, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := emailtest.NewServer(t, tc.opts)
			if tc.fault != nil {
				s.Script(*tc.fault)
			}
			cfg := configFor(s)
			cfg.Timeout = 300 * time.Millisecond
			err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
			e := errOf(t, err)
			t.Log(err)
			if e.Stage != tc.stage || e.Code != tc.code || !e.Temporary() || e.Unconfirmed {
				t.Fatalf("error %v: stage %q code %d temporary %v", err, e.Stage, e.Code, e.Temporary())
			}
			if s.Count() != 0 {
				t.Fatal("a message was received")
			}
			if tc.opts.Latency == 0 {
				// (A server still sleeping on its reply notices the close
				// only when the sleep ends.)
				waitClosed(t, s)
			}
		})
	}
}

func TestRender(t *testing.T) {
	m := newMailer(t, Config{Host: "smtp.example.com", Username: "u", Password: "p", From: "it@msp.example"})
	w := welcome("jdoe")
	w.DisplayName = ""
	subject, text, html, err := m.Render(w)
	if err != nil {
		t.Fatal(err)
	}
	// Without a display name the greeting uses the username.
	if subject != "Acme Corp: set up your password self-service" || !strings.Contains(text, "Hello jdoe,") || !strings.Contains(html, "<p>Hello jdoe,</p>") {
		t.Fatalf("subject %q\ntext %s\nhtml %s", subject, text, html)
	}
	w.EnrollmentURL = "ftp://x"
	if _, _, _, err := m.Render(w); err == nil || !strings.Contains(err.Error(), "customer acme") {
		t.Fatalf("bad link: %v", err)
	}
}

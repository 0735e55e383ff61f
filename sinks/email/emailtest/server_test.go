package emailtest

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const sample = "From: \"MSP IT\" <it@msp.example>\r\n" +
	"To: \"Jane Doe\" <jane@acme.example>\r\n" +
	"Subject: =?UTF-8?q?Bienvenue_=C3=A0_Acme?=\r\n" +
	"Message-ID: <welcome.1@autoimport.invalid>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Hello Jane, enrol at https://reset.example/=\r\nenrol\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SGVsbG8gSmFuZTwvcD4=\r\n" +
	"--b1--\r\n"

// submit sends one message the way a submission client does.
func submit(t *testing.T, s *Server, user, pass string) error {
	t.Helper()
	c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return err
	}
	return c.SendMail("it@msp.example", []string{"jane@acme.example"}, strings.NewReader(sample))
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestCaptureAndParse(t *testing.T) {
	dir := t.TempDir()
	s := NewServer(t, Options{Dir: dir})
	if err := submit(t, s, s.Username(), s.Password()); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 {
		t.Fatalf("Count() = %d", s.Count())
	}
	m := s.Messages()[0]
	want := Message{
		MailFrom: "it@msp.example", From: `"MSP IT" <it@msp.example>`, To: `"Jane Doe" <jane@acme.example>`,
		Subject: "Bienvenue à Acme", MessageID: "<welcome.1@autoimport.invalid>",
		Text: "Hello Jane, enrol at https://reset.example/enrol", HTML: "<p>Hello Jane</p>",
	}
	if m.MailFrom != want.MailFrom || m.From != want.From || m.To != want.To || m.Subject != want.Subject ||
		m.MessageID != want.MessageID || m.Text != want.Text || m.HTML != want.HTML || m.ParseError != "" {
		t.Fatalf("captured\n%+v\nwant\n%+v", m, want)
	}
	if !m.Acked || !m.TLS || m.Login != DefaultUsername || len(m.RcptTo) != 1 || m.Seq != 1 {
		t.Fatalf("captured envelope %+v", m)
	}
	eml, err := os.ReadFile(filepath.Join(dir, "0001-_welcome.1_autoimport.invalid_.eml"))
	if err != nil || string(eml) != sample {
		t.Fatalf("eml file: %v\n%s", err, eml)
	}
	c := s.Counts()
	if c.Connections != 1 || c.StartTLS != 1 || c.AuthOK != 1 || c.Mail != 1 || c.Rcpt != 1 || c.Accepted != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestAuthAndTLSRules(t *testing.T) {
	s := NewServer(t, Options{})

	// Before STARTTLS: no AUTH offered, AUTH and MAIL refused.
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before TLS")
	}
	err = c.Auth(sasl.NewPlainClient("", s.Username(), s.Password()))
	if smtpCode(err) != 530 || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("AUTH before STARTTLS: %v", err)
	}
	if err := c.Mail("it@msp.example", nil); smtpCode(err) != 530 {
		t.Fatalf("MAIL before STARTTLS: %v", err)
	}
	if got := s.Counts().AuthRefused; got != 1 {
		t.Fatalf("AuthRefused = %d", got)
	}

	// After STARTTLS: bad credentials are 535; MAIL needs AUTH.
	c2, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if ok, mechs := c2.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Fatalf("AUTH after TLS: %v %q", ok, mechs)
	}
	if err := c2.Mail("it@msp.example", nil); smtpCode(err) != 530 {
		t.Fatalf("MAIL without AUTH: %v", err)
	}
	if err := c2.Auth(sasl.NewPlainClient("", s.Username(), "wrong")); smtpCode(err) != 535 {
		t.Fatalf("bad password: %v", err)
	}
	if err := c2.Auth(sasl.NewLoginClient(s.Username(), s.Password())); err != nil {
		t.Fatalf("AUTH LOGIN: %v", err)
	}
	c3 := s.Counts()
	if c3.AuthFailed != 1 || c3.AuthOK != 1 {
		t.Fatalf("counts %+v", c3)
	}
}

func TestImplicitAndPlainModes(t *testing.T) {
	imp := NewServer(t, Options{Mode: ImplicitTLS, Mechanisms: []string{"LOGIN"}})
	c, err := smtp.DialTLS(imp.Addr(), &tls.Config{RootCAs: imp.CertPool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered on an implicit TLS port")
	}
	if err := c.Auth(sasl.NewPlainClient("", imp.Username(), imp.Password())); smtpCode(err) != 504 {
		t.Fatalf("PLAIN when only LOGIN is offered: %v", err)
	}
	if err := c.Auth(sasl.NewLoginClient(imp.Username(), imp.Password())); err != nil {
		t.Fatal(err)
	}
	c.Close()

	plain := NewServer(t, Options{Mode: Plain})
	pc, err := smtp.Dial(plain.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.Auth(sasl.NewPlainClient("", plain.Username(), plain.Password())); err == nil {
		t.Fatal("a plain relay accepted AUTH")
	}
	if err := pc.SendMail("it@msp.example", []string{"jane@acme.example"}, strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	if m := plain.Messages(); len(m) != 1 || m[0].TLS || m[0].Login != "" {
		t.Fatalf("plain relay messages %+v", m)
	}
	if _, err := Start(Options{Mechanisms: []string{"CRAM-MD5"}}); err == nil {
		t.Fatal("unsupported mechanism accepted")
	}
}

func TestScriptedFaults(t *testing.T) {
	s := NewServer(t, Options{})
	s.Script(
		Fault{At: AtMail, Code: 421, Enhanced: "4.7.0", Message: "Try again later"},
		Fault{At: AtRcpt, Code: 550, Enhanced: "5.1.1", Message: "No such user"},
		Fault{At: AtData, Code: 554, Message: "Message rejected"},
	)
	if s.Pending() != 3 {
		t.Fatalf("Pending() = %d", s.Pending())
	}
	for _, want := range []int{421, 550, 554} {
		err := submit(t, s, s.Username(), s.Password())
		if smtpCode(err) != want {
			t.Fatalf("want %d, got %v", want, err)
		}
	}
	if err := submit(t, s, s.Username(), s.Password()); err != nil {
		t.Fatalf("after the script: %v", err)
	}
	if c := s.Counts(); c.Rejected != 3 || c.Accepted != 1 || s.Count() != 1 {
		t.Fatalf("counts %+v, %d messages", c, s.Count())
	}

	s.DropAfterData()
	err := submit(t, s, s.Username(), s.Password())
	if err == nil || smtpCode(err) != 0 {
		t.Fatalf("drop after DATA: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[1].Acked || s.Counts().Dropped != 1 {
		t.Fatalf("dropped message not kept unacknowledged: %+v", msgs)
	}
	s.Reset()
	if s.Count() != 0 {
		t.Fatal("Reset kept messages")
	}
}

func TestConcurrentSubmissions(t *testing.T) {
	s := NewServer(t, Options{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := submit(t, s, s.Username(), s.Password()); err != nil {
				t.Error(err)
			}
			_ = s.Counts()
			_ = s.Messages()
		}()
	}
	wg.Wait()
	if s.Count() != 20 || s.Counts().Connections != 20 {
		t.Fatalf("%d messages, counts %+v", s.Count(), s.Counts())
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := parseMessage(raw) // must not panic
		if string(m.Raw) != string(raw) {
			t.Fatal("raw message not kept")
		}
	})
}

func TestGreetingFaults(t *testing.T) {
	for _, mode := range []Mode{StartTLS, ImplicitTLS, Plain} {
		t.Run(mode.String(), func(t *testing.T) {
			s := NewServer(t, Options{Mode: mode})
			s.Script(Fault{At: AtGreeting, Code: 421, Enhanced: "4.3.2", Message: "Too busy"}, Fault{At: AtGreeting, Drop: true})
			// dial connects and reads the greeting (go-smtp reads it lazily).
			dial := func() (*smtp.Client, error) {
				var c *smtp.Client
				var err error
				if mode == ImplicitTLS {
					c, err = smtp.DialTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
				} else {
					c, err = smtp.Dial(s.Addr())
				}
				if err != nil {
					return nil, err
				}
				if err := c.Hello("client.test"); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			}
			if _, err := dial(); smtpCode(err) != 421 {
				t.Fatalf("first connection: %v, want 421", err)
			}
			if _, err := dial(); err == nil || smtpCode(err) != 0 {
				t.Fatalf("second connection: %v, want a dropped connection", err)
			}
			c, err := dial()
			if err != nil {
				t.Fatalf("third connection: %v", err)
			}
			c.Close()
			if got := s.Counts(); got.Connections != 3 || got.Rejected != 1 || got.Dropped != 1 {
				t.Fatalf("counts %+v", got)
			}
		})
	}
}

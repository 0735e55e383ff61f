// Package email sends the welcome email over SMTP with go-mail: STARTTLS
// (required, never opportunistic) or implicit TLS, AUTH PLAIN or LOGIN,
// text and HTML bodies from templates the MSP may override, and a
// Message-ID that is stable per account so a retried send is recognisable.
//
// SMTP has no idempotency: when the connection drops after the message was
// handed over but before the server confirmed it, SendWelcome returns an
// *Error with Unconfirmed set, and the caller must not resend on its own.
// Every *Error answers errors.Is for the sinks.Mailer contract:
// sinks.ErrUnconfirmed, sinks.ErrNotSent (the relay certainly does not
// hold the message) and sinks.ErrRelayUnavailable (the relay, not this
// message, is why; see Error.NotSent and Error.RelayWide).
package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	gomail "github.com/wneessen/go-mail"
	"golang.org/x/time/rate"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/internal/loopback"
	"github.com/msp-tools/autoimport/sinks"
)

// The TLS modes of Config.TLS.
const (
	TLSStartTLS = "starttls" // port 587: plain connect, then STARTTLS, required
	TLSImplicit = "implicit" // port 465: TLS from the first byte
	TLSNone     = "none"     // a relay on this machine without TLS; needs AllowNoTLS and no credentials, and is dialled only at a loopback address
)

// Config is the SMTP relay and the message templates.
type Config struct {
	Host string
	// Port defaults to 587 for starttls, 465 for implicit and 25 for none.
	Port     int
	Username string
	// Password is the resolved password, or with Auth "xoauth2" the OAuth
	// access token; it never appears in a log line or an error.
	Password string
	// Auth is "plain" (the default), "login" or "xoauth2" (Microsoft 365
	// and Google with an OAuth access token in Password).
	Auth string
	// From is the sender, e.g. "Acme IT <it@msp.example>".
	From string
	// TLS is "starttls" (the default), "implicit" or "none".
	TLS string
	// AllowNoTLS permits TLS "none", for a relay on this machine: the
	// host is resolved when a message is sent and only a loopback address
	// (127.0.0.0/8, ::1) is dialled, whatever the host's name.
	AllowNoTLS bool
	// RootCAs verifies the server's certificate; the system roots when nil.
	RootCAs *x509.CertPool
	// Timeout bounds the connection and each SMTP command; 30 s by default.
	Timeout time.Duration
	// Subject is a text/template for the subject; DefaultSubject when empty.
	Subject string
	// TextTemplate and HTMLTemplate, when set, replace the embedded
	// templates (text/template and html/template, with TemplateData).
	// They are the templates themselves, not file names: the caller reads
	// the files (cmd/internal/connect reads them from AUTOIMPORT_SECRETS_DIR,
	// refusing one that holds autoimport's own secrets).
	TextTemplate, HTMLTemplate Template
	// Limiter, when set, paces sends; share one per SMTP credential (for
	// example rate.NewLimiter(rate.Every(2*time.Second), 1) keeps under
	// Microsoft 365's 30 messages a minute per mailbox).
	Limiter *rate.Limiter
	// Log receives one line per message sent or failed; none when nil.
	Log logrus.FieldLogger
}

// Mailer sends welcome emails; it implements sinks.Mailer and is safe for
// concurrent use (each send uses its own connection).
type Mailer struct {
	cfg  Config
	from *mail.Address
	addr string // host:port, for messages
	tmpl *templates
	auth gomail.SMTPAuthType
}

var _ sinks.Mailer = (*Mailer)(nil)

// New validates cfg and loads the templates.
func New(cfg Config) (*Mailer, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	if cfg.Host == "" || strings.ContainsAny(cfg.Host, " \t\r\n/") {
		return nil, fmt.Errorf("email: SMTP host %q is not a host name", cfg.Host)
	}
	cfg.TLS = strings.ToLower(strings.TrimSpace(cfg.TLS))
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	defaultPort := 0
	switch cfg.TLS {
	case TLSStartTLS:
		defaultPort = 587
	case TLSImplicit:
		defaultPort = 465
	case TLSNone:
		defaultPort = 25
		if !cfg.AllowNoTLS {
			return nil, fmt.Errorf("email: SMTP %s: tls \"none\" sends mail unencrypted; it is allowed only for a relay on this machine, when explicitly enabled", cfg.Host)
		}
		if cfg.Username != "" || cfg.Password != "" {
			return nil, fmt.Errorf("email: SMTP %s: credentials are never sent without TLS; use tls \"starttls\" or \"implicit\", or remove the username and password", cfg.Host)
		}
	default:
		return nil, fmt.Errorf("email: SMTP %s: tls must be \"starttls\", \"implicit\" or \"none\", not %q", cfg.Host, cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("email: SMTP %s: port %d is out of range", cfg.Host, cfg.Port)
	}
	m := &Mailer{addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, fmt.Errorf("email: SMTP %s: set both the username and the password, or neither", m.addr)
	}
	switch strings.ToLower(cfg.Auth) {
	case "", "plain":
		m.auth = gomail.SMTPAuthPlain
	case "login":
		m.auth = gomail.SMTPAuthLogin
	case "xoauth2":
		m.auth = gomail.SMTPAuthXOAUTH2
	default:
		return nil, fmt.Errorf("email: SMTP %s: auth must be \"plain\", \"login\" or \"xoauth2\", not %q", m.addr, cfg.Auth)
	}
	if cfg.Username == "" {
		m.auth = gomail.SMTPAuthNoAuth
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("email: SMTP %s: negative timeout", m.addr)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: SMTP %s: %w", m.addr, err)
	}
	m.from = from
	if m.tmpl, err = loadTemplates(cfg.Subject, cfg.TextTemplate, cfg.HTMLTemplate); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	m.cfg = cfg
	return m, nil
}

func parseFrom(s string) (*mail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("from address is not set")
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("from address is not valid UTF-8")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("from address %q: %w", s, err)
	}
	a.Name = oneLine(a.Name)
	return a, nil
}

// MessageID is the Message-ID of an account's welcome email, the same for
// every attempt: "<welcome.HASH@autoimport.invalid>" where HASH is derived
// from the customer and the account.
func MessageID(customerID, accountID string) string {
	return sinks.WelcomeMessageID(customerID, accountID)
}

// msgIDRe is a Message-ID without brackets: dot-atom "@" dot-atom.
var msgIDRe = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$`)

func cleanMessageID(id string) (string, error) {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if len(id) > 250 || !msgIDRe.MatchString(id) {
		return "", fmt.Errorf("message id %q is not of the form <local@domain>", strings.ToValidUTF8(id, "?"))
	}
	return id, nil
}

// message is one welcome, checked and rendered.
type message struct {
	to        *mail.Address
	messageID string
	rendered
}

// compose checks the welcome's fields and renders the templates. Every
// value that reaches a header is one line of valid UTF-8.
func (m *Mailer) compose(w sinks.Welcome) (*message, error) {
	for _, f := range []struct{ name, value string }{
		{"customer name", w.CustomerName}, {"recipient", w.To}, {"display name", w.DisplayName},
		{"username", w.Username}, {"enrollment link", w.EnrollmentURL}, {"message id", w.MessageID},
	} {
		if !utf8.ValidString(f.value) {
			return nil, fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	to, err := parseRecipient(w.To)
	if err != nil {
		return nil, err
	}
	if name := oneLine(w.DisplayName); name != "" {
		to.Name = name
	}
	link, err := checkLink(w.EnrollmentURL)
	if err != nil {
		return nil, err
	}
	id := w.MessageID
	if strings.TrimSpace(id) == "" {
		id = MessageID(w.Customer, strings.ToLower(to.Address))
	}
	if id, err = cleanMessageID(id); err != nil {
		return nil, err
	}
	d := TemplateData{
		CustomerName:  oneLine(w.CustomerName),
		DisplayName:   oneLine(w.DisplayName),
		Username:      oneLine(w.Username),
		Email:         to.Address,
		EnrollmentURL: link,
	}
	if d.CustomerName == "" {
		d.CustomerName = oneLine(w.Customer)
	}
	if d.DisplayName == "" {
		d.DisplayName = d.Username
	}
	r, err := m.tmpl.render(d)
	if err != nil {
		return nil, err
	}
	return &message{to: to, messageID: id, rendered: r}, nil
}

func parseRecipient(s string) (*mail.Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the account has no email address")
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("recipient %q contains a line break", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("recipient %q is not an email address: %w", s, err)
	}
	return &mail.Address{Address: a.Address}, nil
}

func checkLink(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("no self-serve enrollment link is configured")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("enrollment link %q is not an http(s) address", s)
	}
	return s, nil
}

// build makes the go-mail message.
func (m *Mailer) build(msg *message) *gomail.Msg {
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	gm.FromMailAddress(m.from)
	gm.ToMailAddress(msg.to)
	gm.Subject(msg.subject)
	gm.SetMessageIDWithValue(msg.messageID)
	gm.SetDate()
	gm.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	gm.SetUserAgent("autoimport")
	gm.SetBodyString(gomail.TypeTextPlain, msg.text)
	gm.AddAlternativeString(gomail.TypeTextHTML, msg.html)
	return gm
}

// Render returns the subject and bodies SendWelcome would send, without
// sending: for previews and template checks.
func (m *Mailer) Render(w sinks.Welcome) (subject, text, html string, err error) {
	msg, err := m.compose(w)
	if err != nil {
		return "", "", "", fmt.Errorf("email: customer %s: welcome email: %w", w.Customer, err)
	}
	return msg.subject, msg.text, msg.html, nil
}

// SendWelcome sends one welcome email. A failure is an *Error naming the
// SMTP host and the customer with the server's reply.
func (m *Mailer) SendWelcome(ctx context.Context, w sinks.Welcome) error {
	start := time.Now()
	msg, err := m.compose(w)
	if err != nil {
		return &Error{Host: m.addr, Customer: w.Customer, To: w.To, Stage: StageCompose, Err: err}
	}
	gm := m.build(msg)
	if m.cfg.Limiter != nil {
		if err := m.cfg.Limiter.Wait(ctx); err != nil {
			return &Error{Host: m.addr, Customer: w.Customer, To: msg.to.Address, Stage: StageWait, Err: err}
		}
	}
	if err := fence.Check(ctx); err != nil {
		return &Error{Host: m.addr, Customer: w.Customer, To: msg.to.Address, Stage: StageWait, Err: err}
	}
	if err := m.send(ctx, gm); err != nil {
		if e := m.classify(ctx, err, gm); e != nil {
			e.Customer, e.To = w.Customer, msg.to.Address
			m.logResult(w, msg, start, e)
			return e
		}
	}
	m.logResult(w, msg, start, nil)
	return nil
}

func (m *Mailer) logResult(w sinks.Welcome, msg *message, start time.Time, err *Error) {
	if m.cfg.Log == nil {
		return
	}
	l := m.cfg.Log.WithFields(logrus.Fields{
		"smtp": m.addr, "customer": w.Customer, "to": msg.to.Address,
		"message_id": "<" + msg.messageID + ">", "elapsed": time.Since(start).Round(time.Millisecond),
	})
	if err == nil {
		l.Info("welcome email sent")
		return
	}
	l = l.WithField("stage", string(err.Stage))
	if err.Code != 0 {
		l = l.WithField("reply", err.Code)
	}
	if err.Unconfirmed {
		l.WithError(err).Warn("welcome email unconfirmed")
		return
	}
	l.WithError(err).Warn("welcome email failed")
}

// send dials, upgrades, authenticates and hands the message over on one
// connection, closed when the caller's context ends.
func (m *Mailer) send(ctx context.Context, gm *gomail.Msg) error {
	if err := ctx.Err(); err != nil {
		return &dialError{err}
	}
	var (
		stopWatch func() bool
		raw       net.Conn
	)
	tlsConf := &tls.Config{ServerName: m.cfg.Host, RootCAs: m.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	dialer := (&net.Dialer{}).DialContext
	if m.cfg.TLS == TLSNone {
		// Mail in clear goes to this machine only, by the address
		// dialled: a name such as relay.localhost may resolve elsewhere.
		dialer = noTLSDialer.DialContext
	}
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = c
		if m.cfg.TLS == TLSImplicit {
			tc := tls.Client(c, tlsConf)
			if err := tc.HandshakeContext(dctx); err != nil {
				c.Close()
				return nil, &tlsError{err}
			}
			c = tc
		}
		// The caller's context, not the dial's, bounds the whole exchange.
		// The connection is returned as it is: go-mail recognises a
		// *tls.Conn as encrypted.
		stopWatch = context.AfterFunc(ctx, func() { c.Close() })
		return c, nil
	}
	defer func() {
		if stopWatch != nil {
			stopWatch()
		}
		// go-mail leaves the connection open when the greeting, STARTTLS
		// or AUTH fails; after QUIT this is a no-op.
		if raw != nil {
			raw.Close()
		}
	}()
	opts := []gomail.Option{
		gomail.WithPort(m.cfg.Port),
		gomail.WithTimeout(m.cfg.Timeout),
		gomail.WithTLSConfig(tlsConf),
		gomail.WithDialContextFunc(dial),
		gomail.WithSMTPAuth(m.auth),
	}
	switch m.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		// Implicit TLS is done by the dialer; "none" sends in the clear.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if m.auth != gomail.SMTPAuthNoAuth {
		opts = append(opts, gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	client, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return &dialError{err}
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return &dialError{err}
	}
	sendErr := client.SendWithSMTPClient(sc, gm)
	closeErr := client.CloseWithSMTPClient(sc)
	if sendErr != nil {
		return sendErr
	}
	if closeErr != nil && m.cfg.Log != nil {
		m.cfg.Log.WithField("smtp", m.addr).WithError(closeErr).Debug("closing the SMTP connection after a delivered message")
	}
	return nil
}

// noTLSDialer dials a relay with TLS "none"; tests give it their own
// name resolution.
var noTLSDialer = &loopback.Dialer{}

type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

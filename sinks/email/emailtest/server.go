// Package emailtest is an in-process SMTP submission server for tests, the
// sandbox and benchmarks. It listens on 127.0.0.1 with a self-signed
// certificate (trust it through CertPool), requires STARTTLS before AUTH
// (or speaks TLS from the first byte), accepts AUTH PLAIN and AUTH LOGIN,
// answers 535 to bad credentials, and captures every message it accepts.
// Scripted 4xx/5xx replies and a connection drop after DATA reproduce the
// failures a real relay produces.
package emailtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the server offers TLS.
type Mode int

// The TLS modes.
const (
	// StartTLS is message submission (port 587): a plain connection on
	// which STARTTLS is required before AUTH and before MAIL.
	StartTLS Mode = iota
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS
	// Plain is a local relay without TLS and without AUTH (port 25 inside
	// a trusted network). It does not offer STARTTLS.
	Plain
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case StartTLS:
		return "starttls"
	case ImplicitTLS:
		return "implicit"
	case Plain:
		return "plain"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Options configure a Server. The zero value is a STARTTLS submission
// server with the default credentials.
type Options struct {
	Mode Mode
	// Username and Password are the one valid login; defaults
	// DefaultUsername and DefaultPassword.
	Username, Password string
	// Token is the one valid OAuth access token for XOAUTH2 (with
	// Username); DefaultToken by default.
	Token string
	// Mechanisms are the AUTH mechanisms offered after TLS, from "PLAIN",
	// "LOGIN" and "XOAUTH2"; PLAIN and LOGIN by default.
	Mechanisms []string
	// Dir, when set, receives every accepted message as an .eml file.
	Dir string
	// Latency delays the replies to MAIL and to the end of DATA.
	Latency time.Duration
	// Domain is the name in the greeting; "emailtest.localhost" by default.
	Domain string
	// Addr is where to listen; "127.0.0.1:0" (a random port) by default.
	Addr string
	// ErrorLog receives the SMTP library's internal errors; discarded when nil.
	ErrorLog *log.Logger
}

// The default login.
const (
	DefaultUsername = "welcome@msp.example"
	DefaultPassword = "relay-pass-0001"
	DefaultToken    = "eyJ0eXAiOiJKV1QifQ.test-access-token"
)

// XOAuth2 is the name of the OAuth 2.0 bearer mechanism Microsoft 365 and
// Google accept.
const XOAuth2 = "XOAUTH2"

// Server is a running fake SMTP server. Its methods are safe for
// concurrent use.
type Server struct {
	opts  Options
	srv   *smtp.Server
	ln    net.Listener
	pool  *x509.CertPool
	tlsc  *tls.Config
	done  chan struct{}
	close sync.Once

	latency atomic.Int64 // time.Duration

	mu       sync.Mutex
	messages []Message
	faults   []Fault

	counts counters
}

type counters struct {
	open, connections, startTLS, authOK, authFailed, authRefused atomic.Int64
	mail, rcpt, accepted, rejected, dropped                      atomic.Int64
}

// Counts is what the server has seen so far.
type Counts struct {
	Connections int64 // TCP connections accepted
	Open        int64 // connections open now
	StartTLS    int64 // successful STARTTLS upgrades
	AuthOK      int64 // successful AUTH exchanges
	AuthFailed  int64 // 535 replies to bad credentials
	AuthRefused int64 // AUTH attempted before TLS or when not offered
	Mail        int64 // MAIL FROM commands that reached the transaction stage
	Rcpt        int64 // RCPT TO commands accepted
	Accepted    int64 // messages accepted with 250
	Rejected    int64 // scripted 4xx/5xx replies given
	Dropped     int64 // connections closed by a scripted Drop fault
}

// Start starts a server on loopback.
func Start(opts Options) (*Server, error) {
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if len(opts.Mechanisms) == 0 {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	for _, m := range opts.Mechanisms {
		if m != sasl.Plain && m != sasl.Login && m != XOAuth2 {
			return nil, fmt.Errorf("emailtest: unsupported AUTH mechanism %q", m)
		}
	}
	if opts.Domain == "" {
		opts.Domain = "emailtest.localhost"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("emailtest: message directory: %w", err)
		}
	}
	cert, pool, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("emailtest: certificate: %w", err)
	}
	s := &Server{opts: opts, pool: pool, done: make(chan struct{})}
	s.latency.Store(int64(opts.Latency))
	s.tlsc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("emailtest: listen: %w", err)
	}
	cl := &countingListener{Listener: ln, s: s}
	ln = cl
	srv := smtp.NewServer(s)
	srv.Domain = opts.Domain
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ReadTimeout = 60 * time.Second
	srv.WriteTimeout = 60 * time.Second
	// AUTH before TLS is refused by the session with 530, which lets the
	// server count it; the mechanisms are only advertised after TLS.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.ErrorLog != nil {
		srv.ErrorLog = opts.ErrorLog
	}
	switch opts.Mode {
	case StartTLS:
		srv.TLSConfig = s.tlsc
	case ImplicitTLS:
		cl.tls = s.tlsc
	case Plain:
	default:
		ln.Close()
		return nil, fmt.Errorf("emailtest: unknown mode %d", opts.Mode)
	}
	s.srv, s.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// NewServer starts a server for a test or benchmark and closes it when the
// test ends; it fails the test if the server cannot start.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Close stops the server and drops its connections.
func (s *Server) Close() error {
	var err error
	s.close.Do(func() {
		close(s.done)
		// Close the listener too: Serve may not have registered it yet.
		_ = s.ln.Close()
		err = s.srv.Close()
		if errors.Is(err, smtp.ErrServerClosed) {
			err = nil
		}
	})
	return err
}

// Addr is the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the address the server listens on, "127.0.0.1".
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Mode is the server's TLS mode.
func (s *Server) Mode() Mode { return s.opts.Mode }

// Username is the valid login name.
func (s *Server) Username() string { return s.opts.Username }

// Password is the valid password.
func (s *Server) Password() string { return s.opts.Password }

// Token is the valid XOAUTH2 access token.
func (s *Server) Token() string { return s.opts.Token }

// CertPool trusts the server's self-signed certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// SetLatency changes the delay before the replies to MAIL and DATA.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Counts returns a snapshot of the counters.
func (s *Server) Counts() Counts {
	c := &s.counts
	return Counts{
		Connections: c.connections.Load(), Open: c.open.Load(), StartTLS: c.startTLS.Load(),
		AuthOK: c.authOK.Load(), AuthFailed: c.authFailed.Load(), AuthRefused: c.authRefused.Load(),
		Mail: c.mail.Load(), Rcpt: c.rcpt.Load(), Accepted: c.accepted.Load(),
		Rejected: c.rejected.Load(), Dropped: c.dropped.Load(),
	}
}

// Stage is the SMTP command a scripted fault answers.
type Stage string

// The stages a fault can be scripted at.
const (
	// AtGreeting replaces the 220 banner of the next connection with the
	// fault's reply and closes it, as a busy server does with 421.
	AtGreeting Stage = "GREETING"
	AtMail     Stage = "MAIL"
	AtRcpt     Stage = "RCPT"
	AtData     Stage = "DATA" // the reply to the final "." of DATA
)

// Fault is one scripted failure, used once by the next command of its stage.
type Fault struct {
	At Stage
	// Code is the reply code (4xx temporary, 5xx permanent), e.g. 451.
	Code int
	// Enhanced is the enhanced status code, e.g. "4.3.0"; derived from
	// Code's class when empty.
	Enhanced string
	// Message is the reply text.
	Message string
	// Drop closes the connection instead of replying. At DATA the whole
	// message is read first and kept, unacknowledged: the sender cannot
	// know whether it was delivered.
	Drop bool
}

// Script queues faults; each is used once, in order, by the next command
// of its stage on any connection.
func (s *Server) Script(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// DropAfterData makes the next message's connection drop after its final
// "." without a reply.
func (s *Server) DropAfterData() { s.Script(Fault{At: AtData, Drop: true}) }

// Pending is the number of scripted faults not used yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

func (s *Server) takeFault(at Stage) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.At == at {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

var enhancedRe = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})$`)

func (f Fault) smtpError() *smtp.SMTPError {
	e := &smtp.SMTPError{Code: f.Code, Message: f.Message}
	if e.Code == 0 {
		e.Code = 451
	}
	if e.Message == "" {
		e.Message = "scripted failure"
	}
	if m := enhancedRe.FindStringSubmatch(f.Enhanced); m != nil {
		for i := range 3 {
			e.EnhancedCode[i], _ = strconv.Atoi(m[i+1])
		}
	} else {
		e.EnhancedCode = smtp.EnhancedCode{e.Code / 100, 0, 0}
	}
	return e
}

// wait sleeps for the configured latency, or until the server closes.
func (s *Server) wait() {
	d := time.Duration(s.latency.Load())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// Messages returns a copy of the messages received, in arrival order,
// including ones whose connection was dropped after DATA (Acked false).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WithMessageID returns the messages received with this Message-ID
// (angle brackets included), e.g. to prove a welcome went out only once.
func (s *Server) WithMessageID(id string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.MessageID == id {
			out = append(out, m)
		}
	}
	return out
}

// Count is the number of messages received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Reset forgets the messages received and the faults not used yet; the
// counters keep running.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages, s.faults = nil, nil
}

func (s *Server) store(m Message) error {
	s.mu.Lock()
	m.Seq = len(s.messages) + 1
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	if s.opts.Dir == "" {
		return nil
	}
	name := filepath.Join(s.opts.Dir, fmt.Sprintf("%04d-%s.eml", m.Seq, fileSafe(m.MessageID)))
	return os.WriteFile(name, m.Raw, 0o644)
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileSafe(id string) string {
	s := unsafeFile.ReplaceAllString(id, "_")
	if len(s) > 80 {
		s = s[:80]
	}
	if s == "" || s == "_" {
		return "message"
	}
	return s
}

// countingListener counts connections, speaks implicit TLS when tls is
// set, and answers scripted greeting faults itself.
type countingListener struct {
	net.Listener
	s   *Server
	tls *tls.Config
}

func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.counts.connections.Add(1)
		l.s.counts.open.Add(1)
		c = &trackedConn{Conn: c, open: &l.s.counts.open}
		if l.tls != nil {
			c = tls.Server(c, l.tls)
		}
		f, ok := l.s.takeFault(AtGreeting)
		if !ok {
			return c, nil
		}
		if f.Drop {
			l.s.counts.dropped.Add(1)
		} else {
			l.s.counts.rejected.Add(1)
			e := f.smtpError()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		}
		_ = c.Close()
	}
}

// trackedConn counts itself out of the open connections once closed.
type trackedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

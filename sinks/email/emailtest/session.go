package emailtest

import (
	"crypto/subtle"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var (
	errTLSFirst = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errAuthReq  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errNoAuth   = &smtp.SMTPError{Code: 502, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "AUTH not available"}
	errDropped  = errors.New("connection dropped")
)

// fault applies a scripted fault of the stage, if one is queued.
func (ss *session) fault(at Stage) error {
	f, ok := ss.s.takeFault(at)
	if !ok {
		return nil
	}
	if f.Drop {
		ss.s.counts.dropped.Add(1)
		_ = ss.c.Conn().Close()
		return errDropped
	}
	ss.s.counts.rejected.Add(1)
	return f.smtpError()
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	if isTLS && s.opts.Mode == StartTLS {
		// go-smtp starts a new session after the upgrade.
		s.counts.startTLS.Add(1)
	}
	return &session{s: s, c: c}, nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string // authenticated login, "" before AUTH
	from string
	rcpt []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) tls() bool {
	_, ok := ss.c.TLSConnectionState()
	return ok
}

// AuthMechanisms lists the mechanisms, only once the connection is encrypted.
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Mode == Plain || !ss.tls() {
		return nil
	}
	return ss.s.opts.Mechanisms
}

// Auth starts one AUTH exchange.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	switch {
	case ss.s.opts.Mode == Plain:
		ss.s.counts.authRefused.Add(1)
		return nil, errNoAuth
	case !ss.tls():
		ss.s.counts.authRefused.Add(1)
		return nil, errTLSFirst
	case !slices.Contains(ss.s.opts.Mechanisms, mech):
		ss.s.counts.authRefused.Add(1)
		return nil, smtp.ErrAuthUnknownMechanism
	}
	check := func(username, password string) error {
		okUser := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.Username)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.opts.Password)) == 1
		if !okUser || !okPass {
			ss.s.counts.authFailed.Add(1)
			return smtp.ErrAuthFailed
		}
		ss.s.counts.authOK.Add(1)
		ss.user = username
		return nil
	}
	if mech == XOAuth2 {
		return &xoauth2Server{check: func(username, token string) error {
			okUser := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.Username)) == 1
			okTok := subtle.ConstantTimeCompare([]byte(token), []byte(ss.s.opts.Token)) == 1
			if !okUser || !okTok {
				ss.s.counts.authFailed.Add(1)
				return smtp.ErrAuthFailed
			}
			ss.s.counts.authOK.Add(1)
			ss.user = username
			return nil
		}}, nil
	}
	if mech == sasl.Plain {
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				ss.s.counts.authFailed.Add(1)
				return smtp.ErrAuthFailed
			}
			return check(username, password)
		}), nil
	}
	return &loginServer{check: check}, nil
}

// loginServer is the server side of the legacy LOGIN mechanism: it asks
// for the username, then the password, each base64-encoded by the
// transport.
type loginServer struct {
	step     int
	username string
	check    func(username, password string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if response == nil {
			return []byte("Username:"), false, nil
		}
		// The username came as the initial response.
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

// xoauth2Server checks "user=NAME\x01auth=Bearer TOKEN\x01\x01". A bad
// token gets a JSON error challenge first, as the big providers send, and
// then 535 once the client answers it.
type xoauth2Server struct {
	step   int
	failed error
	check  func(username, token string) error
}

func (x *xoauth2Server) Next(response []byte) (challenge []byte, done bool, err error) {
	switch x.step {
	case 0:
		x.step++
		if response == nil {
			return []byte{}, false, nil
		}
		fallthrough
	case 1:
		x.step = 2
		user, token, ok := parseXOAuth2(string(response))
		if !ok {
			return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed XOAUTH2 response"}
		}
		if x.failed = x.check(user, token); x.failed == nil {
			return nil, true, nil
		}
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`), false, nil
	}
	return nil, true, x.failed
}

func parseXOAuth2(s string) (user, token string, ok bool) {
	for _, kv := range strings.Split(s, "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = strings.TrimPrefix(kv, "user=")
		case strings.HasPrefix(kv, "auth=Bearer "):
			token = strings.TrimPrefix(kv, "auth=Bearer ")
		}
	}
	return user, token, user != "" && token != "" && strings.HasSuffix(s, "\x01\x01")
}

// Mail starts a transaction; TLS and AUTH come first on a submission port.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Mode != Plain {
		if !ss.tls() {
			return errTLSFirst
		}
		if ss.user == "" {
			return errAuthReq
		}
	}
	ss.s.counts.mail.Add(1)
	ss.s.wait()
	if err := ss.fault(AtMail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

// Rcpt adds a recipient.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.fault(AtRcpt); err != nil {
		return err
	}
	ss.s.counts.rcpt.Add(1)
	ss.rcpt = append(ss.rcpt, to)
	return nil
}

// Data receives the message.
func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.wait()
	f, faulted := ss.s.takeFault(AtData)
	if faulted && !f.Drop {
		ss.s.counts.rejected.Add(1)
		return f.smtpError()
	}
	m := parseMessage(raw)
	m.MailFrom, m.RcptTo, m.Login = ss.from, slices.Clone(ss.rcpt), ss.user
	m.TLS = ss.tls()
	m.ReceivedAt = time.Now().UTC()
	m.Acked = !faulted
	storeErr := ss.s.store(m)
	if faulted {
		ss.s.counts.dropped.Add(1)
		_ = ss.c.Conn().Close()
		return errDropped
	}
	if storeErr != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot write message: " + storeErr.Error()}
	}
	ss.s.counts.accepted.Add(1)
	return nil
}

// Reset ends the transaction.
func (ss *session) Reset() { ss.from, ss.rcpt = "", nil }

// Logout ends the session.
func (ss *session) Logout() error { return nil }

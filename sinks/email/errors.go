package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/msp-tools/autoimport/sinks"
)

// Stage is the step of the SMTP exchange that failed.
type Stage string

// The stages of a send.
const (
	StageCompose Stage = "compose"    // the welcome's fields or the templates; nothing was sent
	StageWait    Stage = "rate limit" // the context ended while waiting for the limiter; nothing was sent
	StageConnect Stage = "connect"    // TCP connect or greeting
	StageTLS     Stage = "tls"        // STARTTLS or the TLS handshake
	StageAuth    Stage = "auth"
	StageMail    Stage = "mail from"
	StageRcpt    Stage = "rcpt to"
	StageData    Stage = "data"
	// StageConfirm is the server's reply to the end of the message. An
	// error here without a reply code means the outcome is unknown.
	StageConfirm Stage = "confirm"
)

// Error is a failed welcome email.
type Error struct {
	Host     string // host:port
	Customer string
	To       string
	Stage    Stage
	// Code is the server's reply code (e.g. 535, 451), 0 when there was none.
	Code int
	// Enhanced is the enhanced status code (e.g. "5.7.8"), when given.
	Enhanced string
	// Reply is the server's reply line, e.g. "535 5.7.8 Authentication
	// failed", when there was one.
	Reply string
	// Unconfirmed means the message was handed over but the server's reply
	// never came: it may have been delivered. Do not resend automatically.
	Unconfirmed bool
	Err         error

	oauth bool // authenticated with XOAUTH2
}

// Error reads like "SMTP smtp.example.com:587: customer acme: welcome
// email to jane@acme.example: auth: 535 5.7.8 Authentication failed (check
// smtp username/password)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SMTP %s: customer %s: welcome email", e.Host, e.Customer)
	if e.To != "" {
		fmt.Fprintf(&b, " to %s", e.To)
	}
	if e.Reply != "" {
		fmt.Fprintf(&b, ": %s: server replied %s", e.Stage, e.Reply)
	} else {
		fmt.Fprintf(&b, ": %s: %v", e.Stage, e.Err)
	}
	if h := e.hint(); h != "" {
		fmt.Fprintf(&b, " (%s)", h)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports a failure worth retrying later in the run: a 4xx
// reply, or a connection that failed or timed out before the end of the
// message was sent. An unconfirmed send is never temporary, nor is a
// certificate, authentication or compose failure.
func (e *Error) Temporary() bool {
	if e.Unconfirmed {
		return false
	}
	if e.Code != 0 {
		return e.Code/100 == 4
	}
	switch e.Stage {
	case StageWait, StageConnect, StageMail, StageRcpt, StageData:
		return true
	}
	return false
}

// NotSent reports a failure after which the relay certainly does not hold
// the message, so that sending it again later cannot duplicate it: the
// caller's context ended before the connection (rate limit), the
// connection, TLS, AUTH or MAIL FROM failed, any step got a temporary
// (4xx) reply, or the connection was lost before the end of the message
// was sent. A 5xx reply to this recipient or to this message's content
// is not: that message is refused for good. Nor is a compose failure, nor
// an unconfirmed send.
func (e *Error) NotSent() bool {
	if e.Unconfirmed {
		return false
	}
	if e.Code/100 == 4 {
		return true
	}
	switch e.Stage {
	case StageWait, StageConnect, StageTLS, StageAuth, StageMail:
		return true
	case StageRcpt, StageData:
		// The connection was lost before the final "." went out.
		return e.Code == 0
	}
	return false
}

// RelayWide reports a failure that is the relay's (or autoimport's access
// to it) rather than this message's: every other message would fail the
// same way for now. It is a NotSent failure other than a rate-limit wait
// ended by the caller.
func (e *Error) RelayWide() bool {
	return e.NotSent() && e.Stage != StageWait
}

// Is maps the failure onto the sinks.Mailer contract: sinks.ErrUnconfirmed
// for an unconfirmed send, sinks.ErrNotSent when NotSent, and
// sinks.ErrRelayUnavailable when RelayWide.
func (e *Error) Is(target error) bool {
	switch target {
	case sinks.ErrUnconfirmed:
		return e.Unconfirmed
	case sinks.ErrNotSent:
		return e.NotSent()
	case sinks.ErrRelayUnavailable:
		return e.RelayWide()
	}
	return false
}

func (e *Error) hint() string {
	msg := strings.ToLower(fmt.Sprint(e.Err))
	switch {
	case e.Unconfirmed:
		return "the connection was lost after the message was handed over and before the server confirmed it; it may have been delivered: the attempt is unconfirmed and must not be resent automatically"
	case strings.Contains(msg, "5.7.139"):
		return "SMTP AUTH is disabled for this tenant or mailbox; enable authenticated SMTP for the sending mailbox"
	case e.Code == 535 && e.oauth:
		return "check the OAuth access token, and that the app may send as this mailbox"
	case e.Code == 535:
		return "check smtp username/password"
	case strings.Contains(msg, "5.7.60") || strings.Contains(msg, "sendasdenied"):
		return "the smtp username may not send as the From address"
	case e.Code == 530 && strings.Contains(msg, "starttls"):
		return "the server wants STARTTLS first; use tls \"starttls\""
	case e.Stage == StageTLS && strings.Contains(msg, "does not support starttls"):
		return "the server does not offer STARTTLS; use tls \"implicit\" on port 465, or a relay that supports it"
	case e.Stage == StageTLS && isCertError(e.Err):
		return "the server's certificate is not trusted: check the host name, or trust its CA"
	case e.Stage == StageAuth && e.Code == 0 && strings.Contains(msg, "not supported"):
		return "the server does not offer this AUTH mechanism; try auth \"login\" or \"plain\""
	case e.Code/100 == 4:
		return "temporary; try again later"
	}
	return ""
}

// IsUnconfirmed reports whether err is a send whose outcome is unknown.
func IsUnconfirmed(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Unconfirmed
}

// IsTemporary reports whether err is a temporary failure (see Error.Temporary).
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary()
}

func isCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cve)
}

var enhancedRe = regexp.MustCompile(`\b([245]\.\d{1,3}\.\d{1,3})\b`)

// quotedReplyRe finds a reply as net/textproto formats it: 451 "4.3.0 text".
var quotedReplyRe = regexp.MustCompile(`\b([2-5]\d\d) ("(?:[^"\\]|\\.)*")`)

// reply finds the server's reply in err: its code, enhanced code and line.
func reply(err error) (code int, enhanced, line string) {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, enhancedRe.FindString(te.Msg), oneLine(fmt.Sprintf("%d %s", te.Code, te.Msg))
	}
	// go-mail's SendError keeps the reply only in its text.
	if m := quotedReplyRe.FindStringSubmatch(err.Error()); m != nil {
		code, _ = strconv.Atoi(m[1])
		text, uerr := strconv.Unquote(m[2])
		if uerr != nil {
			text = m[2]
		}
		return code, enhancedRe.FindString(text), oneLine(m[1] + " " + text)
	}
	return 0, "", ""
}

// classify turns what go-mail returned into an *Error; nil when the
// message was delivered and only the goodbye failed.
func (m *Mailer) classify(ctx context.Context, err error, gm *gomail.Msg) *Error {
	e := &Error{Host: m.addr, Err: m.redact(err), oauth: m.auth == gomail.SMTPAuthXOAUTH2}
	e.Code, e.Enhanced, e.Reply = reply(err)
	if e.Reply != "" && m.cfg.Password != "" {
		e.Reply = strings.ReplaceAll(e.Reply, m.cfg.Password, "[redacted]")
	}
	var de *dialError
	var se *gomail.SendError
	switch {
	case errors.As(err, &de):
		var te *tlsError
		msg := err.Error()
		switch {
		case errors.As(err, &te) || isCertError(err) || strings.Contains(msg, "STARTTLS") || strings.Contains(msg, "tls:"):
			e.Stage = StageTLS
		case strings.Contains(msg, "SMTP AUTH") || strings.Contains(msg, "AUTH"):
			e.Stage = StageAuth
		default:
			e.Stage = StageConnect
		}
	case errors.As(err, &se):
		if gm.IsDelivered() {
			return nil
		}
		switch se.Reason {
		case gomail.ErrSMTPMailFrom:
			e.Stage = StageMail
		case gomail.ErrSMTPRcptTo:
			e.Stage = StageRcpt
		case gomail.ErrSMTPData, gomail.ErrWriteContent:
			e.Stage = StageData
		case gomail.ErrSMTPDataClose:
			e.Stage = StageConfirm
			// No reply code: the final "." went out and no answer came back.
			e.Unconfirmed = e.Code == 0
		case gomail.ErrConnCheck:
			e.Stage = StageConnect
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			// The message itself, before MAIL FROM: nothing was sent.
			e.Stage = StageCompose
		default:
			// A reason go-mail does not place: the message may have
			// been handed over, so without a reply it is unconfirmed.
			e.Stage = StageConfirm
			e.Unconfirmed = e.Code == 0
		}
	default:
		e.Stage = StageConnect
	}
	if ctxErr := ctx.Err(); ctxErr != nil && e.Code == 0 {
		e.Err = fmt.Errorf("%w: %w", ctxErr, e.Err)
	}
	return e
}

// redact removes the password from an error's text, should a server or a
// library ever echo it.
func (m *Mailer) redact(err error) error {
	if m.cfg.Password == "" || !strings.Contains(err.Error(), m.cfg.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), m.cfg.Password, "[redacted]"))
}

package email

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
)

// outcome is how a caller reads a failure through the sinks.Mailer
// contract.
type outcome struct{ notSent, relay, unconfirmed bool }

func outcomeOf(err error) outcome {
	return outcome{errors.Is(err, sinks.ErrNotSent), errors.Is(err, sinks.ErrRelayUnavailable), errors.Is(err, sinks.ErrUnconfirmed)}
}

var (
	relayDown   = outcome{notSent: true, relay: true} // pending; stop the run's emails
	refused     = outcome{}                           // failed for good, this message only
	unconfirmed = outcome{unconfirmed: true}          // may have been delivered: never resent
)

// Every stage and reply class maps onto one outcome: a failure before the
// relay accepted the message is not sent (and, but for a rate-limit wait,
// the relay's), a 5xx to this recipient or its content is a refusal, and
// a lost confirmation is unconfirmed.
func TestErrorOutcome(t *testing.T) {
	cases := []struct {
		stage       Stage
		code        int
		unconfirmed bool
		want        outcome
	}{
		{StageCompose, 0, false, refused},
		{StageWait, 0, false, outcome{notSent: true}},
		{StageConnect, 0, false, relayDown},
		{StageConnect, 421, false, relayDown},
		{StageConnect, 554, false, relayDown},
		{StageTLS, 0, false, relayDown},
		{StageTLS, 454, false, relayDown},
		{StageAuth, 535, false, relayDown},
		{StageAuth, 454, false, relayDown},
		{StageAuth, 0, false, relayDown},
		{StageMail, 451, false, relayDown},
		{StageMail, 550, false, relayDown}, // 5.7.60 SendAsDenied: the relay's configuration
		{StageMail, 0, false, relayDown},
		{StageRcpt, 450, false, relayDown},
		{StageRcpt, 550, false, refused},
		{StageRcpt, 0, false, relayDown}, // lost before DATA
		{StageData, 451, false, relayDown},
		{StageData, 554, false, refused},
		{StageData, 0, false, relayDown}, // lost before the final "."
		{StageConfirm, 452, false, relayDown},
		{StageConfirm, 554, false, refused},
		{StageConfirm, 0, true, unconfirmed},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %d", tc.stage, tc.code), func(t *testing.T) {
			e := &Error{Host: "smtp.example:587", Customer: "acme", Stage: tc.stage, Code: tc.code, Unconfirmed: tc.unconfirmed, Err: errors.New("x")}
			if got := outcomeOf(e); got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
			// Wrapped, as a caller may wrap it, it reads the same.
			if got := outcomeOf(fmt.Errorf("customer acme: %w", e)); got != tc.want {
				t.Fatalf("wrapped: %+v, want %+v", got, tc.want)
			}
			if e.NotSent() != tc.want.notSent || e.RelayWide() != tc.want.relay {
				t.Fatalf("NotSent %v RelayWide %v", e.NotSent(), e.RelayWide())
			}
		})
	}
}

// The same outcomes over the wire, against the fake relay.
func TestSendOutcomeOverTheWire(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) (*emailtest.Server, Config)
		want  outcome
	}{
		{"no STARTTLS", func(t *testing.T) (*emailtest.Server, Config) {
			s := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
			cfg := configFor(s)
			cfg.TLS = TLSStartTLS
			return s, cfg
		}, relayDown},
		{"AUTH refused 535", func(t *testing.T) (*emailtest.Server, Config) {
			s := emailtest.NewServer(t, emailtest.Options{})
			cfg := configFor(s)
			cfg.Password = "Wr0ng-Pa55word"
			return s, cfg
		}, relayDown},
		{"connection refused", func(t *testing.T) (*emailtest.Server, Config) {
			s := emailtest.NewServer(t, emailtest.Options{})
			cfg := configFor(s)
			s.Close()
			return s, cfg
		}, relayDown},
		{"451 at MAIL FROM", scripted(emailtest.Fault{At: emailtest.AtMail, Code: 451, Enhanced: "4.3.0"}), relayDown},
		{"450 at RCPT TO", scripted(emailtest.Fault{At: emailtest.AtRcpt, Code: 450, Enhanced: "4.2.1"}), relayDown},
		{"452 after DATA", scripted(emailtest.Fault{At: emailtest.AtData, Code: 452, Enhanced: "4.3.1"}), relayDown},
		{"550 at RCPT TO", scripted(emailtest.Fault{At: emailtest.AtRcpt, Code: 550, Enhanced: "5.1.1", Message: "User unknown"}), refused},
		{"554 after DATA", scripted(emailtest.Fault{At: emailtest.AtData, Code: 554, Enhanced: "5.6.0", Message: "Message content rejected"}), refused},
		{"drop after DATA", scripted(emailtest.Fault{At: emailtest.AtData, Drop: true}), unconfirmed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, cfg := tc.setup(t)
			err := newMailer(t, cfg).SendWelcome(context.Background(), welcome("jdoe"))
			if err == nil {
				t.Fatal("sent")
			}
			t.Log(err)
			if got := outcomeOf(err); got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
			// What is not sent never reached the server's mailbox.
			if tc.want.notSent && s.Count() != 0 {
				t.Fatalf("the server holds %d messages", s.Count())
			}
		})
	}
}

func scripted(f emailtest.Fault) func(t *testing.T) (*emailtest.Server, Config) {
	return func(t *testing.T) (*emailtest.Server, Config) {
		s := emailtest.NewServer(t, emailtest.Options{})
		s.Script(f)
		return s, configFor(s)
	}
}

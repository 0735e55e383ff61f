package email

import (
	"context"
	"errors"
	"testing"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
)

// A welcome email whose fence fails once it may go is not sent: the relay
// is never dialled, and the failure says the email was not sent (it stays
// pending) without blaming the relay.
func TestAFencedEmailIsNotSent(t *testing.T) {
	s := emailtest.NewServer(t, emailtest.Options{})
	m := newMailer(t, configFor(s))
	lost := errors.New("the lease ran out")
	err := m.SendWelcome(fence.With(context.Background(), func() error { return lost }), welcome("jdoe"))
	if !errors.Is(err, sinks.ErrNotSent) || !errors.Is(err, fence.ErrNotSent) || !errors.Is(err, lost) || errors.Is(err, sinks.ErrRelayUnavailable) {
		t.Fatalf("err %v; want not sent, for the fence's reason, not the relay's fault", err)
	}
	if c := s.Counts(); c.Connections != 0 || s.Count() != 0 {
		t.Fatalf("the relay saw %d connections and %d messages", c.Connections, s.Count())
	}
}

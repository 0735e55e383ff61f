package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sinks"
)

// heldLease is a lease held for an hour, whose time pause runs out the
// way a process paused past it would find it: no timer has fired.
func heldLease(t *testing.T) (l *Lease, pause func()) {
	ctx, lose := context.WithCancelCause(context.Background())
	t.Cleanup(func() { lose(nil) })
	l = &Lease{customer: "acme", ttl: time.Minute, ctx: ctx, lose: lose, until: time.Now().Add(time.Hour)}
	return l, func() {
		l.mu.Lock()
		l.until = time.Now().Add(-time.Second)
		l.mu.Unlock()
	}
}

// fencedSink stands for a client that waits inside its call (a rate
// limiter, a Retry-After) and then asks the call's fence before it
// sends, as the HTTP, LDAP, SMTP and Technician Vault clients do: while it
// waits, the process is paused past its lease.
type fencedSink struct {
	pause func()
	sent  int
}

func (f *fencedSink) send(ctx context.Context) error {
	f.pause()
	if err := fence.Check(ctx); err != nil {
		return err
	}
	f.sent++
	return nil
}

func (f *fencedSink) Name() string { return "Fenced vault" }
func (f *fencedSink) Index(context.Context, sinks.VaultScope) (*sinks.VaultIndex, error) {
	return sinks.NewVaultIndex(nil), nil
}
func (f *fencedSink) Create(ctx context.Context, _ sinks.VaultScope, _ sinks.NewVaultEntry) (sinks.VaultEntry, error) {
	return sinks.VaultEntry{Ref: "1"}, f.send(ctx)
}
func (f *fencedSink) SendWelcome(ctx context.Context, _ sinks.Welcome) error {
	if err := f.send(ctx); err != nil {
		return fmt.Errorf("%w: %w", sinks.ErrNotSent, err)
	}
	return nil
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// Every call an import, a welcome email or a rotation makes to an outside
// system carries the customer's lease as its fence: a call that waits
// past the lease sends nothing.
func TestOutsideCallsCarryTheLease(t *testing.T) {
	t.Run("import", func(t *testing.T) {
		l, pause := heldLease(t)
		v := &fencedSink{pause: pause}
		conn := &Connections{Vaults: map[AccountType]sinks.Vault{EndUser: v}, VaultScope: map[AccountType]sinks.VaultScope{EndUser: {Customer: "acme"}}}
		p := AccountPlan{Type: EndUser, Action: ActionImport, Vault: SinkStep{Op: OpCreate}, work: &planWork{}}
		(&Importer{}).createInSinks(context.Background(), conn, &p, (&ImportOptions{Lease: l}).leaseLost, quietLog())
		if v.sent != 0 || p.Action != ActionError || p.Vault.Ref != "" {
			t.Errorf("sent %d, plan %s %q; want nothing sent and the account left for the next run", v.sent, p.Action, p.Vault.Ref)
		}
	})
	t.Run("welcome email", func(t *testing.T) {
		l, pause := heldLease(t)
		m := &fencedSink{pause: pause}
		s := &welcomeSender{c: Customer{ID: "acme"}, conn: &Connections{Mailer: m}, log: quietLog(), lease: l}
		j := s.job("ad", "1", "jdoe", "jdoe@acme.example", "Jane Doe")
		s.send(context.Background(), j)
		if m.sent != 0 || j.state != WelcomePending {
			t.Errorf("sent %d, state %s; want nothing sent and the email pending", m.sent, j.state)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		l, pause := heldLease(t)
		d := &fencedSink{pause: pause}
		p := &rotationPass{lease: l}
		err := p.call(context.Background(), d.send)
		if d.sent != 0 || !errors.Is(err, fence.ErrNotSent) {
			t.Errorf("sent %d, err %v; want nothing sent", d.sent, err)
		}
	})
}

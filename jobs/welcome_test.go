package jobs_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/email"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// smtpMailer is a real SMTP client for a fake relay; change adjusts its
// configuration (a wrong password, STARTTLS against a plain relay).
func smtpMailer(t *testing.T, s *emailtest.Server, change func(*email.Config)) sinks.Mailer {
	t.Helper()
	cfg := email.Config{Host: s.Host(), Port: s.Port(), Username: s.Username(), Password: s.Password(), From: "Desk <desk@msp.example>",
		TLS: email.TLSStartTLS, RootCAs: s.CertPool(), Timeout: 10 * time.Second}
	if change != nil {
		change(&cfg)
	}
	m, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func endUsers(ids ...int) []sources.Account {
	var as []sources.Account
	for _, i := range ids {
		as = append(as, user(i, jobs.EndUser))
	}
	return as
}

// messageID is the Message-ID of user i's welcome email at acme.
func messageID(i int) string {
	return sinks.WelcomeMessageID("acme", "ad:"+user(i, jobs.EndUser).ID)
}

// welcomeStates are the ledger's welcome states of acme's accounts, by
// username.
func welcomeStates(t *testing.T, s *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for u, a := range ledgerOf(t, s, "acme") {
		out[u] = a.Welcome
	}
	return out
}

func wantStates(t *testing.T, s *store.Store, want map[string]string) {
	t.Helper()
	got := welcomeStates(t, s)
	for u, w := range want {
		if got[u] != w {
			t.Fatalf("welcome states %v, want %s %s", got, u, w)
		}
	}
}

// sentOnce fails unless the relay holds exactly one message for each of
// the users.
func sentOnce(t *testing.T, relay *emailtest.Server, users ...int) {
	t.Helper()
	for _, i := range users {
		if n := len(relay.WithMessageID(messageID(i))); n != 1 {
			t.Fatalf("user%d got %d welcome emails, want 1", i, n)
		}
	}
}

func auditActions(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme"}) {
		if err != nil {
			t.Fatal(err)
		}
		out[e.Action]++
	}
	return out
}

// mentions counts how often the report names the relay outage, in its
// error and notices together.
func mentions(cr *jobs.CustomerReport, what string) int {
	n := strings.Count(cr.Error, what)
	for _, no := range cr.Notices {
		n += strings.Count(no, what)
	}
	return n
}

// A relay that cannot be used costs no user their welcome email: every
// email of the run stays pending, the outage is reported once as the
// customer's error, it is tried once per run, not once per user, and
// once the relay is fixed the next run sends each email exactly once.
func TestRelayOutageLeavesWelcomeEmailsPending(t *testing.T) {
	cases := []struct {
		name string
		// cause is what the relay's reply says, once in the report.
		cause string
		// broken is the mailer of a relay that cannot be used; fixed
		// the mailer once the MSP fixed it and the relay that receives
		// its mail; attempts counts what reached the broken relay.
		start func(t *testing.T) (broken, fixed sinks.Mailer, relay *emailtest.Server, attempts func() int64)
	}{
		{"no STARTTLS", "not offer STARTTLS", func(t *testing.T) (sinks.Mailer, sinks.Mailer, *emailtest.Server, func() int64) {
			plain := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
			good := emailtest.NewServer(t, emailtest.Options{})
			return smtpMailer(t, plain, func(c *email.Config) { c.Username, c.Password = "desk", "pw" }), smtpMailer(t, good, nil), good,
				func() int64 { return plain.Counts().Connections }
		}},
		{"AUTH refused 535", "535 ", func(t *testing.T) (sinks.Mailer, sinks.Mailer, *emailtest.Server, func() int64) {
			relay := emailtest.NewServer(t, emailtest.Options{})
			return smtpMailer(t, relay, func(c *email.Config) { c.Password = "Wr0ng-Pa55word" }), smtpMailer(t, relay, nil), relay,
				func() int64 { return relay.Counts().AuthFailed }
		}},
		{"connection refused", "connection refused", func(t *testing.T) (sinks.Mailer, sinks.Mailer, *emailtest.Server, func() int64) {
			gone := emailtest.NewServer(t, emailtest.Options{})
			broken := smtpMailer(t, gone, nil)
			gone.Close()
			good := emailtest.NewServer(t, emailtest.Options{})
			return broken, smtpMailer(t, good, nil), good, nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f := setup(t, s)
				acme := f.worlds["acme"]
				broken, fixed, relay, attempts := tc.start(t)
				acme.smtp = broken
				acme.ad.set(endUsers(1, 2, 3, 4, 5)...)
				once := jobs.RunOptions{Customers: []string{"acme"}}

				cr := customerReport(f.run(t, once), "acme")
				t.Log(cr.Error)
				if cr.Status != jobs.StatusFailed || cr.Counts.Imported != 5 || cr.Counts.Failed != 0 || cr.Counts.EmailsSent != 0 {
					t.Fatalf("outage run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
				}
				if mentions(cr, "welcome emails deferred") != 1 || mentions(cr, tc.cause) != 1 || !strings.Contains(cr.Error, "5 welcome emails are pending and are sent on the next run") {
					t.Fatalf("the outage is not reported once: error %q, notices %q", cr.Error, cr.Notices)
				}
				wantStates(t, s, map[string]string{"user1": "pending", "user2": "pending", "user3": "pending", "user4": "pending", "user5": "pending"})
				if a := auditActions(t, s); a["import.email.deferred"] != 5 || a["import.email.failed"] != 0 || a["import.email.sent"] != 0 {
					t.Fatalf("audit %v", a)
				}
				if attempts != nil && attempts() != 1 {
					t.Fatalf("the broken relay was tried %d times, want once", attempts())
				}

				// Still broken, one more user: one attempt, all six pending,
				// the five from before untried.
				acme.ad.set(endUsers(1, 2, 3, 4, 5, 6)...)
				cr = customerReport(f.run(t, once), "acme")
				if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "6 welcome emails are pending") || mentions(cr, "welcome emails deferred") != 1 {
					t.Fatalf("second outage run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
				}
				wantStates(t, s, map[string]string{"user1": "pending", "user6": "pending"})
				if attempts != nil && attempts() != 2 {
					t.Fatalf("the broken relay was tried %d times in two runs, want twice", attempts())
				}
				if relay.Count() != 0 {
					t.Fatalf("the relay holds %d messages", relay.Count())
				}

				// The relay is fixed. A dry run says what it would send and
				// sends nothing.
				acme.smtp = fixed
				rep, accounts := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}, DryRun: true})
				cr = customerReport(rep, "acme")
				if relay.Count() != 0 || mentions(cr, "6 welcome emails pending since an earlier run would be sent") != 1 {
					t.Fatalf("dry run: %d messages, notices %q", relay.Count(), cr.Notices)
				}
				for _, p := range accounts["acme"] {
					if p.WelcomeMail.Op != jobs.OpSend || p.WelcomeMail.State != "pending" {
						t.Fatalf("dry run plan of %s: %+v", p.Username, p.WelcomeMail)
					}
				}
				wantStates(t, s, map[string]string{"user1": "pending", "user6": "pending"})

				cr = customerReport(f.run(t, once), "acme")
				if cr.Status != jobs.StatusOK || cr.Error != "" || cr.Counts.EmailsSent != 6 || cr.Counts.AlreadyImported != 6 {
					t.Fatalf("after the fix: %s %q %+v", cr.Status, cr.Error, cr.Counts)
				}
				sentOnce(t, relay, 1, 2, 3, 4, 5, 6)
				wantStates(t, s, map[string]string{"user1": "sent", "user2": "sent", "user3": "sent", "user4": "sent", "user5": "sent", "user6": "sent"})
				if a := auditActions(t, s); a["import.email.sent"] != 6 {
					t.Fatalf("audit %v", a)
				}

				// Nothing is sent again: not by a run, nor by sending the
				// ledger's accounts directly.
				cr = customerReport(f.run(t, once), "acme")
				var rows []jobs.ImportedAccount
				for _, a := range ledgerOf(t, s, "acme") {
					rows = append(rows, a)
				}
				im := &jobs.Importer{Store: s, Log: f.runner.Log}
				tn, _ := s.LoadTenant(context.Background())
				c, _ := tn.Customer("acme")
				conn, _ := f.runner.Connector.Connect(context.Background(), tn, c)
				res := im.SendPendingWelcomes(context.Background(), c, rows, conn, nil)
				if cr.Counts.EmailsSent != 0 || res.Sent != 0 || res.Skipped != 6 || relay.Count() != 6 {
					t.Fatalf("resent: run %+v, direct %+v, relay holds %d", cr.Counts, res, relay.Count())
				}
				if _, err := jobs.VerifyAudit(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// A temporary refusal (451 at MAIL FROM) leaves the run's emails pending;
// the next run sends them, but not to an account disabled meanwhile,
// whose email waits until the account is back.
func TestTemporaryRefusalLeavesWelcomeEmailsPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		relay := emailtest.NewServer(t, emailtest.Options{})
		acme.smtp = smtpMailer(t, relay, nil)
		relay.Script(emailtest.Fault{At: emailtest.AtMail, Code: 451, Enhanced: "4.3.0", Message: "Mail server temporarily unavailable"})
		acme.ad.set(endUsers(1, 2, 3, 4)...)
		once := jobs.RunOptions{Customers: []string{"acme"}}

		cr := customerReport(f.run(t, once), "acme")
		if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "451 4.3.0") || !strings.Contains(cr.Error, "4 welcome emails are pending") || cr.Counts.EmailsSent != 0 {
			t.Fatalf("451 run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		wantStates(t, s, map[string]string{"user1": "pending", "user2": "pending", "user3": "pending", "user4": "pending"})
		if c := relay.Counts(); c.Mail != 1 || relay.Count() != 0 {
			t.Fatalf("relay %+v, %d messages: want one MAIL FROM and no message", c, relay.Count())
		}

		disabled := user(2, jobs.EndUser)
		disabled.SkipReason = "disabled (userAccountControl 514)"
		acme.ad.set(user(1, jobs.EndUser), disabled, user(3, jobs.EndUser), user(4, jobs.EndUser))
		cr = customerReport(f.run(t, once), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.EmailsSent != 3 {
			t.Fatalf("next run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		sentOnce(t, relay, 1, 3, 4)
		if n := len(relay.WithMessageID(messageID(2))); n != 0 {
			t.Fatalf("the disabled user2 got %d welcome emails", n)
		}
		if l := ledgerOf(t, s, "acme")["user2"]; l.Welcome != "pending" || l.State != "disabled" {
			t.Fatalf("user2: welcome %s, state %s", l.Welcome, l.State)
		}

		acme.ad.set(endUsers(1, 2, 3, 4)...)
		cr = customerReport(f.run(t, once), "acme")
		if cr.Counts.EmailsSent != 1 {
			t.Fatalf("user2 back: %+v", cr.Counts)
		}
		sentOnce(t, relay, 1, 2, 3, 4)
		wantStates(t, s, map[string]string{"user1": "sent", "user2": "sent", "user3": "sent", "user4": "sent"})
	})
}

// A permanent refusal of one recipient (550 at RCPT TO) fails that email
// alone, for good: the run's other emails are sent, and it is never
// sent again.
func TestRefusedRecipientFailsThatEmailOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		relay := emailtest.NewServer(t, emailtest.Options{})
		acme.smtp = smtpMailer(t, relay, nil)
		relay.Script(emailtest.Fault{At: emailtest.AtRcpt, Code: 550, Enhanced: "5.1.1", Message: "Recipient address rejected: User unknown"})
		acme.ad.set(endUsers(1, 2, 3, 4)...)
		once := jobs.RunOptions{Customers: []string{"acme"}}

		cr := customerReport(f.run(t, once), "acme")
		if cr.Status != jobs.StatusOK || cr.Error != "" || cr.Counts.EmailsSent != 3 || mentions(cr, "deferred") != 0 {
			t.Fatalf("550 run: %s %q %+v %q", cr.Status, cr.Error, cr.Counts, cr.Notices)
		}
		refused := 0
		for u, st := range welcomeStates(t, s) {
			switch st {
			case "failed":
				refused = int(u[len("user")] - '0')
			case "sent":
			default:
				t.Fatalf("%s: %s", u, st)
			}
		}
		if refused == 0 || auditActions(t, s)["import.email.failed"] != 1 {
			t.Fatalf("no email failed: %v", welcomeStates(t, s))
		}

		acme.ad.set(endUsers(1, 2, 3, 4, 5)...)
		cr = customerReport(f.run(t, once), "acme")
		if cr.Counts.EmailsSent != 1 {
			t.Fatalf("next run: %+v", cr.Counts)
		}
		if n := len(relay.WithMessageID(messageID(refused))); n != 0 {
			t.Fatalf("the refused user%d got %d emails", refused, n)
		}
		for i := 1; i <= 5; i++ {
			if i != refused {
				sentOnce(t, relay, i)
			}
		}
		if st := welcomeStates(t, s)["user"+string(rune('0'+refused))]; st != "failed" {
			t.Fatalf("refused email is %s", st)
		}
	})
}

// A connection lost after DATA leaves the email attempted: it may have
// been delivered, so it is reported and never sent again, while the
// run's other emails go out.
func TestUnconfirmedWelcomeEmailIsNeverResent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		relay := emailtest.NewServer(t, emailtest.Options{})
		acme.smtp = smtpMailer(t, relay, nil)
		relay.DropAfterData()
		acme.ad.set(endUsers(1, 2, 3)...)
		once := jobs.RunOptions{Customers: []string{"acme"}}

		cr := customerReport(f.run(t, once), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.EmailsSent != 2 || mentions(cr, "deferred") != 0 {
			t.Fatalf("drop run: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		var unconfirmed string
		for u, st := range welcomeStates(t, s) {
			if st == "attempted" {
				unconfirmed = u
			} else if st != "sent" {
				t.Fatalf("%s: %s", u, st)
			}
		}
		if unconfirmed == "" || auditActions(t, s)["import.email.unconfirmed"] != 1 {
			t.Fatalf("no email unconfirmed: %v", welcomeStates(t, s))
		}

		cr = customerReport(f.run(t, once), "acme")
		sentOnce(t, relay, 1, 2, 3) // the dropped message too: the relay kept it
		if cr.Counts.EmailsSent != 0 || welcomeStates(t, s)[unconfirmed] != "attempted" || mentions(cr, "welcome email to "+unconfirmed+" ") != 1 {
			t.Fatalf("next run: %+v, states %v, notices %q", cr.Counts, welcomeStates(t, s), cr.Notices)
		}
	})
}

// lossMailer is a relay that works, and on its nth email makes the
// customer's lease lost and waits until the runner has said so; it notes
// every email and which were handed to it after that.
type lossMailer struct {
	mu        sync.Mutex
	n         int
	lose      func()
	said      <-chan struct{}
	to        []string
	afterLoss int
}

// losingRelay is a relay on whose 5th email the customer's lease is lost:
// the store to run with, the relay, and the logger whose hook tells the
// relay the loss is known.
func losingRelay(s *store.Store) (*losingStore, *lossMailer, *logrus.Logger) {
	ls := &losingStore{Store: s, creates: new(atomic.Int32)}
	lost := &lostHook{said: make(chan struct{})}
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.AddHook(lost)
	return ls, &lossMailer{lose: func() { ls.lose.Store(true) }, said: lost.said}, log
}

// stoppedAtLoss checks that no email of n went to the relay after the
// lease was lost, and that every one not sent is pending again. The
// emails go ApplyWorkers at a time: when the loss comes, each of the
// other senders may be between its look at the lease and its call, and
// hands that one email over.
func stoppedAtLoss(t *testing.T, s *store.Store, relay *lossMailer, n int) {
	t.Helper()
	if relay.afterLoss > jobs.ApplyWorkers-1 || relay.n >= n {
		t.Fatalf("%d of %d emails handed to the relay after the lease was lost (%d in all); at most %d were on their way", relay.afterLoss, n, relay.n, jobs.ApplyWorkers-1)
	}
	states := map[string]int{}
	for _, st := range welcomeStates(t, s) {
		states[st]++
	}
	if states[jobs.WelcomeSent] != relay.n || states[jobs.WelcomePending] != n-relay.n {
		t.Fatalf("welcome states %v after %d sends: every email not sent must be pending again", states, relay.n)
	}
}

// eachOnce checks that every user got exactly one welcome email.
func eachOnce(t *testing.T, relay *lossMailer, users []int) {
	t.Helper()
	got := map[string]int{}
	for _, to := range relay.to {
		got[to]++
	}
	for _, i := range users {
		if to := user(i, jobs.EndUser).Email; got[to] != 1 {
			t.Fatalf("%s got %d welcome emails, want 1", to, got[to])
		}
	}
}

func (m *lossMailer) SendWelcome(ctx context.Context, w sinks.Welcome) error {
	m.mu.Lock()
	m.n++
	nth := m.n
	select {
	case <-m.said:
		m.afterLoss++
	default:
	}
	m.to = append(m.to, w.To)
	m.mu.Unlock()
	if nth == 5 && m.lose != nil {
		m.lose()
		<-m.said
	}
	return nil
}

// Welcome emails pending since an earlier run stop when the customer's
// lease is lost, as the import does: no email is handed to the relay
// after the runner knows, none is left claimed and unsent (they are
// pending again), and the next run sends each of them exactly once.
func TestPendingWelcomeEmailsStopOnALostLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		const n = 200
		var users []int
		for i := range n {
			users = append(users, i)
		}
		acme.ad.set(endUsers(users...)...)
		acme.mail.fail = fmt.Errorf("421 try later: %w", sinks.ErrRelayUnavailable)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true})
		if st := welcomeStates(t, s); len(st) != n || st["user7"] != jobs.WelcomePending {
			t.Fatalf("after the outage: %d accounts, user7 %q", len(st), st["user7"])
		}

		// The relay is back; on its 5th email the lease is lost.
		ls, relay, log := losingRelay(s)
		acme.smtp = relay
		f.runner.Store, f.runner.LeaseTTL, f.runner.Log = ls, 30*time.Millisecond, log
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusFailed || !strings.Contains(cr.Error, "lease") {
			t.Fatalf("status %s, error %q", cr.Status, cr.Error)
		}
		stoppedAtLoss(t, s, relay, n)

		// The next run, under a lease that holds, sends the rest, once each.
		relay.lose = nil
		f.runner.Store, f.runner.LeaseTTL = s, time.Minute
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK {
			t.Fatalf("next run: %s %q", cr.Status, cr.Error)
		}
		eachOnce(t, relay, users)
		if len(relay.to) != n {
			t.Fatalf("%d emails for %d users", len(relay.to), n)
		}
	})
}

// A welcome roll-out (autoimport accounts welcome) stops handing emails to
// the relay once its lease is lost, as an import does: the roll-out fails
// naming the lease, the emails it did not send are pending again, and the
// next roll-out sends each of them once.
func TestWelcomeRollOutStopsOnALostLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		welcomeOff(t, s)
		acme := f.worlds["acme"]
		const n = 100
		var users []int
		for i := range n {
			users = append(users, i)
		}
		acme.ad.set(endUsers(users...)...)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true})

		// On the relay's 5th email the lease is lost. Its time is long
		// enough that a loaded machine renews it until then: a lease that
		// ran out first would stop the roll-out before any email, which
		// is right but not what this test looks at.
		ls, relay, log := losingRelay(s)
		acme.smtp = relay
		acc := &jobs.Accounts{Store: ls, Connector: f.runner.Connector, Log: log, Actor: "tech", LeaseTTL: 300 * time.Millisecond, Holder: "tech-1"}
		_, _, err := acc.Welcome(context.Background(), "acme", jobs.Selection{All: true}, false)
		if err == nil || !strings.Contains(err.Error(), "lease") {
			t.Fatalf("a roll-out that lost its lease: %v", err)
		}
		stoppedAtLoss(t, s, relay, n)

		// The next roll-out, under a lease that holds, sends the rest.
		relay.lose = nil
		sentBefore := relay.n
		// The same technician again: the lease row its lost lease left is
		// its own (another autoimport would wait for it to run out).
		acc = &jobs.Accounts{Store: s, Connector: f.runner.Connector, Log: log, Actor: "tech", LeaseTTL: time.Minute, Holder: "tech-1"}
		if _, res, err := acc.Welcome(context.Background(), "acme", jobs.Selection{All: true}, false); err != nil || res.Sent != n-sentBefore {
			t.Fatalf("next roll-out: %+v, %v; want %d sent", res, err, n-sentBefore)
		}
		eachOnce(t, relay, users)
	})
}

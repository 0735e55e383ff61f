package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/sirupsen/logrus"
)

// The states of an account's welcome email in the ledger
// (ImportedAccount.Welcome). An email is sent at most once: its attempt is
// recorded (attempted) before it is sent, and its outcome after.
const (
	// WelcomeNone: the account gets no welcome email.
	WelcomeNone = "none"
	// WelcomePending: the email is due and the relay has not accepted
	// it; a run sends it. Sending it cannot duplicate it: the relay
	// refused it, or could not be reached, before it was handed over.
	WelcomePending = "pending"
	// WelcomeAttempted: the email is being sent, or was handed over and
	// never confirmed; it may have been delivered. Reported for a person
	// to check; never sent again.
	WelcomeAttempted = "attempted"
	// WelcomeSent: the relay accepted the email.
	WelcomeSent = "sent"
	// WelcomeFailed: the relay refused the email for this recipient for
	// good (a 5xx reply to RCPT TO or to the message). Never sent again.
	WelcomeFailed = "failed"
)

// WelcomeResult counts what a round of welcome emails did.
type WelcomeResult struct {
	Sent        int `json:"sent"`
	Failed      int `json:"failed"`
	Unconfirmed int `json:"unconfirmed"`
	// Pending counts the emails left pending for a later run: refused by
	// the relay before it accepted them, or not tried once the relay was
	// known to be unavailable, or not reached because the round stopped.
	Pending int `json:"pending"`
	// Skipped counts the accounts whose email was no longer pending when
	// it was to be claimed (another run sent it meanwhile).
	Skipped int `json:"skipped"`
	// RelayDown is the failure that showed the relay unavailable (it
	// wraps sinks.ErrRelayUnavailable); nil when the relay was usable.
	RelayDown error `json:"-"`
}

func (r *WelcomeResult) add(state string) {
	switch state {
	case WelcomeSent:
		r.Sent++
	case WelcomeFailed:
		r.Failed++
	case WelcomeAttempted:
		r.Unconfirmed++
	case WelcomePending:
		r.Pending++
	}
}

// SendPendingWelcomes sends the pending welcome emails of a customer's
// imported accounts, with what the ledger holds of them (email, display
// name, username). Each email is claimed in the ledger (pending to
// attempted) before it is sent, so that it is sent by one run only; an
// account whose email is no longer pending is skipped. The outcomes are
// recorded as a new account's are. Once the relay shows itself
// unavailable the rest stay pending, untried; so do they once the
// customer's lease l (nil: none) is lost, and every claim is written
// fenced by it (see fenced; the outcomes of claimed emails are recorded
// regardless, see sendAll). The caller chooses the accounts: an
// import pass passes those still active in their source.
func (im *Importer) SendPendingWelcomes(ctx context.Context, c Customer, accounts []ImportedAccount, conn *Connections, l *Lease) WelcomeResult {
	s := im.newWelcomeSender(c, conn)
	s.lease = l
	res := s.sendPending(ctx, ctx, accounts)
	res.RelayDown = s.relayDown()
	return res
}

// welcomeSender sends one customer's welcome emails during a run and
// records their outcomes. It keeps the first relay-wide failure: after
// it, the run's other emails are left pending without trying, so an
// outage costs one attempt and is reported once.
type welcomeSender struct {
	im   *Importer
	c    Customer
	conn *Connections
	log  logrus.FieldLogger

	// lease, when set, is the customer's lease: once it is lost no email
	// is handed to the relay (see send), and every claim is written
	// fenced by it.
	lease *Lease

	mu sync.Mutex
	// down is the first relay-wide failure of the run.
	down error
	// proven: the relay has accepted a message, or refused one
	// recipient, in this run: it is up and emails may go in parallel.
	proven bool
	// total counts every outcome of the run.
	total WelcomeResult
}

func (im *Importer) newWelcomeSender(c Customer, conn *Connections) *welcomeSender {
	var log logrus.FieldLogger = im.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	return &welcomeSender{im: im, c: c, conn: conn, log: log.WithField("customer", c.ID)}
}

// lost says why the customer's lease was lost, nil while it holds or
// without one.
func (s *welcomeSender) lost() error { return s.lease.Lost() }

func (s *welcomeSender) relayDown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *welcomeSender) isProven() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proven
}

// welcomeJob is one email whose attempt is on record, and its outcome.
type welcomeJob struct {
	source, id, username string
	w                    sinks.Welcome
	state, action, doc   string
}

func (s *welcomeSender) job(source, id, username, to, displayName string) *welcomeJob {
	return &welcomeJob{source: source, id: id, username: username, w: sinks.Welcome{Customer: s.c.ID, CustomerName: s.c.Name, To: to, DisplayName: displayName,
		Username: username, EnrollmentURL: s.conn.EnrollmentURL, MessageID: sinks.WelcomeMessageID(s.c.ID, source+":"+id)}}
}

// sendBatch sends the welcome emails of a recorded batch of new accounts,
// whose attempts the batch's transaction holds, and records their
// outcomes in the plans and the ledger.
func (s *welcomeSender) sendBatch(ctx context.Context, batch []AccountPlan) {
	var jobs []*welcomeJob
	var plans []*AccountPlan
	for i := range batch {
		p := &batch[i]
		if p.Action != ActionImport || p.WelcomeMail.Op != OpSend {
			continue
		}
		a := p.work.account
		jobs = append(jobs, s.job(p.Source, p.ID, a.Username, a.Email, a.DisplayName))
		plans = append(plans, p)
	}
	s.sendAll(ctx, jobs, nil)
	for i, j := range jobs {
		plans[i].WelcomeMail.State = j.state
	}
}

// sendPending claims and sends pending emails, a chunk at a time: one
// alone until the relay has shown itself up, then applyBatch at once.
// It stops claiming when stop or ctx ends or the relay is down, leaving
// the rest pending. The SMTP exchange of a claimed email and the record
// of its outcome are not cut short.
func (s *welcomeSender) sendPending(ctx, stop context.Context, accounts []ImportedAccount) WelcomeResult {
	var res WelcomeResult
	work := context.WithoutCancel(ctx)
	for len(accounts) > 0 {
		if ctx.Err() != nil || stop.Err() != nil || s.relayDown() != nil {
			s.leavePending(&res, len(accounts))
			break
		}
		n := applyBatch
		if !s.isProven() {
			n = 1
		}
		chunk := accounts[:min(n, len(accounts))]
		accounts = accounts[len(chunk):]
		jobs, skipped, err := s.claim(ctx, chunk)
		if err != nil {
			// Nothing of the chunk was claimed: all of it, and the
			// rest, stay pending.
			s.log.WithError(err).Warn("could not claim pending welcome emails; they stay pending")
			s.leavePending(&res, len(chunk)+len(accounts))
			break
		}
		res.Skipped += skipped
		s.sendAll(work, jobs, &res)
	}
	return res
}

// leavePending counts n emails left pending, untried, in res and the run.
func (s *welcomeSender) leavePending(res *WelcomeResult, n int) {
	res.Pending += n
	s.mu.Lock()
	s.total.Pending += n
	s.mu.Unlock()
}

// claim records the attempts of pending emails (pending to attempted) in
// one transaction; an email that is no longer pending is skipped.
func (s *welcomeSender) claim(ctx context.Context, accounts []ImportedAccount) (jobs []*welcomeJob, skipped int, err error) {
	err = fenced(ctx, s.im.Store, s.lease, func(tx Tx) error {
		jobs, skipped = jobs[:0], 0
		for _, a := range accounts {
			ok, err := tx.SetWelcomeIf(ctx, s.c.ID, a.Source, a.SourceID, WelcomePending, WelcomeAttempted)
			if err != nil {
				return err
			}
			if !ok {
				skipped++
				continue
			}
			jobs = append(jobs, s.job(a.Source, a.SourceID, a.Username, a.Email, a.DisplayName))
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("customer %s: record the welcome emails' attempts: %w", s.c.ID, err)
	}
	return jobs, skipped, nil
}

// sendAll sends emails whose attempts are on record, the first alone
// while the relay is unproven, then applyWorkers at a time, and records
// their outcomes in one transaction. An email that could not be recorded
// stays attempted: it is never sent twice.
func (s *welcomeSender) sendAll(ctx context.Context, jobs []*welcomeJob, res *WelcomeResult) {
	if len(jobs) == 0 {
		return
	}
	rest := jobs
	if !s.isProven() {
		s.send(ctx, jobs[0])
		rest = jobs[1:]
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, applyWorkers)
	for _, j := range rest {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.send(ctx, j)
		})
	}
	wg.Wait()
	// The outcomes are recorded whether or not the lease still holds:
	// each row is this run's own claim (attempted), which no other run
	// changes, and is changed only while it still is. So an email handed
	// over just before the lease was lost is recorded sent, and one never
	// handed over goes back to pending, to be sent once by a run that
	// holds the lease.
	err := s.im.Store.Update(ctx, func(tx Tx) error {
		for _, j := range jobs {
			if j.state != WelcomeAttempted {
				ok, err := tx.SetWelcomeIf(ctx, s.c.ID, j.source, j.id, WelcomeAttempted, j.state)
				if err != nil {
					return err
				}
				if !ok {
					continue // not this run's claim any more: nothing to say about it
				}
			}
			if _, err := tx.AppendAudit(ctx, AuditEvent{At: s.im.now(), Actor: s.im.actor(), Action: j.action, Customer: s.c.ID, Subject: j.source + ":" + j.id, After: j.doc}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.WithError(err).Warn("could not record the welcome emails' outcomes; they stay 'attempted' and are not sent again")
		for _, j := range jobs {
			j.state = WelcomeAttempted
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		s.total.add(j.state)
		if res != nil {
			res.add(j.state)
		}
	}
}

// send sends one email, unless the relay is known to be down or the
// customer's lease was lost, and sets its outcome: sent; pending when the
// relay never accepted it (or it was not tried); failed when it was
// refused for this recipient; attempted when unconfirmed.
func (s *welcomeSender) send(ctx context.Context, j *welcomeJob) {
	about := map[string]string{"to": j.w.To, "message_id": j.w.MessageID}
	log := s.log.WithField("account", j.username)
	if down := s.relayDown(); down != nil {
		about["error"] = "not tried: " + down.Error()
		j.state, j.action, j.doc = WelcomePending, "import.email.deferred", doc(about)
		return
	}
	if lost := s.lost(); lost != nil {
		// Another autoimport may run the customer now. The email was
		// claimed (attempted) by this run and never handed over: it goes
		// back to pending, its claim being this run's own, and is sent
		// once, by a run that holds the lease.
		about["error"] = "not tried: " + lost.Error()
		j.state, j.action, j.doc = WelcomePending, "import.email.deferred", doc(about)
		return
	}
	// The lease is asked again once the mailer's rate limiter lets the
	// email go, right before the relay is dialled.
	err := s.conn.Mailer.SendWelcome(fence.With(ctx, s.lost), j.w)
	j.state, j.action = WelcomeSent, "import.email.sent"
	switch {
	case err == nil:
	case errors.Is(err, sinks.ErrUnconfirmed):
		j.state, j.action = WelcomeAttempted, "import.email.unconfirmed"
		log.WithError(err).Warn("welcome email unconfirmed: it may have been delivered and is not sent again")
	case errors.Is(err, sinks.ErrNotSent):
		j.state, j.action = WelcomePending, "import.email.deferred"
		log.WithError(err).Info("welcome email not sent; it stays pending for the next run")
	default:
		j.state, j.action = WelcomeFailed, "import.email.failed"
		log.WithError(err).Warn("welcome email refused; it is not sent again")
	}
	if err != nil {
		about["error"] = err.Error()
	}
	j.doc = doc(about)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, sinks.ErrRelayUnavailable):
		if s.down == nil {
			s.down = err
			s.log.WithError(err).Warn("the SMTP relay refused or could not be reached: this run's other welcome emails stay pending, untried, for the next run")
		}
	case !errors.Is(err, sinks.ErrNotSent):
		// Accepted, refused for this recipient, or handed over: the
		// relay works.
		s.proven = true
	}
}

// finishWelcomes sends, once the run's new accounts are applied, the
// welcome emails that earlier runs left pending for accounts still active
// in their source, and reports the run's email outcomes: a relay outage
// fails the customer once, with how many emails wait for the next run.
// A dry run only reports.
func (ps *pass) finishWelcomes(ctx context.Context, conn *Connections) {
	rep, n := ps.rep, len(ps.pending)
	stop := ps.opt.Stop
	if stop == nil {
		stop = ctx
	}
	if lease := ps.opt.Lease; lease != nil {
		// A lost lease stops the sends as a stop does.
		withLease, cancel := context.WithCancel(stop)
		defer cancel()
		defer context.AfterFunc(lease.Context(), cancel)()
		stop = withLease
	}
	ps.pendingRows = nil // those left are of accounts not active in their source
	slices.SortFunc(ps.pending, func(a, b ImportedAccount) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.SourceID, b.SourceID))
	})
	switch {
	case n == 0:
	case ps.opt.DryRun:
		rep.Notices = append(rep.Notices, fmt.Sprintf("%d welcome emails pending since an earlier run would be sent", n))
	case conn.Mailer == nil:
		rep.Notices = append(rep.Notices, fmt.Sprintf("%d welcome emails are pending, and no SMTP relay is configured (integrations.smtp): they are sent once one is", n))
	case stop.Err() != nil || ctx.Err() != nil:
		rep.Notices = append(rep.Notices, fmt.Sprintf("the run was stopped: %d welcome emails pending since an earlier run are sent next run", n))
	default:
		res := ps.welcome(conn).sendPending(ctx, stop, ps.pending)
		rep.Counts.EmailsSent += res.Sent
		if lost := ps.opt.leaseLost(); lost != nil && res.Pending > 0 {
			msg := fmt.Sprintf("%v: %d welcome emails pending since an earlier run were not sent; the next run sends them", lost, res.Pending)
			if rep.Error != "" {
				msg = rep.Error + "; " + msg
			}
			rep.Status, rep.Error = StatusFailed, msg
		}
	}
	ps.pending = nil
	if ps.mail == nil {
		return
	}
	ps.mail.mu.Lock()
	down, pending := ps.mail.down, ps.mail.total.Pending
	ps.mail.mu.Unlock()
	if down == nil {
		return
	}
	msg := fmt.Sprintf("customer %s: welcome emails deferred, the SMTP relay refused or could not be reached: %v; %d welcome emails are pending and are sent on the next run", ps.c.ID, down, pending)
	rep.Status = StatusFailed
	if rep.Error != "" {
		msg = rep.Error + "; " + msg
	}
	rep.Error = msg
}

// welcome is the pass's welcome sender, made on first use.
func (ps *pass) welcome(conn *Connections) *welcomeSender {
	if ps.mail == nil {
		ps.mail = ps.im.newWelcomeSender(ps.c, conn)
		ps.mail.lease = ps.opt.Lease
	}
	return ps.mail
}

// notePending keeps, while the ledger is read, what sending a pending
// welcome email needs; known moves those of accounts still active into
// the pass's pending list.
func (ps *pass) notePending(a ImportedAccount) {
	if a.Welcome != WelcomePending {
		return
	}
	a.Options = nil
	ps.pendingRows[ledgerKey{a.Source, a.SourceID}] = a
}

// duePending moves an account's pending welcome email, if it has one, to
// the emails this pass sends, and says so in its plan.
func (ps *pass) duePending(k ledgerKey, mail *EmailStep) {
	a, ok := ps.pendingRows[k]
	if !ok {
		return
	}
	delete(ps.pendingRows, k)
	ps.pending = append(ps.pending, a)
	mail.Op, mail.Reason = OpSend, "pending since an earlier run: sent after this run's new accounts"
}

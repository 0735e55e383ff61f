package connect_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/sirupsen/logrus"
)

// fakes is one customer's world over the real wire: a domain controller,
// IT Glue, ConnectWise and an SMTP relay, all on loopback.
type fakes struct {
	dc   *adtest.Server
	itg  *itgluetest.Server
	cw   *cwtest.Server
	smtp *emailtest.Server
}

func startFakes(t *testing.T) *fakes {
	t.Helper()
	dir := adtest.Generate(7, 40)
	f := &fakes{
		dc:   adtest.NewServer(t, adtest.Options{Directory: dir}),
		itg:  itgluetest.NewServer(itgluetest.Options{}),
		cw:   cwtest.NewServer(cwtest.Options{}),
		smtp: emailtest.NewServer(t, emailtest.Options{}),
	}
	t.Cleanup(func() { f.itg.Close(); f.cw.Close() })
	f.itg.AddOrganization(100, "Acme")
	// alice's entry matches; erin's has no category: a possible duplicate.
	f.itg.AddPassword(itgluetest.Password{OrganizationID: 100, Name: "Alice", Username: "alice"}, "Active Directory")
	f.itg.AddPassword(itgluetest.Password{OrganizationID: 100, Name: "Erin old", Username: "erin"}, "")
	f.cw.AddCompany(7, "Acme", "Acme Dental")
	f.cw.AddContact(cwtest.Contact{CompanyID: 7, FirstName: "A.", LastName: "Archer", Email: "alice.archer@example.test"})
	t.Setenv("E2E_AD_PASSWORD", f.dc.Password())
	t.Setenv("E2E_ITG_KEY", f.itg.APIKey)
	t.Setenv("E2E_CW_PUBLIC", f.cw.PublicKey)
	t.Setenv("E2E_CW_PRIVATE", f.cw.PrivateKey)
	t.Setenv("E2E_CW_CLIENT", f.cw.ClientID)
	t.Setenv("E2E_SMTP_USER", f.smtp.Username())
	t.Setenv("E2E_SMTP_PASSWORD", f.smtp.Password())
	return f
}

func (f *fakes) tenant(t *testing.T) *jobs.Tenant {
	base := f.dc.Directory().BaseDN
	y := fmt.Sprintf(`
integrations:
  itglue: {url: %q, api_key: env:E2E_ITG_KEY, rate_limit: 200/s}
  connectwise: {url: %q, company_id: %q, public_key: env:E2E_CW_PUBLIC, private_key: env:E2E_CW_PRIVATE, client_id: env:E2E_CW_CLIENT, rate_limit: 200/s}
  smtp: {host: %q, port: %d, tls: starttls, username: env:E2E_SMTP_USER, password: env:E2E_SMTP_PASSWORD, from: "Desk <desk@msp.example>", enrollment_url: "https://enroll.msp.example"}
policies:
  - name: Standard end users
    type: end-user
    default: true
    options: {vault_match: true, vault_create: true, psa_match: true, psa_create: true, welcome_email: true, self_serve: true}
customers:
  - id: acme
    name: Acme Dental
    vault: {itglue_organization_id: "100"}
    psa: {company_id: "7"}
    sources:
      ad:
        url: %q
        allow_plaintext: true
        bind_dn: %q
        bind_password: env:E2E_AD_PASSWORD
        base_dn: %q
        select: {groups: [%q], ous: [%q]}
`, f.itg.URL, f.cw.URL, f.cw.CompanyID, f.smtp.Host(), f.smtp.Port(), f.dc.URL(), f.dc.BindDN(), base, adtest.GroupAllStaff+","+base, adtest.OUBulk+","+base)
	tn, err := jobs.ParseTenantFile("e2e.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func runner(s *store.Store, f *fakes) *jobs.Runner {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	return &jobs.Runner{Store: s, Log: log, Concurrency: 2, Surge: jobs.SurgeThreshold{Max: 50, Percent: 20},
		Connector: &connect.Connector{TechVault: s, Log: log, SMTPRootCAs: f.smtp.CertPool()}}
}

func run(t *testing.T, r *jobs.Runner, opt jobs.RunOptions) *jobs.CustomerReport {
	t.Helper()
	cr, _ := runStream(t, r, opt)
	return cr
}

// runStream runs one customer and returns its report and every account's
// plan, as the run reported them.
func runStream(t *testing.T, r *jobs.Runner, opt jobs.RunOptions) (*jobs.CustomerReport, []jobs.AccountPlan) {
	t.Helper()
	var accounts []jobs.AccountPlan
	opt.OnAccount = func(_ string, p jobs.AccountPlan) { accounts = append(accounts, p) }
	rep, err := r.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep.Customers[0], accounts
}

func audits(t *testing.T, s *store.Store) int {
	n, err := jobs.VerifyAudit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEndToEndOverTheFakes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := startFakes(t)
		ctx := context.Background()
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "e2e"}).Apply(ctx, f.tenant(t)); err != nil {
			t.Fatal(err)
		}
		r := runner(s, f)

		// A dry run touches nothing.
		events := audits(t, s)
		dry, dryAccounts := runStream(t, r, jobs.RunOptions{DryRun: true})
		if dry.Status != jobs.StatusOK || f.itg.Count(itgluetest.KindCreatePassword) != 0 || f.cw.Count(cwtest.KindCreateContact) != 0 || f.smtp.Count() != 0 || audits(t, s) != events {
			t.Fatalf("dry run: %s %s; creates %d/%d, mails %d", dry.Status, dry.Error, f.itg.Count(itgluetest.KindCreatePassword), f.cw.Count(cwtest.KindCreateContact), f.smtp.Count())
		}

		first, firstAccounts := runStream(t, r, jobs.RunOptions{})
		n := first.Counts
		if first.Status != jobs.StatusOK || n.Imported != dry.Counts.Imported || n.Imported < 40 || n.VaultMatched != 1 || n.PossibleDuplicates != 1 || n.PSAMatched != 1 {
			t.Fatalf("first run: %s %s %+v\nnotices %q", first.Status, first.Error, n, first.Notices)
		}
		if got := int(f.itg.Count(itgluetest.KindCreatePassword)); got != n.VaultCreated || got != n.Imported-1 {
			t.Fatalf("IT Glue creates %d, report %d", got, n.VaultCreated)
		}
		if got := int(f.cw.Count(cwtest.KindCreateContact)); got != n.PSACreated {
			t.Fatalf("ConnectWise creates %d, report %d", got, n.PSACreated)
		}
		if f.smtp.Count() != n.EmailsSent || n.EmailsSent == 0 {
			t.Fatalf("SMTP got %d, report %d", f.smtp.Count(), n.EmailsSent)
		}
		byUser := map[string]jobs.AccountPlan{}
		for _, a := range firstAccounts {
			byUser[a.Username] = a
		}
		for user, want := range map[string]string{"alice": jobs.ActionImport, "erin": jobs.ActionImport, "bob": jobs.ActionImport, "carol": jobs.ActionImport, "frank": jobs.ActionSkip} {
			if byUser[user].Action != want {
				t.Errorf("%s: %s (%s), want %s", user, byUser[user].Action, byUser[user].Reason, want)
			}
		}
		if byUser["bob"].Type != jobs.Admin || byUser["alice"].Vault.Op != jobs.OpMatch || !strings.Contains(byUser["erin"].Vault.Warning, "possible duplicate") {
			t.Errorf("bob %+v\nalice %+v\nerin %+v", byUser["bob"], byUser["alice"].Vault, byUser["erin"].Vault)
		}
		// The dry run's plan is what the real run did.
		for _, d := range dryAccounts {
			if a := byUser[d.Username]; a.Action != d.Action || a.Vault.Op != d.Vault.Op || a.PSA.Op != d.PSA.Op || a.WelcomeMail.Op != d.WelcomeMail.Op {
				t.Errorf("%s: dry %s/%s/%s/%s, real %s/%s/%s/%s", d.Username, d.Action, d.Vault.Op, d.PSA.Op, d.WelcomeMail.Op, a.Action, a.Vault.Op, a.PSA.Op, a.WelcomeMail.Op)
			}
		}

		// The second run writes nothing anywhere.
		events = audits(t, s)
		itgTotal, cwTotal := f.itg.Total(), f.cw.Total()
		second := run(t, r, jobs.RunOptions{})
		if second.Counts.Imported != 0 || second.Counts.AlreadyImported != n.Imported || f.itg.Total() != itgTotal || f.cw.Total() != cwTotal || f.smtp.Count() != n.EmailsSent || audits(t, s) != events {
			t.Fatalf("second run: %+v; IT Glue requests +%d, ConnectWise +%d, audit +%d", second.Counts, f.itg.Total()-itgTotal, f.cw.Total()-cwTotal, audits(t, s)-events)
		}

		// A crash between the vault create and the record: ConnectWise
		// fails the contact create; the next run matches the entry.
		d := f.dc.Directory()
		d.AddUser(adtest.User{Parent: adtest.OUBulk + "," + d.BaseDN, SAM: "zoe", GivenName: "Zoe", Surname: "Zimmer", DisplayName: "Zoe Zimmer", Mail: "zoe@example.test", UAC: 512})
		f.cw.Inject(cwtest.Fault{Kind: cwtest.KindCreateContact, Times: 1, Status: 500})
		failed := run(t, r, jobs.RunOptions{})
		if failed.Status != jobs.StatusFailed || failed.Counts.Failed != 1 {
			t.Fatalf("crash run: %s %+v", failed.Status, failed.Counts)
		}
		retry, retryAccounts := runStream(t, r, jobs.RunOptions{})
		if retry.Status != jobs.StatusOK || retry.Counts.Imported != 1 || retry.Counts.VaultMatched != 1 || retry.Counts.VaultCreated != 0 {
			t.Fatalf("retry: %s %s %+v", retry.Status, retry.Error, retry.Counts)
		}
		zoes := 0
		for _, p := range f.itg.Passwords(100) {
			if p.Username == "zoe" {
				zoes++
			}
		}
		if zoes != 1 {
			t.Fatalf("IT Glue holds %d entries for zoe, want 1", zoes)
		}
		zoe := zoeID(retryAccounts)
		if zoe == "" {
			t.Fatal("the retry did not report zoe")
		}
		if got := len(f.smtp.WithMessageID(sinks.WelcomeMessageID("acme", "ad:"+zoe))); got > 1 {
			t.Fatalf("zoe got %d welcome emails", got)
		}
		audits(t, s)
	})
}

func zoeID(accounts []jobs.AccountPlan) string {
	for _, a := range accounts {
		if a.Username == "zoe" {
			return a.ID
		}
	}
	return ""
}

// The connector's mailer speaks the sinks.Mailer contract: a relay that
// cannot be used leaves the message not sent (and says it is the
// relay's), a refused recipient is neither, a lost confirmation is
// unconfirmed.
func TestMailerErrorsFollowTheContract(t *testing.T) {
	good := emailtest.NewServer(t, emailtest.Options{})
	noTLS := emailtest.NewServer(t, emailtest.Options{Mode: emailtest.Plain})
	t.Setenv("E2E_SMTP_USER", good.Username())
	t.Setenv("E2E_SMTP_PASSWORD", good.Password())
	mailer := func(s *emailtest.Server) sinks.Mailer {
		t.Helper()
		tn := &jobs.Tenant{Integrations: jobs.Integrations{SMTP: &jobs.SMTP{Host: s.Host(), Port: s.Port(), TLS: "starttls",
			Username: "env:E2E_SMTP_USER", Password: "env:E2E_SMTP_PASSWORD", From: "desk@msp.example", EnrollmentURL: "https://enroll.msp.example"}}}
		c := &connect.Connector{SMTPRootCAs: good.CertPool()}
		conn, err := c.Connect(context.Background(), tn, jobs.Customer{ID: "acme", Name: "Acme"})
		if err != nil {
			t.Fatal(err)
		}
		return conn.Mailer
	}
	w := sinks.Welcome{Customer: "acme", CustomerName: "Acme", To: "jane@acme.example", Username: "jane", EnrollmentURL: "https://enroll.msp.example",
		MessageID: sinks.WelcomeMessageID("acme", "ad:jane")}
	type outcome struct{ notSent, relay, unconfirmed bool }
	cases := []struct {
		name  string
		relay *emailtest.Server
		fault *emailtest.Fault
		want  outcome
	}{
		{"no STARTTLS", noTLS, nil, outcome{notSent: true, relay: true}},
		{"451 at MAIL FROM", good, &emailtest.Fault{At: emailtest.AtMail, Code: 451}, outcome{notSent: true, relay: true}},
		{"550 at RCPT TO", good, &emailtest.Fault{At: emailtest.AtRcpt, Code: 550, Enhanced: "5.1.1"}, outcome{}},
		{"drop after DATA", good, &emailtest.Fault{At: emailtest.AtData, Drop: true}, outcome{unconfirmed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				tc.relay.Script(*tc.fault)
			}
			err := mailer(tc.relay).SendWelcome(context.Background(), w)
			got := outcome{errors.Is(err, sinks.ErrNotSent), errors.Is(err, sinks.ErrRelayUnavailable), errors.Is(err, sinks.ErrUnconfirmed)}
			if err == nil || got != tc.want {
				t.Fatalf("error %v: %+v, want %+v", err, got, tc.want)
			}
		})
	}
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/sirupsen/logrus"
)

// memSource is a directory in memory.
type memSource struct {
	mu       sync.Mutex
	accounts []sources.Account
	// bindAs is the account the customer's bind_dn names in it, when a
	// test says which.
	bindAs *jobs.BindAccount
	// bindErr, when set, is how looking the bind account up fails.
	bindErr error
}

func (s *memSource) BindAccount(ctx context.Context) (jobs.BindAccount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bindErr != nil {
		return jobs.BindAccount{}, s.bindErr
	}
	if s.bindAs == nil {
		return jobs.BindAccount{}, fmt.Errorf("%w: bind_dn names no account of this directory", jobs.ErrNotFound)
	}
	return *s.bindAs, nil
}

func (s *memSource) set(as ...sources.Account) { s.mu.Lock(); s.accounts = as; s.mu.Unlock() }

func (s *memSource) Accounts(ctx context.Context, sel sources.Selection) iter.Seq2[sources.Account, error] {
	s.mu.Lock()
	as := append([]sources.Account(nil), s.accounts...)
	s.mu.Unlock()
	return func(yield func(sources.Account, error) bool) {
		for _, a := range as {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// memVault is a vault in memory that counts its calls.
type memVault struct {
	mu               sync.Mutex
	entries          map[string][]sinks.VaultEntry // by container
	next             int
	indexes, creates atomic.Int32
	failCreate       func(sinks.NewVaultEntry) error
	failWrite        func() error
	passwords        map[string]string // by ref, once written
	// whileIndexing, when set, runs at the start of each Index;
	// failIndex, when set, is then what Index fails with.
	whileIndexing func()
	failIndex     func() error
}

func newMemVault() *memVault { return &memVault{entries: map[string][]sinks.VaultEntry{}} }

func (v *memVault) Name() string { return "MemVault" }
func (v *memVault) Index(ctx context.Context, s sinks.VaultScope) (*sinks.VaultIndex, error) {
	v.indexes.Add(1)
	if v.whileIndexing != nil {
		v.whileIndexing()
	}
	if v.failIndex != nil {
		if err := v.failIndex(); err != nil {
			return nil, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return sinks.NewVaultIndex(append([]sinks.VaultEntry(nil), v.entries[s.Container]...)), nil
}
func (v *memVault) Create(ctx context.Context, s sinks.VaultScope, e sinks.NewVaultEntry) (sinks.VaultEntry, error) {
	v.creates.Add(1)
	if v.failCreate != nil {
		if err := v.failCreate(e); err != nil {
			return sinks.VaultEntry{}, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.next++
	ent := sinks.VaultEntry{Ref: fmt.Sprint(v.next), Name: e.Name, Username: e.Username, Category: e.Category}
	v.entries[s.Container] = append(v.entries[s.Container], ent)
	return ent, nil
}
func (v *memVault) count(container, username string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, e := range v.entries[container] {
		if strings.EqualFold(e.Username, username) {
			n++
		}
	}
	return n
}

type memPSA struct {
	mu               sync.Mutex
	contacts         []sinks.Contact
	indexes, creates atomic.Int32
	failCreate       error
}

func (p *memPSA) Name() string { return "MemPSA" }
func (p *memPSA) Index(ctx context.Context, s sinks.PSAScope) (*sinks.ContactIndex, error) {
	p.indexes.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return sinks.NewContactIndex(append([]sinks.Contact(nil), p.contacts...)), nil
}
func (p *memPSA) Create(ctx context.Context, s sinks.PSAScope, c sinks.NewContact) (sinks.Contact, error) {
	p.creates.Add(1)
	if p.failCreate != nil {
		return sinks.Contact{}, p.failCreate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ct := sinks.Contact{Ref: fmt.Sprintf("c%d", len(p.contacts)+1), FirstName: c.FirstName, LastName: c.LastName, Email: c.Email}
	p.contacts = append(p.contacts, ct)
	return ct, nil
}

type memMailer struct {
	mu   sync.Mutex
	sent []sinks.Welcome
	fail error
}

func (m *memMailer) SendWelcome(ctx context.Context, w sinks.Welcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, w)
	return m.fail
}

// world is one customer's directory and sinks in memory.
type world struct {
	ad, m365 *memSource
	vault    *memVault
	psa      *memPSA
	mail     *memMailer
	// smtp, when set, sends the welcome emails instead of mail.
	smtp sinks.Mailer
	// dir holds administrators' passwords, for rotation.
	dir *memDirectory
	// adminVault, when set, holds the administrators' entries instead of
	// vault (the Technician Vault).
	adminVault sinks.Vault
}

func newWorld() *world {
	return &world{ad: &memSource{}, m365: &memSource{}, vault: newMemVault(), psa: &memPSA{}, mail: &memMailer{}, dir: newMemDirectory()}
}

type connector struct{ worlds map[string]*world }

func (c connector) Connect(ctx context.Context, t *jobs.Tenant, cu jobs.Customer) (*jobs.Connections, error) {
	w := c.worlds[cu.ID]
	var mailer sinks.Mailer = w.mail
	if w.smtp != nil {
		mailer = w.smtp
	}
	conn := &jobs.Connections{Vaults: map[jobs.AccountType]sinks.Vault{jobs.EndUser: w.vault, jobs.Admin: w.vault},
		VaultScope: map[jobs.AccountType]sinks.VaultScope{jobs.EndUser: {Customer: cu.ID, Container: "org-" + cu.ID}, jobs.Admin: {Customer: cu.ID, Container: "org-" + cu.ID}},
		PSA:        w.psa, PSAScope: sinks.PSAScope{Customer: cu.ID, CompanyID: "1"}, Mailer: mailer, EnrollmentURL: "https://enroll.example"}
	conn.Directories = map[string]jobs.PasswordDirectory{"ad": w.dir}
	if w.adminVault != nil {
		conn.Vaults[jobs.Admin], conn.VaultScope[jobs.Admin] = w.adminVault, sinks.VaultScope{Customer: cu.ID, Container: cu.ID}
	}
	if cu.Sources.AD != nil {
		conn.AD = w.ad
	}
	if cu.Sources.M365 != nil {
		conn.M365 = w.m365
	}
	return conn, nil
}

func user(i int, typ jobs.AccountType) sources.Account {
	return sources.Account{Source: sources.KindAD, ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Username: fmt.Sprintf("user%d", i),
		UPN: fmt.Sprintf("user%d@acme.example", i), DisplayName: fmt.Sprintf("User %d", i), GivenName: "User", Surname: fmt.Sprint(i),
		Email: fmt.Sprintf("user%d@acme.example", i), Enabled: true, Domain: "ACME", Type: typ, TypeReason: "member of Staff"}
}

const tenantYAML = `
integrations:
  itglue: {url: "https://api.itglue.com", api_key: "env:K"}
  connectwise: {url: "https://cw.example", company_id: msp, public_key: "env:A", private_key: "env:B", client_id: "env:C"}
  m365: {client_id: "env:I", client_secret: "env:S"}
  smtp: {host: smtp.example, port: 587, from: "desk@msp.example", enrollment_url: "https://enroll.example"}
policies:
  - name: Std
    type: end-user
    default: true
    options: {vault_match: true, vault_create: true, psa_match: true, psa_create: true, welcome_email: true, self_serve: true, m365_sync: true}
  - name: Admins
    type: admin
    default: true
    options: {vault_match: true, vault_create: true, rotation: true}
customers:
  - id: acme
    name: Acme
    vault: {itglue_organization_id: "1"}
    psa: {company_id: "7"}
    sources:
      ad: {url: "ldaps://dc.acme.example", bind_dn: "cn=x", bind_password: "env:P", base_dn: "DC=acme", select: {groups: ["CN=Staff"]}}
      m365: {tenant_id: "t-acme", select: {roles: ["Global Administrator"]}}
  - id: bravo
    name: Bravo
    vault: {itglue_organization_id: "2"}
    psa: {company_id: "8"}
    sources:
      ad: {url: "ldaps://dc.bravo.example", bind_dn: "cn=x", bind_password: "env:P", base_dn: "DC=bravo", select: {groups: ["CN=Staff"]}}
`

type fixture struct {
	store  *store.Store
	worlds map[string]*world
	runner *jobs.Runner
}

func setup(t *testing.T, s *store.Store) *fixture { return setupTB(t, s) }

func setupTB(t testing.TB, s *store.Store) *fixture {
	t.Helper()
	tn, err := jobs.ParseTenantFile("tenant.yaml", []byte(tenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(context.Background(), tn); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, worlds: map[string]*world{"acme": newWorld(), "bravo": newWorld()}}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	f.runner = &jobs.Runner{Store: s, Connector: connector{f.worlds}, Log: log, Concurrency: 2, Surge: jobs.SurgeThreshold{Max: 50, Percent: 20}, Holder: "test"}
	return f
}

func (f *fixture) run(t *testing.T, opt jobs.RunOptions) *jobs.Report {
	t.Helper()
	rep, err := f.runner.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// runStream runs and returns, besides the report, every account's plan as
// OnAccount received it, by customer.
func (f *fixture) runStream(t *testing.T, opt jobs.RunOptions) (*jobs.Report, map[string][]jobs.AccountPlan) {
	t.Helper()
	got := map[string][]jobs.AccountPlan{}
	opt.OnAccount = func(customer string, p jobs.AccountPlan) { got[customer] = append(got[customer], p) }
	return f.run(t, opt), got
}

func customerReport(rep *jobs.Report, id string) *jobs.CustomerReport {
	for _, c := range rep.Customers {
		if c.Customer == id {
			return c
		}
	}
	return nil
}

func auditCount(t *testing.T, s *store.Store) int {
	n := 0
	for _, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func ledgerOf(t *testing.T, s *store.Store, customer string) map[string]jobs.ImportedAccount {
	out := map[string]jobs.ImportedAccount{}
	for a, err := range s.ImportedAccounts(context.Background(), customer) {
		if err != nil {
			t.Fatal(err)
		}
		out[a.Username] = a
	}
	return out
}

func TestFirstRunSecondRunAndPolicyChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser), user(3, jobs.Admin))
		// user2 already has a vault entry and a PSA contact.
		acme.vault.entries["org-acme"] = []sinks.VaultEntry{{Ref: "existing", Username: `ACME\user2`, Category: "Active Directory"}}
		acme.psa.contacts = []sinks.Contact{{Ref: "c-old", FirstName: "User", LastName: "2", Email: "USER2@acme.example"}}
		rep := f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		cr := customerReport(rep, "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != 3 || cr.Counts.VaultCreated != 2 || cr.Counts.VaultMatched != 1 || cr.Counts.PSACreated != 1 || cr.Counts.PSAMatched != 1 || cr.Counts.EmailsSent != 2 {
			t.Fatalf("first run: %s %s %+v", cr.Status, cr.Error, cr.Counts)
		}
		led := ledgerOf(t, s, "acme")
		if l := led["user2"]; l.VaultRef != "existing" || l.PSARef != "c-old" || !l.SelfServe || l.Welcome != "sent" || l.OptionsOrigin != "default-policy Std" {
			t.Fatalf("user2 ledger %+v", l)
		}
		if l := led["user3"]; l.Type != jobs.Admin || !l.Rotation || l.PSARef != "" || l.Welcome != "none" {
			t.Fatalf("admin ledger %+v", l)
		}
		if _, err := jobs.VerifyAudit(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		// Every created or matched entry has its audit event.
		actions := map[string]int{}
		for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme"}) {
			if err != nil {
				t.Fatal(err)
			}
			actions[e.Action]++
		}
		if actions["import.account"] != 3 || actions["import.vault.created"] != 2 || actions["import.vault.matched"] != 1 || actions["import.psa.created"] != 1 || actions["import.psa.matched"] != 1 || actions["import.email.sent"] != 2 {
			t.Fatalf("audit events by action: %v", actions)
		}

		// A second run with no change writes nothing anywhere.
		events, creates, psaCreates, mails := auditCount(t, s), acme.vault.creates.Load(), acme.psa.creates.Load(), len(acme.mail.sent)
		rep = f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		cr = customerReport(rep, "acme")
		if cr.Counts.AlreadyImported != 3 || cr.Counts.Imported != 0 || acme.vault.creates.Load() != creates || acme.psa.creates.Load() != psaCreates || len(acme.mail.sent) != mails {
			t.Fatalf("second run wrote: %+v", cr.Counts)
		}
		if auditCount(t, s) != events {
			t.Fatalf("second run audited %d events", auditCount(t, s)-events)
		}
		if acme.vault.indexes.Load() != 1 || acme.psa.indexes.Load() != 1 {
			t.Fatalf("second run listed the sinks although nothing was new: vault %d psa %d", acme.vault.indexes.Load(), acme.psa.indexes.Load())
		}

		// The policy changes; only the new account gets the new options.
		admin := &jobs.TenantAdmin{Store: s, Actor: "tech"}
		if err := admin.SetPolicy(context.Background(), "Std", jobs.Values{jobs.WelcomeEmail: false, jobs.SelfServe: false}, nil); err != nil {
			t.Fatal(err)
		}
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser), user(3, jobs.Admin), user(4, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		led2 := ledgerOf(t, s, "acme")
		if l := led2["user4"]; l.SelfServe || l.Welcome != "none" || l.Options[jobs.WelcomeEmail] {
			t.Fatalf("new account did not get the new options: %+v", l)
		}
		for _, u := range []string{"user1", "user2", "user3"} {
			if a, b := led[u], led2[u]; !a.Options.Equal(b.Options) || a.SelfServe != b.SelfServe || a.Welcome != b.Welcome || a.VaultRef != b.VaultRef {
				t.Fatalf("%s changed after a policy change:\n%+v\n%+v", u, a, b)
			}
		}
		if len(acme.mail.sent) != mails {
			t.Fatal("an email was sent after welcome_email was turned off")
		}
	})
}

func TestCrashBetweenCreateAndRecordLeavesNoDuplicate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		// The PSA fails after the vault entry was created: nothing recorded.
		acme.psa.failCreate = errors.New("HTTP 503")
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusFailed || cr.Counts.Failed != 2 || len(ledgerOf(t, s, "acme")) != 0 || acme.vault.creates.Load() != 2 {
			t.Fatalf("failing PSA: %s %+v", cr.Status, cr.Counts)
		}
		if len(cr.Attention) != 2 || !strings.Contains(cr.Attention[0].Reason, "MemPSA: create contact") {
			t.Fatalf("attention %+v", cr.Attention)
		}
		acme.psa.failCreate = nil
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != 2 || cr.Counts.VaultMatched != 2 || cr.Counts.VaultCreated != 0 {
			t.Fatalf("retry: %s %s %+v", cr.Status, cr.Error, cr.Counts)
		}
		for _, u := range []string{"user1", "user2"} {
			if n := acme.vault.count("org-acme", u); n != 1 {
				t.Fatalf("vault holds %d entries for %s, want 1", n, u)
			}
		}
		if len(acme.mail.sent) != 2 {
			t.Fatalf("sent %d emails, want 2", len(acme.mail.sent))
		}
	})
}

func TestWelcomeEmailIsNeverSentTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser))
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		acme.mail.fail = fmt.Errorf("smtp: connection dropped after DATA: %w", sinks.ErrUnconfirmed)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true})
		acme.mail.fail = errors.New("550 mailbox unavailable")
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser), user(3, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		acme.mail.fail = nil
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if len(acme.mail.sent) != 3 {
			t.Fatalf("%d send attempts, want exactly one per account", len(acme.mail.sent))
		}
		led := ledgerOf(t, s, "acme")
		if led["user1"].Welcome != "attempted" || led["user3"].Welcome != "failed" {
			t.Fatalf("welcome states %q %q", led["user1"].Welcome, led["user3"].Welcome)
		}
		found := false
		for _, n := range cr.Notices {
			found = found || strings.Contains(n, "welcome email to user1") && strings.Contains(n, "never confirmed")
		}
		if !found {
			t.Fatalf("an unconfirmed welcome email is not reported for a person to check: %q", cr.Notices)
		}
	})
}

func TestDryRunWritesNothingAndMatchesTheRealRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.Admin), sources.Account{Source: sources.KindAD, ID: "x-disabled", Username: "gone", SkipReason: "disabled (userAccountControl 514)"})
		acme.vault.entries["org-acme"] = []sinks.VaultEntry{{Ref: "nocat", Username: "user1"}}
		events := auditCount(t, s)
		dryRep, dryAccounts := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}, DryRun: true})
		dry := customerReport(dryRep, "acme")
		if auditCount(t, s) != events || len(ledgerOf(t, s, "acme")) != 0 || acme.vault.creates.Load() != 0 || acme.psa.creates.Load() != 0 || len(acme.mail.sent) != 0 {
			t.Fatal("dry run wrote something")
		}
		var runs int
		s.DB().Get(&runs, "SELECT COUNT(*) FROM runs")
		var leases int
		s.DB().Get(&leases, "SELECT COUNT(*) FROM leases")
		if runs != 0 || leases != 0 {
			t.Fatalf("dry run recorded %d runs and %d leases", runs, leases)
		}
		realRep, realAccounts := f.runStream(t, jobs.RunOptions{Customers: []string{"acme"}})
		real := customerReport(realRep, "acme")
		// Every account is reported once: the skipped one and each candidate.
		if n := real.Counts.Candidates + real.Counts.Skipped; len(dryAccounts["acme"]) != n || len(realAccounts["acme"]) != n {
			t.Fatalf("dry %d accounts, real %d, want %d", len(dryAccounts["acme"]), len(realAccounts["acme"]), n)
		}
		if dry.Counts.Imported != real.Counts.Imported || dry.Counts.PossibleDuplicates != real.Counts.PossibleDuplicates || dry.Counts.Skipped != real.Counts.Skipped {
			t.Fatalf("dry counts %+v, real %+v", dry.Counts, real.Counts)
		}
		// New accounts are reported as they are done, in no set order.
		realByID := map[string]jobs.AccountPlan{}
		for _, r := range realAccounts["acme"] {
			realByID[r.ID] = r
		}
		for i, d := range dryAccounts["acme"] {
			r := realByID[d.ID]
			if d.ID != r.ID || d.Action != r.Action || d.Vault.Op != r.Vault.Op || d.PSA.Op != r.PSA.Op || d.WelcomeMail.Op != r.WelcomeMail.Op || d.Flags != r.Flags || d.Vault.Warning != r.Vault.Warning {
				t.Fatalf("account %d: dry %+v\nreal %+v", i, d, r)
			}
		}
		if real.Counts.PossibleDuplicates != 1 || real.Counts.Skipped != 1 {
			t.Fatalf("want one possible duplicate (entry without category) and one skip: %+v", real.Counts)
		}
	})
}

func TestSurgeGuard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		var many []sources.Account
		for i := range 60 {
			many = append(many, user(i, jobs.EndUser))
		}
		acme.ad.set(many...)
		rep := f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		cr := customerReport(rep, "acme")
		if cr.Status != jobs.StatusHeld || cr.Counts.Held != 60 || acme.vault.creates.Load() != 0 || !rep.Failed() || !strings.Contains(cr.Error, "--allow-surge --customer acme") {
			t.Fatalf("surge: %s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
		// The hold is audited as one decision, not one per held account.
		var held []string
		for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme"}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Action == "import.decisions" {
				held = append(held, e.After)
			}
		}
		if len(held) != 1 || strings.Count(held[0], `"Action"`) != 1 || !strings.Contains(held[0], "60 new accounts") {
			t.Fatalf("decisions audited: %q", held)
		}
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}, AllowSurge: true}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Imported != 60 {
			t.Fatalf("allowed surge: %s %+v", cr.Status, cr.Counts)
		}
		// 10 more on 60 held is under 20%: no surge.
		for i := 60; i < 70; i++ {
			many = append(many, user(i, jobs.EndUser))
		}
		acme.ad.set(many...)
		if cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme"); cr.Counts.Imported != 10 {
			t.Fatalf("small increment: %s %+v", cr.Status, cr.Counts)
		}
	})
}

// ambiguousUsers returns n end users that each match two entries of w's
// vault, so that every one is left ambiguous.
func ambiguousUsers(w *world, n int) []sources.Account {
	var users []sources.Account
	for i := range n {
		users = append(users, user(i, jobs.EndUser))
		for _, ref := range []string{"a", "b"} {
			w.vault.entries["org-acme"] = append(w.vault.entries["org-acme"], sinks.VaultEntry{Ref: fmt.Sprint(ref, i), Username: fmt.Sprint("user", i), Category: "Active Directory"})
		}
	}
	return users
}

// Accounts the plan leaves ambiguous write nothing, so they never count
// towards a surge: a customer with many namesakes is not held every run.
func TestSurgeGuardCountsOnlyAccountsToImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		many := append(ambiguousUsers(acme, 60), user(100, jobs.EndUser))
		acme.ad.set(many...)
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.Ambiguous != 60 || cr.Counts.Imported != 1 || cr.Counts.Held != 0 {
			t.Fatalf("%s %q %+v", cr.Status, cr.Error, cr.Counts)
		}
	})
}

func TestHybridTwinIsImportedOnceAndLinked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		ad := user(1, jobs.EndUser)
		ad.ImmutableID = "AAAAAAAAAAAAAAAAAAAAAQ=="
		admin := user(2, jobs.Admin)
		acme.ad.set(ad, admin)
		acme.m365.set(
			sources.Account{Source: sources.KindM365, ID: "m-1", Username: "user1@acme.example", UPN: "user1@acme.example", ImmutableID: ad.ImmutableID, Licensed: true, Type: jobs.EndUser, Enabled: true},
			sources.Account{Source: sources.KindM365, ID: "m-ga", Username: "ga@acme.onmicrosoft.com", UPN: "ga@acme.onmicrosoft.com", DisplayName: "Global Admin", Type: jobs.Admin, TypeReason: "holds Global Administrator", Enabled: true},
		)
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Counts.Imported != 3 {
			t.Fatalf("imported %d, want user1 (AD, linked), user2 (AD admin), ga (M365 admin): %+v", cr.Counts.Imported, cr)
		}
		led := ledgerOf(t, s, "acme")
		if l := led["user1"]; !l.M365Sync || l.M365ID != "m-1" || l.Source != "ad" {
			t.Fatalf("hybrid user ledger %+v", l)
		}
		if l := led["ga@acme.onmicrosoft.com"]; l.Source != "m365" || l.Type != jobs.Admin {
			t.Fatalf("cloud admin ledger %+v", l)
		}
	})
}

func TestDisabledAndMissingAccountsAreMarkedNotDeleted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		disabled := user(1, jobs.EndUser)
		disabled.SkipReason = "disabled (userAccountControl 514)"
		acme.ad.set(disabled)
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		led := ledgerOf(t, s, "acme")
		if led["user1"].State != "disabled" || led["user2"].State != "missing" || acme.vault.count("org-acme", "user2") != 1 {
			t.Fatalf("states: %q %q; notices %q", led["user1"].State, led["user2"].State, cr.Notices)
		}
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		led = ledgerOf(t, s, "acme")
		if led["user1"].State != "active" || led["user2"].State != "active" || len(led) != 2 || acme.vault.creates.Load() != 2 {
			t.Fatalf("back: %+v", led)
		}
	})
}

func TestTwoRunnersImportEachCustomerOnce(t *testing.T) {
	s := storetest.MySQL(t)
	f := setup(t, s)
	for _, w := range f.worlds {
		var as []sources.Account
		for i := range 40 {
			as = append(as, user(i, jobs.EndUser))
		}
		w.ad.set(as...)
	}
	// The second replica opens its own connections to the same database.
	s2 := storetest.Reopen(t, s)
	other := &jobs.Runner{Store: s2, Connector: f.runner.Connector, Log: f.runner.Log, Concurrency: 2, Surge: f.runner.Surge, Holder: "replica-2"}
	var wg sync.WaitGroup
	reps := make([]*jobs.Report, 2)
	for i, r := range []*jobs.Runner{f.runner, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := r.Run(context.Background(), jobs.RunOptions{AllowSurge: true})
			if err != nil {
				t.Error(err)
			}
			reps[i] = rep
		}()
	}
	wg.Wait()
	for id, w := range f.worlds {
		if n := w.vault.creates.Load(); n != 40 {
			t.Errorf("customer %s: %d vault creates, want 40 (imported once)", id, n)
		}
		if n := len(ledgerOf(t, s, id)); n != 40 {
			t.Errorf("customer %s: %d ledger rows", id, n)
		}
	}
	if _, err := jobs.VerifyAudit(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// Batches with nothing to import (ambiguous accounts only) open no
// transaction: a run that imports nothing writes at most its decisions.
func TestNothingToImportOpensNoBatchTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		cs := &watchedStore{Store: s}
		f.runner.Store = cs
		acme := f.worlds["acme"]
		acme.ad.set(ambiguousUsers(acme, 200)...) // four batches
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		// The decisions, audited once, and the 200 accounts that need a person.
		if cr.Counts.Ambiguous != 200 || cs.updates.Load() != 2 || cr.NeedPerson[jobs.StateAmbiguous] != 200 {
			t.Fatalf("%+v; %d write transactions, want 2; need a person: %v", cr.Counts, cs.updates.Load(), cr.NeedPerson)
		}
		// The same run again changes nothing: only the decisions' digest is
		// compared, in one transaction; no account is written.
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Counts.Ambiguous != 200 || cs.updates.Load() != 3 || cr.NeedPerson[jobs.StateAmbiguous] != 200 {
			t.Fatalf("second run: %+v; %d write transactions in all, want 3", cr.Counts, cs.updates.Load())
		}
	})
}

// watchedStore counts write transactions and, when crash is set, fails
// the next one, as a process stopped after the sink calls and before the
// ledger write would.
type watchedStore struct {
	*store.Store
	updates atomic.Int64
	crash   atomic.Bool
}

func (s *watchedStore) Update(ctx context.Context, fn func(jobs.Tx) error) error {
	s.updates.Add(1)
	if s.crash.CompareAndSwap(true, false) {
		return errors.New("the process stopped before the ledger write")
	}
	return s.Store.Update(ctx, fn)
}

func TestStopBeforeTheLedgerWriteLeavesNoDuplicateAnywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		cs := &watchedStore{Store: s}
		f.runner.Store = cs
		acme := f.worlds["acme"]
		acme.ad.set(user(1, jobs.EndUser), user(2, jobs.EndUser))
		cs.crash.Store(true)
		cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Counts.Failed != 2 || acme.vault.creates.Load() != 2 || acme.psa.creates.Load() != 2 || len(acme.mail.sent) != 0 || len(ledgerOf(t, s, "acme")) != 0 {
			t.Fatalf("crashed run: %+v; vault creates %d, PSA creates %d, mails %d", cr.Counts, acme.vault.creates.Load(), acme.psa.creates.Load(), len(acme.mail.sent))
		}
		cr = customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme")
		if cr.Status != jobs.StatusOK || cr.Counts.VaultMatched != 2 || cr.Counts.PSAMatched != 2 || cr.Counts.VaultCreated+cr.Counts.PSACreated != 0 {
			t.Fatalf("next run: %s %s %+v", cr.Status, cr.Error, cr.Counts)
		}
		if len(acme.psa.contacts) != 2 || acme.vault.count("org-acme", "user1") != 1 || len(acme.mail.sent) != 2 {
			t.Fatalf("PSA holds %d contacts, vault %d entries for user1, %d emails", len(acme.psa.contacts), acme.vault.count("org-acme", "user1"), len(acme.mail.sent))
		}
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if len(acme.mail.sent) != 2 {
			t.Fatal("a welcome email was sent twice")
		}
	})
}

// Entry reads one entry of the scope's organization by id.
func (v *memVault) Entry(ctx context.Context, s sinks.VaultScope, ref string) (sinks.VaultEntry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for c, es := range v.entries {
		for _, e := range es {
			if e.Ref != ref {
				continue
			}
			if c != s.Container {
				return sinks.VaultEntry{}, fmt.Errorf("entry %s belongs to organization %s, not %s", ref, c, s.Container)
			}
			return e, nil
		}
	}
	return sinks.VaultEntry{}, fmt.Errorf("entry %s does not exist: %w", ref, sinks.ErrNotFound)
}

// remove deletes an entry, as a person would in the vault.
func (v *memVault) remove(container, ref string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.entries[container] = slices.DeleteFunc(v.entries[container], func(e sinks.VaultEntry) bool { return e.Ref == ref })
}

// Contact reads one contact by id.
func (p *memPSA) Contact(ctx context.Context, s sinks.PSAScope, ref string) (sinks.Contact, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.contacts {
		if c.Ref == ref {
			return c, nil
		}
	}
	return sinks.Contact{}, fmt.Errorf("contact %s does not exist", ref)
}

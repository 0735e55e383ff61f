package sandbox_test

import (
	"context"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sources/ad"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/sandbox"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources"
)

// TestRunTwice is the sandbox's end-to-end check: the real job over every
// fake imports on every customer the first time, reports the planted
// possible duplicate, and the second run changes nothing anywhere.
func TestRunTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env, err := sandbox.Start(ctx, sandbox.Options{Customers: 3, Accounts: 30, Seed: 7, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	rep, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Customers) != 3 {
		t.Fatalf("report has %d customers, want 3", len(rep.Customers))
	}
	dups, ambiguous := 0, map[string]string{}
	for _, c := range rep.Customers {
		for _, a := range c.Attention {
			if a.Action == jobs.ActionAmbiguous {
				ambiguous[c.Customer] = a.Username
			}
		}
		if c.Status != jobs.StatusOK {
			t.Errorf("first run: customer %s: status %s: %s", c.Customer, c.Status, c.Error)
		}
		if c.Counts.Imported == 0 {
			t.Errorf("first run: customer %s imported nothing: %+v", c.Customer, c.Counts)
		}
		if c.Counts.Failed != 0 {
			t.Errorf("first run: customer %s: %d accounts failed", c.Customer, c.Counts.Failed)
		}
		dups += c.Counts.PossibleDuplicates
		t.Logf("first run: %s: %+v", c.Customer, c.Counts)
	}
	if dups == 0 {
		t.Error("first run reported no possible duplicate; the sandbox plants one per customer")
	}
	created := map[string]int64{}
	for _, r := range env.Requests() {
		if r.Class == sandbox.ClassCreate {
			created[r.Integration] += r.N
		}
	}
	for _, in := range []string{sandbox.ITGlue, sandbox.Hudu, sandbox.ConnectWise, sandbox.Autotask, sandbox.HaloPSA, sandbox.SMTP} {
		if created[in] == 0 {
			t.Errorf("first run created nothing at %s; want every sink used: %v", in, env.Requests())
		}
	}

	env.ResetRequests()
	rep2, err := env.Runner().Run(ctx, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep2.Customers {
		if c.Status != jobs.StatusOK {
			t.Errorf("second run: customer %s: status %s: %s", c.Customer, c.Status, c.Error)
		}
		if c.Counts.Imported != 0 {
			t.Errorf("second run: customer %s imported %d accounts again", c.Customer, c.Counts.Imported)
		}
		if c.Counts.AlreadyImported == 0 {
			t.Errorf("second run: customer %s found nothing already imported", c.Customer)
		}
	}
	for _, r := range env.Requests() {
		if r.Class == sandbox.ClassCreate {
			t.Errorf("second run: %d %s %s requests, want none", r.N, r.Integration, r.Kind)
		}
		// Only each customer's ambiguous account needs an index again.
		if r.Integration != sandbox.ActiveDirectory && r.Integration != sandbox.Graph && r.Class == sandbox.ClassList && r.N > 3 {
			t.Errorf("second run listed %s (%s) %d times; only the ambiguous accounts need an index", r.Integration, r.Kind, r.N)
		}
	}

	// A technician resolves each ambiguous account by choosing one of its
	// entries; the next run imports it with that entry and creates none.
	if len(ambiguous) != 3 {
		t.Fatalf("the sandbox plants one ambiguous account per customer; found %v", ambiguous)
	}
	acc := &jobs.Accounts{Store: env.Store, Connector: env.Connector(), Actor: jobs.RecordedActor("technician")}
	chosen := map[string]string{}
	for customer, user := range ambiguous {
		entries, err := env.VaultEntries(ctx, customer, user)
		if err != nil || len(entries) != 2 {
			t.Fatalf("%s: entries of %s: %+v, %v", customer, user, entries, err)
		}
		if _, err := acc.Match(ctx, customer, user, jobs.MatchRequest{VaultRef: entries[0].Ref}); err != nil {
			t.Fatal(err)
		}
		chosen[customer] = entries[0].Ref
	}
	env.ResetRequests()
	rep3, err := env.Runner().Run(ctx, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep3.Customers {
		if c.Status != jobs.StatusOK || c.Counts.Imported != 1 || c.Counts.VaultMatched != 1 || c.Counts.VaultCreated != 0 || c.NeedPerson[jobs.StateAmbiguous] != 0 {
			t.Errorf("after the match: customer %s: %s %+v %v", c.Customer, c.Status, c.Counts, c.NeedPerson)
		}
		for a, err := range env.Store.ImportedAccounts(ctx, c.Customer) {
			if err == nil && a.Username == ambiguous[c.Customer] && a.VaultRef != chosen[c.Customer] {
				t.Errorf("%s: %s linked to %q, chosen %q", c.Customer, a.Username, a.VaultRef, chosen[c.Customer])
			}
		}
	}
	for _, r := range env.Requests() {
		if r.Class == sandbox.ClassCreate && r.Integration != sandbox.SMTP && r.Integration != sandbox.ConnectWise && r.Integration != sandbox.Autotask && r.Integration != sandbox.HaloPSA {
			t.Errorf("after the match: %d %s %s requests, want no new vault entry", r.N, r.Integration, r.Kind)
		}
	}
	if !strings.Contains(string(env.TenantYAML), "env:SANDBOX_ITGLUE_API_KEY") {
		t.Error("tenant YAML does not refer to the IT Glue key by reference")
	}
	// The directory passwords, the Graph secret and the welcome template
	// come from the sandbox's own secrets directory.
	for _, want := range []string{"bind_password: file:ad-bind-password", "client_secret: file:m365-client-secret", "text_template: welcome.txt.tmpl"} {
		if !strings.Contains(string(env.TenantYAML), want) {
			t.Errorf("tenant YAML lacks %q", want)
		}
	}
	if env.Vars["AUTOIMPORT_SECRETS_DIR"] != env.SecretsDir || env.SecretsDir == "" {
		t.Errorf("AUTOIMPORT_SECRETS_DIR = %q, secrets in %q", env.Vars["AUTOIMPORT_SECRETS_DIR"], env.SecretsDir)
	}
	mails, _ := filepath.Glob(filepath.Join(env.MailDir, "*.eml"))
	if len(mails) == 0 {
		t.Fatal("no welcome email captured")
	}
	if b, _ := os.ReadFile(mails[0]); !strings.Contains(string(b), "read from AUTOIMPORT_SECRETS_DIR") {
		t.Errorf("the welcome email was not made from the template in the secrets directory:\n%.400s", b)
	}
	// Every audit event says which operating-system user and host ran it.
	for e, err := range env.Store.AuditEvents(ctx, jobs.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, osUser, host := jobs.ParseActor(e.Actor); osUser == "" || host == "" {
			t.Fatalf("audit event %d (%s) records actor %q without the OS user and host", e.ID, e.Action, e.Actor)
		}
	}
}

// TestFaultRate checks that injected 429s are retried, not failed: the same
// sandbox with faults imports the same accounts and makes more requests.
func TestFaultRate(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out Retry-After answers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	totals := map[float64]int64{}
	imported := map[float64]int{}
	for _, rate := range []float64{0, 0.1} {
		env, err := sandbox.Start(ctx, sandbox.Options{Customers: 3, Accounts: 15, Seed: 3, FaultRate: rate, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true})
		if err != nil {
			env.Close()
			t.Fatal(err)
		}
		for _, c := range rep.Customers {
			if c.Status != jobs.StatusOK {
				t.Errorf("fault rate %g: customer %s: %s: %s", rate, c.Customer, c.Status, c.Error)
			}
		}
		imported[rate] = rep.Totals.Imported
		for _, r := range env.Requests() {
			if r.Integration != sandbox.ActiveDirectory && r.Integration != sandbox.SMTP {
				totals[rate] += r.N
			}
		}
		env.Close()
	}
	if imported[0.1] != imported[0] || imported[0] == 0 {
		t.Errorf("imported %d with faults, %d without; want the same, and some", imported[0.1], imported[0])
	}
	if totals[0.1] <= totals[0] {
		t.Errorf("%d HTTP requests with faults, %d without: no fault was answered and retried", totals[0.1], totals[0])
	}
}

// TestDeterministic checks that a seed fixes everything generated: the
// tenant (but for ports and paths) and what the fakes hold.
func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	ports := regexp.MustCompile(`127\.0\.0\.1:\d+|port: \d+`)
	snapshot := func(seed uint64) (string, []string) {
		dir := t.TempDir()
		env, err := sandbox.Start(ctx, sandbox.Options{Customers: 3, Accounts: 12, Seed: seed, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer env.Close()
		yml := strings.ReplaceAll(ports.ReplaceAllString(string(env.TenantYAML), "PORT"), dir, "DIR")
		var held []string
		for _, c := range env.Tenant.Customers {
			if id := c.Vault.ITGlueOrganizationID; id != "" {
				n, _ := strconv.Atoi(id)
				for _, p := range env.ITGlue.Passwords(n) {
					held = append(held, c.ID+" itglue "+p.Username)
				}
			}
			if n, err := strconv.Atoi(c.PSA.CompanyID); err == nil && c.PSA.Kind == "connectwise" {
				for _, p := range env.ConnectWise.Contacts(n) {
					held = append(held, c.ID+" cw "+p.Email+" "+p.FirstName+" "+p.LastName)
				}
			}
		}
		return yml, held
	}
	y1, h1 := snapshot(5)
	y2, h2 := snapshot(5)
	y3, h3 := snapshot(6)
	if y1 != y2 {
		t.Errorf("the same seed gave different tenants:\n%s\n---\n%s", y1, y2)
	}
	if strings.Join(h1, "\n") != strings.Join(h2, "\n") || len(h1) == 0 {
		t.Errorf("the same seed seeded the fakes differently (%d vs %d entries)", len(h1), len(h2))
	}
	if y1 == y3 && strings.Join(h1, "\n") == strings.Join(h3, "\n") {
		t.Error("seeds 5 and 6 generated the same sandbox")
	}
}

// The sandbox's administrators are rotated in their directories (the AD
// fakes over LDAPS, Graph for cloud-only ones) and each new password is in
// the Technician Vault: the directory's password is the vault's.
func TestRotateEveryAdministrator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env, err := sandbox.Start(ctx, sandbox.Options{Customers: 3, Accounts: 30, Seed: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if _, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true}); err != nil {
		t.Fatal(err)
	}
	run, err := env.Runner().Rotate(ctx, jobs.RotationRunOptions{Customers: []string{"acme-dental", "bluebird-logistics", "cedar-law"}, Now: true})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != jobs.StatusOK || run.Outcomes[jobs.OutcomeRotated] == 0 || run.Outcomes[jobs.OutcomeFailed] != 0 {
		t.Fatalf("rotation: %+v", run.Outcomes)
	}
	tn, err := env.Store.LoadTenant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vault := techvault.New(env.Store, env.Key)
	checked := map[string]int{}
	for _, c := range tn.Customers {
		for a, err := range env.Store.ImportedAccounts(ctx, c.ID) {
			if err != nil {
				t.Fatal(err)
			}
			if a.Type != jobs.Admin {
				continue
			}
			pw, err := vault.Password(ctx, sinks.VaultScope{Customer: c.ID, Container: c.ID}, a.VaultRef)
			if err != nil || pw == "" {
				t.Fatalf("%s %s: vault: %q, %v", c.ID, a.Username, pw, err)
			}
			switch a.Source {
			case "ad":
				src, err := ad.New(env.AD[c.ID].Config(c.ID))
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := src.CheckPassword(ctx, ad.PasswordTarget{ObjectGUID: a.SourceID}, pw); !ok || err != nil {
					t.Errorf("%s %s: the vault's password does not bind: %v", c.ID, a.Username, err)
				}
			case "m365":
				if got, _ := env.Graph.Tenant(c.Sources.M365.TenantID).Password(a.SourceID); got != pw {
					t.Errorf("%s %s: Graph holds another password than the vault", c.ID, a.Username)
				}
			}
			checked[a.Source]++
		}
	}
	if checked["ad"] == 0 || checked["m365"] == 0 {
		t.Fatalf("checked %v: want administrators of both sources", checked)
	}
}

// New staff added to every directory between two runs are imported by a
// run that reads only what changed: one DirSync round trip per domain and
// three Graph calls per tenant, each directory's changes no more than the
// hires.
func TestIncrementalRunImportsTheHires(t *testing.T) {
	ctx := context.Background()
	env, err := sandbox.Start(ctx, sandbox.Options{Customers: 6, Accounts: 40, Seed: 7, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if _, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true}); err != nil {
		t.Fatal(err)
	}
	hired, err := env.Hire(0.05, 1)
	if err != nil || hired == 0 {
		t.Fatalf("hire: %d, %v", hired, err)
	}
	rep, err := env.Runner().Run(ctx, jobs.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Imported != hired {
		t.Fatalf("imported %d of %d hires", rep.Totals.Imported, hired)
	}
	// One DirSync request per domain; three Graph rounds per tenant, and
	// the groups and roles of each user new to its copy (memberOf): one
	// request per hire, fewer than the read's changes (the user and its
	// memberships); three when the tenant had no hire.
	for _, c := range rep.Customers {
		for _, r := range c.Reads {
			ok := r.Mode == sources.ReadIncremental
			switch r.Source {
			case sources.KindAD:
				ok = ok && r.Requests == 1
			case sources.KindM365:
				ok = ok && (r.Changes == 0 && r.Requests == 3 || r.Requests > 3 && r.Requests-3 < r.Changes)
			}
			if !ok {
				t.Errorf("%s: %s", c.Customer, r)
			}
		}
	}
}

package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

func storedDoc(t *testing.T, s *store.Store, query string, args ...any) string {
	t.Helper()
	var doc string
	if err := s.DB().Get(&doc, query, args...); err != nil {
		t.Fatal(err)
	}
	return doc
}

func lastAudit(t *testing.T, s *store.Store) jobs.AuditEvent {
	t.Helper()
	var last jobs.AuditEvent
	for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		last = e
	}
	return last
}

// Numeric options are stored in the same options document as the on/off
// ones, for a policy and for a customer out of policies; every change is
// audited with the document before and after, and resolves with its
// origin.
func TestNumericOptionsStoredAndAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		admin := &jobs.TenantAdmin{Store: s, Actor: "tech@msp"}
		if _, err := admin.Apply(ctx, exampleTenant(t)); err != nil {
			t.Fatal(err)
		}
		resolve := func(customer string) jobs.Resolved {
			t.Helper()
			tn, err := s.LoadTenant(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := tn.Customer(customer)
			return jobs.Resolve(tn, c, jobs.Admin)
		}

		err := admin.SetPolicyOptions(ctx, "Rotated admins", jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 14, jobs.RotationLength: 32}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if doc := storedDoc(t, s, "SELECT options FROM import_policies WHERE name = ?", "Rotated admins"); doc != `{"paused":false,"rotation":true,"rotation_days":14,"rotation_length":32,"vault_create":true,"vault_match":true}` {
			t.Fatalf("stored policy options %s", doc)
		}
		e := lastAudit(t, s)
		if e.Action != "policy.update" || e.Subject != "Rotated admins" || !strings.Contains(e.Before, `"rotation_days":30`) || !strings.Contains(e.After, `"rotation_days":14,"rotation_length":32`) {
			t.Fatalf("audited %+v", e)
		}
		r := resolve("acme")
		if n := r.Number(jobs.RotationDays); n.Value != 14 || n.Origin != jobs.FromPolicy || n.Policy != "Rotated admins" {
			t.Fatalf("acme rotation_days %+v", n)
		}
		if n := r.Number(jobs.RotationLength); n.Value != 32 || n.Origin != jobs.FromPolicy {
			t.Fatalf("acme rotation_length %+v", n)
		}

		// Refused changes: out of range, on an end-user policy, on a
		// customer that follows a policy. None is audited.
		n := countAudit(t, s)
		var ue *jobs.UsageError
		var re *jobs.RuleError
		err = admin.SetPolicyOptions(ctx, "Rotated admins", jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 0}}, nil)
		if !errors.As(err, &ue) || err.Error() != `policy "Rotated admins": option rotation_days: 0 is out of range: want a whole number from 1 to 365` {
			t.Fatalf("out of range: %v", err)
		}
		err = admin.SetPolicyOptions(ctx, "Standard end users", jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 14}}, nil)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), `policy "Standard end users": unknown end-user option "rotation_days" (it is an admin option)`) {
			t.Fatalf("end-user policy: %v", err)
		}
		err = admin.SetCustomerOptionSet(ctx, "acme", jobs.Admin, jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 7}})
		if !errors.As(err, &re) || !strings.Contains(err.Error(), `customer acme follows admin policy "Rotated admins"`) {
			t.Fatalf("customer in a policy: %v", err)
		}
		if countAudit(t, s) != n {
			t.Fatal("refused changes were audited")
		}

		// Out of policies, the customer keeps the numbers it followed,
		// then has its own.
		if err := admin.UnassignPolicy(ctx, "acme", jobs.Admin); err != nil {
			t.Fatal(err)
		}
		if e := lastAudit(t, s); !strings.Contains(e.After, `"rotation_days":14`) {
			t.Fatalf("unassign audited %+v", e)
		}
		if n := resolve("acme").Number(jobs.RotationDays); n.Value != 14 || n.Origin != jobs.FromCustomer {
			t.Fatalf("after unassign rotation_days %+v", n)
		}
		if err := admin.SetCustomerOptionSet(ctx, "acme", jobs.Admin, jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 7}}); err != nil {
			t.Fatal(err)
		}
		if doc := storedDoc(t, s, "SELECT options FROM customer_options WHERE customer_id = ? AND account_type = ?", "acme", "admin"); doc != `{"paused":false,"rotation":true,"rotation_days":7,"rotation_length":32,"vault_create":true,"vault_match":true}` {
			t.Fatalf("stored customer options %s", doc)
		}
		e = lastAudit(t, s)
		if e.Action != "customer.options.set" || e.Customer != "acme" || e.Subject != "admin" || !strings.Contains(e.Before, `"rotation_days":14`) || !strings.Contains(e.After, `"rotation_days":7`) {
			t.Fatalf("audited %+v", e)
		}
		r = resolve("acme")
		if n := r.Number(jobs.RotationDays); n.Value != 7 || n.Origin != jobs.FromCustomer || n.Policy != "" {
			t.Fatalf("acme rotation_days %+v", n)
		}
		n = countAudit(t, s)
		if err := admin.SetCustomerOptionSet(ctx, "acme", jobs.Admin, jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationDays: 7}}); err != nil || countAudit(t, s) != n {
			t.Fatalf("setting the same value again: %v, %d events audited", err, countAudit(t, s)-n)
		}
		err = admin.SetCustomerOptionSet(ctx, "acme", jobs.Admin, jobs.OptionSet{Numbers: jobs.Numbers{jobs.RotationLength: 200}})
		if !errors.As(err, &ue) || err.Error() != "customer acme: option rotation_length: 200 is out of range: want a whole number from 14 to 128" {
			t.Fatalf("customer out of range: %v", err)
		}

		// Back in the policy, its own numbers are gone.
		if err := admin.AssignPolicy(ctx, "acme", "Rotated admins"); err != nil {
			t.Fatal(err)
		}
		if n := resolve("acme").Number(jobs.RotationDays); n.Value != 14 || n.Origin != jobs.FromPolicy {
			t.Fatalf("back in the policy rotation_days %+v", n)
		}
		var rows int
		if err := s.DB().Get(&rows, "SELECT COUNT(*) FROM customer_options WHERE customer_id = ? AND account_type = ?", "acme", "admin"); err != nil || rows != 0 {
			t.Fatalf("acme keeps %d admin option rows, %v", rows, err)
		}
		if _, err := jobs.VerifyAudit(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
}

// Options documents stored before numeric options existed (booleans only)
// load unchanged, with the built-in numbers; a document whose number is
// not a whole number is reported as damaged, naming the policy.
func TestOptionDocumentsOfBooleansOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, exampleTenant(t)); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`UPDATE import_policies SET options = '{"paused":false,"rotation":true,"vault_create":true,"vault_match":true}' WHERE name = 'Rotated admins'`,
			`INSERT INTO customer_options (customer_id, account_type, options) VALUES ('bluebird', 'admin', '{"rotation":false}')`,
			`INSERT INTO policy_members (customer_id, account_type, policy_name) VALUES ('bluebird', 'admin', 'none')`,
		} {
			if _, err := s.DB().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		tn, err := s.LoadTenant(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := tn.Policy(jobs.Admin, "Rotated admins")
		if !p.Options.Equal(jobs.Values{jobs.Paused: false, jobs.Rotation: true, jobs.VaultCreate: true, jobs.VaultMatch: true}) || p.Numbers != nil {
			t.Fatalf("policy %+v", p)
		}
		bb, _ := tn.Customer("bluebird")
		if !bb.Options[jobs.Admin].Equal(jobs.Values{jobs.Rotation: false}) || bb.Numbers != nil {
			t.Fatalf("bluebird %+v", bb)
		}
		acme, _ := tn.Customer("acme")
		for _, c := range []jobs.Customer{acme, bb} {
			r := jobs.Resolve(tn, c, jobs.Admin)
			if d, l := r.Number(jobs.RotationDays), r.Number(jobs.RotationLength); d.Value != 30 || d.Origin != jobs.FromBuiltin || l.Value != 24 || l.Origin != jobs.FromBuiltin {
				t.Fatalf("%s numbers %+v", c.ID, r.Numbers)
			}
		}

		if _, err := s.DB().Exec(`UPDATE import_policies SET options = '{"rotation":true,"rotation_days":14.5}' WHERE name = 'Rotated admins'`); err != nil {
			t.Fatal(err)
		}
		_, err = s.LoadTenant(ctx)
		if err == nil || !strings.Contains(err.Error(), `load policy "Rotated admins": stored options are damaged: option rotation_days: want a whole number from 1 to 365, not 14.5`) {
			t.Fatalf("damaged document: %v", err)
		}
	})
}

// A tenant with numeric options on a policy and a customer exports to a
// file that applies to another store unchanged, and back to the first
// with no change.
func TestNumericOptionsExportApply(t *testing.T) {
	file := `policies:
  - name: Rotated admins
    type: admin
    default: true
    options: {rotation: true, rotation_days: 14, rotation_length: 32}
customers:
  - id: acme
    name: Acme
    vault: {itglue_organization_id: "1"}
  - id: bluebird
    name: Bluebird
    policies: {admin: none}
    vault: {itglue_organization_id: "2"}
    options:
      admin: {rotation: true, rotation_days: 7}
integrations:
  itglue: {url: "https://api.itglue.com", api_key: env:K}
`
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		want, err := jobs.ParseTenantFile("t.yaml", []byte(file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadTenant(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exported, err := jobs.EncodeTenantFile(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"rotation_days: 14", "rotation_length: 32", "      admin:\n        rotation: true\n        rotation_days: 7\n"} {
			if !strings.Contains(string(exported), w) {
				t.Fatalf("export lacks %q:\n%s", w, exported)
			}
		}
		back, err := jobs.ParseTenantFile("export.yaml", exported)
		if err != nil {
			t.Fatalf("export does not parse: %v\n%s", err, exported)
		}
		res, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(ctx, back)
		if err != nil || len(res.Changes) != 0 {
			t.Fatalf("re-applying the export changed %v, %v", res.Changes, err)
		}
		other := storetest.SQLite(t)
		if _, err := (&jobs.TenantAdmin{Store: other, Actor: "test"}).Apply(ctx, back); err != nil {
			t.Fatal(err)
		}
		copied, err := other.LoadTenant(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := jobs.EncodeTenantFile(copied); string(again) != string(exported) {
			t.Fatalf("applied elsewhere, the export differs:\n%s\n---\n%s", exported, again)
		}
		bb, _ := copied.Customer("bluebird")
		if n := jobs.Resolve(copied, bb, jobs.Admin).Number(jobs.RotationDays); n.Value != 7 || n.Origin != jobs.FromCustomer {
			t.Fatalf("bluebird rotation_days %+v", n)
		}
		acme, _ := copied.Customer("acme")
		if n := jobs.Resolve(copied, acme, jobs.Admin).Number(jobs.RotationLength); n.Value != 32 || n.Origin != jobs.FromDefaultPolicy || n.Policy != "Rotated admins" {
			t.Fatalf("acme rotation_length %+v", n)
		}
	})
}

package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

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

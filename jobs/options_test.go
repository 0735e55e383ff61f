package jobs

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// tenantWith builds a tenant from integrations, policies and one customer.
func tenantWith(in Integrations, c Customer, ps ...Policy) *Tenant {
	return &Tenant{Integrations: in, Policies: ps, Customers: []Customer{c}}
}

var (
	allIntegrations = Integrations{
		ITGlue:      &ITGlue{URL: "https://api.itglue.com", APIKey: "env:K"},
		ConnectWise: &ConnectWise{URL: "https://cw.example", CompanyID: "msp", PublicKey: "env:A", PrivateKey: "env:B", ClientID: "env:C"},
		M365:        &M365App{ClientID: "env:I", ClientSecret: "env:S"},
		SMTP:        &SMTP{Host: "smtp.example", Port: 587, From: "a@b.example", EnrollmentURL: "https://e.example"},
	}
	mappedCustomer = Customer{ID: "acme", Name: "Acme",
		Vault:   VaultMapping{ITGlueOrganizationID: "1"},
		PSA:     PSAMapping{CompanyID: "2"},
		Sources: CustomerSources{M365: &M365Tenant{TenantID: "t"}},
	}
	bareCustomer = Customer{ID: "bare", Name: "Bare"}
)

func TestResolveOrigin(t *testing.T) {
	std := Policy{Name: "Std", Type: EndUser, Default: true, Options: Values{WelcomeEmail: true, SelfServe: false}}
	named := Policy{Name: "Named", Type: EndUser, Options: Values{Paused: true}}
	adminDef := Policy{Name: "Adm", Type: Admin, Default: true, Options: Values{Rotation: true}}
	withPolicy := func(typ AccountType, name string) Customer {
		c := mappedCustomer
		c.Policies = map[AccountType]string{typ: name}
		return c
	}
	optedOut := withPolicy(EndUser, NoPolicy)
	optedOut.Options = map[AccountType]Values{EndUser: {PSAMatch: true}}

	cases := []struct {
		name      string
		tenant    *Tenant
		typ       AccountType
		origin    Origin
		policy    string
		key       Option
		value     bool
		keyOrigin Origin
		keyPolicy string
	}{
		{"built-in when nothing set", tenantWith(allIntegrations, mappedCustomer), EndUser, FromBuiltin, "", SelfServe, true, FromBuiltin, ""},
		{"default policy", tenantWith(allIntegrations, mappedCustomer, std, named), EndUser, FromDefaultPolicy, "Std", WelcomeEmail, true, FromDefaultPolicy, "Std"},
		{"default policy leaves unset keys built-in", tenantWith(allIntegrations, mappedCustomer, std), EndUser, FromDefaultPolicy, "Std", PSAMatch, false, FromBuiltin, ""},
		{"assigned policy wins over default", tenantWith(allIntegrations, withPolicy(EndUser, "Named"), std, named), EndUser, FromPolicy, "Named", Paused, true, FromPolicy, "Named"},
		{"opted out uses customer options", tenantWith(allIntegrations, optedOut, std), EndUser, FromCustomer, "", PSAMatch, true, FromCustomer, ""},
		{"opted out, unset key built-in", tenantWith(allIntegrations, optedOut, std), EndUser, FromCustomer, "", WelcomeEmail, false, FromBuiltin, ""},
		{"admin default policy", tenantWith(allIntegrations, mappedCustomer, std, adminDef), Admin, FromDefaultPolicy, "Adm", Rotation, true, FromDefaultPolicy, "Adm"},
		{"admin built-in stores in vault", tenantWith(allIntegrations, mappedCustomer, std), Admin, FromBuiltin, "", VaultMatch, true, FromBuiltin, ""},
		{"end-user policy does not apply to admins", tenantWith(allIntegrations, withPolicy(EndUser, "Named"), named), Admin, FromBuiltin, "", Paused, false, FromBuiltin, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.tenant.Customers[0]
			r := Resolve(tc.tenant, c, tc.typ)
			if r.Origin != tc.origin || r.Policy != tc.policy {
				t.Fatalf("origin = %s %q, want %s %q", r.Origin, r.Policy, tc.origin, tc.policy)
			}
			s := r.Setting(tc.key)
			if s.Value != tc.value || s.Origin != tc.keyOrigin || s.Policy != tc.keyPolicy {
				t.Fatalf("%s = %v from %s %q, want %v from %s %q", tc.key, s.Value, s.Origin, s.Policy, tc.value, tc.keyOrigin, tc.keyPolicy)
			}
			if len(r.Settings) != len(OptionKeys(tc.typ)) {
				t.Fatalf("%d settings, want every %s option", len(r.Settings), tc.typ)
			}
		})
	}
}

func TestAvailability(t *testing.T) {
	all := Values{Paused: false, VaultMatch: true, VaultCreate: true, WelcomeEmail: true, PSAMatch: true, PSACreate: true, SelfServe: true, M365Sync: true}
	allAdmin := Values{Rotation: true, VaultMatch: true, VaultCreate: true}
	onlyTech := Integrations{TechVault: &TechVault{Enabled: true}}
	itglueNoMap := Integrations{ITGlue: allIntegrations.ITGlue}
	mappedNoIntegration := mappedCustomer
	cases := []struct {
		name      string
		in        Integrations
		c         Customer
		typ       AccountType
		set       Values
		key       Option
		available bool
		effective bool
		reason    string
	}{
		{"vault_match with IT Glue mapping", allIntegrations, mappedCustomer, EndUser, all, VaultMatch, true, true, ""},
		{"vault_match without any vault", Integrations{}, bareCustomer, EndUser, all, VaultMatch, false, false, "no IT Glue or Hudu integration is configured; the Technician Vault is not enabled"},
		{"vault_match with IT Glue but no mapping", itglueNoMap, bareCustomer, EndUser, all, VaultMatch, false, false, "not mapped to an IT Glue organization or Hudu company"},
		{"vault_match mapped but integration missing", Integrations{}, mappedNoIntegration, EndUser, all, VaultMatch, false, false, "no IT Glue or Hudu integration"},
		{"vault_match with only the Technician Vault", onlyTech, bareCustomer, EndUser, all, VaultMatch, true, true, ""},
		{"vault_create needs vault_match on", allIntegrations, mappedCustomer, EndUser, Values{VaultMatch: false, VaultCreate: true}, VaultCreate, false, false, "vault_create needs vault_match on"},
		{"welcome_email with SMTP", allIntegrations, mappedCustomer, EndUser, all, WelcomeEmail, true, true, ""},
		{"welcome_email without SMTP", Integrations{}, mappedCustomer, EndUser, all, WelcomeEmail, false, false, "no SMTP relay"},
		{"psa_match mapped", allIntegrations, mappedCustomer, EndUser, all, PSAMatch, true, true, ""},
		{"psa_match no company", allIntegrations, bareCustomer, EndUser, all, PSAMatch, false, false, "not mapped to a ConnectWise PSA company"},
		{"psa_match no PSA", Integrations{}, mappedCustomer, EndUser, all, PSAMatch, false, false, "no PSA integration"},
		{"psa_create needs psa_match", allIntegrations, mappedCustomer, EndUser, Values{PSAMatch: false, PSACreate: true}, PSACreate, false, false, "psa_create needs psa_match on"},
		{"psa_create unavailable without company", allIntegrations, bareCustomer, EndUser, all, PSACreate, false, false, "not mapped"},
		{"self_serve always", Integrations{}, bareCustomer, EndUser, all, SelfServe, true, true, ""},
		{"paused always", Integrations{}, bareCustomer, EndUser, Values{Paused: true}, Paused, true, true, ""},
		{"m365_sync with tenant", allIntegrations, mappedCustomer, EndUser, all, M365Sync, true, true, ""},
		{"m365_sync without tenant", allIntegrations, bareCustomer, EndUser, all, M365Sync, false, false, "no Microsoft 365 tenant connected"},
		{"m365_sync without app registration", Integrations{}, mappedCustomer, EndUser, all, M365Sync, false, false, "no Microsoft 365 app registration"},
		{"admin vault with IT Glue", allIntegrations, mappedCustomer, Admin, allAdmin, VaultMatch, true, true, ""},
		{"admin vault without vault", Integrations{}, bareCustomer, Admin, allAdmin, VaultMatch, false, false, "no IT Glue or Hudu"},
		{"admin vault forced by Technician Vault", onlyTech, bareCustomer, Admin, Values{VaultMatch: false}, VaultMatch, true, true, "always on with the Technician Vault"},
		{"admin create forced by Technician Vault", onlyTech, bareCustomer, Admin, Values{VaultCreate: false}, VaultCreate, true, true, "always on with the Technician Vault"},
		{"rotation with vault storage", allIntegrations, mappedCustomer, Admin, allAdmin, Rotation, true, true, ""},
		{"rotation with Technician Vault only", onlyTech, bareCustomer, Admin, allAdmin, Rotation, true, true, ""},
		{"rotation without vault", Integrations{}, bareCustomer, Admin, allAdmin, Rotation, false, false, "rotation needs vault storage"},
		{"rotation with vault_match off", allIntegrations, mappedCustomer, Admin, Values{Rotation: true, VaultMatch: false, VaultCreate: false}, Rotation, false, false, "turn vault_match on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Policies = map[AccountType]string{tc.typ: NoPolicy}
			c.Options = map[AccountType]Values{tc.typ: tc.set}
			r := Resolve(tenantWith(tc.in, c), c, tc.typ)
			s := r.Setting(tc.key)
			if s.Available != tc.available || s.Effective != tc.effective {
				t.Fatalf("%s: available=%v effective=%v, want %v %v (reason %q)", tc.key, s.Available, s.Effective, tc.available, tc.effective, s.Reason)
			}
			if !strings.Contains(s.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", s.Reason, tc.reason)
			}
			if !tc.available && s.Reason == "" {
				t.Fatal("an unavailable option must say why")
			}
		})
	}
}

func TestRolloutWarnings(t *testing.T) {
	c := mappedCustomer
	c.Policies = map[AccountType]string{EndUser: NoPolicy}
	for _, tc := range []struct {
		set  Values
		want int
	}{
		{Values{WelcomeEmail: false, SelfServe: true}, 0},
		{Values{WelcomeEmail: true, SelfServe: true}, 1},
		{Values{WelcomeEmail: true, SelfServe: false}, 2},
	} {
		c.Options = map[AccountType]Values{EndUser: tc.set}
		r := Resolve(tenantWith(allIntegrations, c), c, EndUser)
		if len(r.Warnings) != tc.want {
			t.Errorf("%v: warnings %q, want %d", tc.set, r.Warnings, tc.want)
		}
	}
}

func TestCheckValues(t *testing.T) {
	cases := []struct {
		typ  AccountType
		v    Values
		tech bool
		err  string
	}{
		{EndUser, Values{VaultMatch: true, VaultCreate: true}, false, ""},
		{EndUser, Values{VaultCreate: true}, false, "vault_create needs vault_match"},
		{EndUser, Values{PSACreate: true}, false, "psa_create needs psa_match"},
		{EndUser, Values{PSAMatch: true, PSACreate: true}, false, ""},
		{EndUser, Values{Rotation: true}, false, "unknown end-user option \"rotation\""},
		{Admin, Values{WelcomeEmail: true}, false, "unknown admin option \"welcome_email\""},
		{Admin, Values{Rotation: true}, false, ""}, // built-in admin vault_match is on
		{Admin, Values{Rotation: true, VaultMatch: false, VaultCreate: false}, false, "rotation needs vault storage"},
		{Admin, Values{Rotation: true, VaultMatch: false, VaultCreate: false}, true, "cannot be turned off"},
		{Admin, Values{VaultCreate: false}, true, "cannot be turned off"},
		{Admin, Values{Rotation: true}, true, ""},
	}
	for _, tc := range cases {
		err := CheckValues(tc.typ, tc.v, tc.tech)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckValues(%s, %v, tech=%v) = %v, want %q", tc.typ, tc.v, tc.tech, err, tc.err)
		}
	}
}

func TestCheckCustomerOptions(t *testing.T) {
	def := Policy{Name: "Std", Type: EndUser, Default: true}
	inPolicy := mappedCustomer
	inPolicy.Policies = map[AccountType]string{EndUser: "Std"}
	out := bareCustomer
	out.Policies = map[AccountType]string{EndUser: NoPolicy}
	cases := []struct {
		name string
		t    *Tenant
		c    Customer
		v    Values
		err  string
	}{
		{"follows assigned policy", tenantWith(allIntegrations, inPolicy, def), inPolicy, Values{Paused: true}, "follows end-user policy \"Std\""},
		{"follows default policy", tenantWith(allIntegrations, mappedCustomer, def), mappedCustomer, Values{Paused: true}, "follows the default end-user policy"},
		{"no policy at all is fine", tenantWith(allIntegrations, mappedCustomer), mappedCustomer, Values{Paused: true}, ""},
		{"unavailable option refused with reason", tenantWith(allIntegrations, out), out, Values{PSAMatch: true}, "psa_match is not available for customer bare: customer bare is not mapped to a ConnectWise PSA company"},
		{"turning an unavailable option off is fine", tenantWith(allIntegrations, out), out, Values{PSAMatch: false}, ""},
		{"unknown key", tenantWith(allIntegrations, out), out, Values{"welcome": true}, "unknown end-user option"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCustomerOptions(tc.t, tc.c, EndUser, tc.v)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestParseAssignments(t *testing.T) {
	o, err := ParseAssignments(EndUser, []string{"welcome_email=on", "self_serve=false", "psa_match=1"})
	v := o.Values
	if err != nil || !v[WelcomeEmail] || v[SelfServe] || !v[PSAMatch] || len(v) != 3 || o.Numbers != nil {
		t.Fatalf("got %v, %v", o, err)
	}
	for _, bad := range [][]string{{"welcome_email"}, {"welcome=true"}, {"paused=maybe"}, {"rotation=true"}, nil} {
		_, err := ParseAssignments(EndUser, bad)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("ParseAssignments(%q) = %v, want a usage error", bad, err)
		}
	}
}

// Numeric options on the command line: whole numbers in range for the
// type that has them; a number for an on/off option, or true/false for a
// numeric one, is refused with what is expected.
func TestParseNumericAssignments(t *testing.T) {
	cases := []struct {
		name    string
		typ     AccountType
		words   []string
		values  Values
		numbers Numbers
		err     string
	}{
		{"days", Admin, []string{"rotation_days=14"}, Values{}, Numbers{RotationDays: 14}, ""},
		{"length with flags", Admin, []string{"rotation=on", "rotation_length=32", "rotation_days= 7 "}, Values{Rotation: true}, Numbers{RotationLength: 32, RotationDays: 7}, ""},
		{"lowest and highest", Admin, []string{"rotation_days=1", "rotation_length=128"}, Values{}, Numbers{RotationDays: 1, RotationLength: 128}, ""},
		{"days below range", Admin, []string{"rotation_days=0"}, nil, nil, "option rotation_days: 0 is out of range: want a whole number from 1 to 365"},
		{"days above range", Admin, []string{"rotation_days=366"}, nil, nil, "option rotation_days: 366 is out of range: want a whole number from 1 to 365"},
		{"length below range", Admin, []string{"rotation_length=13"}, nil, nil, "option rotation_length: 13 is out of range: want a whole number from 14 to 128"},
		{"length above range", Admin, []string{"rotation_length=129"}, nil, nil, "want a whole number from 14 to 128"},
		{"fraction", Admin, []string{"rotation_days=14.5"}, nil, nil, `option rotation_days: want a whole number from 1 to 365, not "14.5"`},
		{"boolean for a number", Admin, []string{"rotation_days=true"}, nil, nil, `option rotation_days: want a whole number from 1 to 365, not "true"`},
		{"empty", Admin, []string{"rotation_days="}, nil, nil, `not ""`},
		{"leading zero", Admin, []string{"rotation_days=030"}, nil, nil, `not "030"`},
		{"plus sign", Admin, []string{"rotation_days=+14"}, nil, nil, `not "+14"`},
		{"exponent", Admin, []string{"rotation_length=1e2"}, nil, nil, `not "1e2"`},
		{"huge", Admin, []string{"rotation_days=99999999999999999999"}, nil, nil, "want a whole number from 1 to 365"},
		{"number for a boolean", Admin, []string{"rotation=14"}, nil, nil, `option rotation: want true or false (or on/off), not "14"`},
		{"numeric key for end users", EndUser, []string{"rotation_days=14"}, nil, nil, `unknown end-user option "rotation_days" (it is an admin option): the end-user options are paused,`},
		{"admin options listed", Admin, []string{"welcome_email=true"}, nil, nil, "the admin options are paused, rotation, vault_match, vault_create, rotation_days, rotation_length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseAssignments(tc.typ, tc.words)
			if tc.err != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !o.Values.Equal(tc.values) || !maps.Equal(o.Numbers, tc.numbers) {
				t.Fatalf("got %v, %v; want %v %v", o, err, tc.values, tc.numbers)
			}
		})
	}
}

func FuzzParseAssignments(f *testing.F) {
	for _, s := range []string{"paused=true", "vault_create=off", "x", "=", "self_serve=\xff"} {
		f.Add("end-user", s)
	}
	for _, s := range []string{"rotation_days=14", "rotation_length=0", "rotation_days=-1", "rotation=7"} {
		f.Add("admin", s)
	}
	f.Fuzz(func(t *testing.T, typ, word string) {
		at, err := ParseAccountType(typ)
		if err != nil {
			return
		}
		o, err := ParseAssignments(at, []string{word})
		if err == nil {
			if len(o.Values)+len(o.Numbers) != 1 || o.Values.CheckKeys(at) != nil || CheckNumbers(at, o.Numbers) != nil {
				t.Fatalf("accepted %q as %v", word, o)
			}
		}
	})
}

// Numeric options resolve in the same order as every option: assigned
// policy, customer-specific (out of policies), default policy, built-in;
// each value says where it comes from.
func TestResolveNumbers(t *testing.T) {
	def := Policy{Name: "Adm", Type: Admin, Default: true, Options: Values{Rotation: true}, Numbers: Numbers{RotationDays: 14}}
	named := Policy{Name: "Strict", Type: Admin, Options: Values{Rotation: true}, Numbers: Numbers{RotationDays: 7, RotationLength: 40}}
	withPolicy := func(name string) Customer {
		c := mappedCustomer
		c.Policies = map[AccountType]string{Admin: name}
		return c
	}
	own := withPolicy(NoPolicy)
	own.Options = map[AccountType]Values{Admin: {Rotation: true}}
	own.Numbers = map[AccountType]Numbers{Admin: {RotationLength: 64}}
	broken := withPolicy("Damaged")
	damaged := Policy{Name: "Damaged", Type: Admin, Numbers: Numbers{RotationDays: 0, RotationLength: 500}}

	type want struct {
		value  int
		origin Origin
		policy string
	}
	cases := []struct {
		name         string
		tenant       *Tenant
		days, length want
		warning      string
	}{
		{"built-in when nothing set", tenantWith(allIntegrations, mappedCustomer), want{30, FromBuiltin, ""}, want{24, FromBuiltin, ""}, ""},
		{"default policy", tenantWith(allIntegrations, mappedCustomer, def), want{14, FromDefaultPolicy, "Adm"}, want{24, FromBuiltin, ""}, ""},
		{"assigned policy wins over default", tenantWith(allIntegrations, withPolicy("Strict"), def, named), want{7, FromPolicy, "Strict"}, want{40, FromPolicy, "Strict"}, ""},
		{"customer-specific out of policies", tenantWith(allIntegrations, own, def, named), want{30, FromBuiltin, ""}, want{64, FromCustomer, ""}, ""},
		{"a stored value out of range is not used", tenantWith(allIntegrations, broken, damaged), want{30, FromBuiltin, ""}, want{24, FromBuiltin, ""},
			`option rotation_days: 0 is out of range: want a whole number from 1 to 365 (policy "Damaged"); built-in 30 applies`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Resolve(tc.tenant, tc.tenant.Customers[0], Admin)
			for k, w := range map[Option]want{RotationDays: tc.days, RotationLength: tc.length} {
				n := r.Number(k)
				if n.Value != w.value || n.Origin != w.origin || n.Policy != w.policy || n.Effective != w.value || !n.Available {
					t.Errorf("%s = %+v, want %d from %s %q", k, n, w.value, w.origin, w.policy)
				}
			}
			if len(r.Numbers) != 2 || r.Numbers[0].Key != RotationDays || r.Numbers[1].Key != RotationLength {
				t.Fatalf("numbers %+v, want rotation_days then rotation_length", r.Numbers)
			}
			if tc.warning != "" && !slices.Contains(r.Warnings, tc.warning) {
				t.Fatalf("warnings %q, want %q", r.Warnings, tc.warning)
			}
		})
	}
	// End users have no numeric options.
	if r := Resolve(tenantWith(allIntegrations, mappedCustomer, def), mappedCustomer, EndUser); len(r.Numbers) != 0 {
		t.Fatalf("end-user numbers %+v", r.Numbers)
	}
}

func TestCheckNumbers(t *testing.T) {
	cases := []struct {
		typ AccountType
		n   Numbers
		err string
	}{
		{Admin, nil, ""},
		{Admin, Numbers{RotationDays: 365, RotationLength: 14}, ""},
		{Admin, Numbers{RotationDays: 366}, "option rotation_days: 366 is out of range"},
		{Admin, Numbers{RotationLength: -1}, "option rotation_length: -1 is out of range"},
		{Admin, Numbers{"rotation_weeks": 2}, `unknown admin option "rotation_weeks"`},
		{EndUser, Numbers{RotationDays: 30}, `unknown end-user option "rotation_days" (it is an admin option)`},
	}
	for _, tc := range cases {
		err := CheckNumbers(tc.typ, tc.n)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckNumbers(%s, %v) = %v, want %q", tc.typ, tc.n, err, tc.err)
		}
	}
}

package jobs

import (
	"maps"
	"os"
	"strings"
	"testing"
)

func TestExampleTenantParses(t *testing.T) {
	b, err := os.ReadFile("../examples/tenant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := ParseTenantFile("tenant.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tn.Customers) != 2 || len(tn.Policies) != 2 || tn.Integrations.ITGlue == nil {
		t.Fatalf("parsed %+v", tn)
	}
	acme, _ := tn.Customer("acme")
	if acme.Policies[Admin] != "Rotated admins" || acme.Vault.ITGlueOrganizationID != "2841121" || acme.Sources.AD.Select.Builtin[0] != "Domain Users" {
		t.Fatalf("acme = %+v", acme)
	}
}

// TestTenantFileErrors checks that bad files give errors with line numbers.
func TestTenantFileErrors(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"unknown key", "integrations:\n  itglue:\n    url: https://x.example\n    api_key: env:K\n    apikey: x\n", "t.yaml:5: field apikey not found"},
		{"wrong type", "policies:\n  - name: P\n    type: end-user\n    default: maybe\n", "t.yaml:4: cannot unmarshal !!str `maybe` into bool"},
		{"missing policy", "customers:\n  - id: acme\n    name: Acme\n    policies:\n      admin: Nope\n", "t.yaml:5: customers[0].policies.admin: no admin policy named \"Nope\""},
		{"policy of the wrong type", "policies:\n  - name: P\n    type: end-user\ncustomers:\n  - id: acme\n    name: Acme\n    policies:\n      admin: P\n", "t.yaml:8: customers[0].policies.admin: policy \"P\" is a end-user policy, not admin"},
		{"unknown option", "policies:\n  - name: P\n    type: admin\n    options:\n      welcome_email: true\n", "t.yaml:5: policies[0].options.welcome_email: unknown admin option"},
		{"two defaults", "policies:\n  - name: A\n    type: admin\n    default: true\n  - name: B\n    type: admin\n    default: true\n", "t.yaml:7: policies[1].default: \"A\" and \"B\" are both default admin policies"},
		{"plain secret", "integrations:\n  hudu:\n    url: https://h.example\n    api_key: hunter2\n", "t.yaml:4: integrations.hudu.api_key: secrets must be a reference"},
		{"create without match", "policies:\n  - name: P\n    type: end-user\n    options:\n      psa_create: true\n", "t.yaml:4: policies[0].options: psa_create needs psa_match"},
		{"options while in policy", "customers:\n  - id: acme\n    name: Acme\n    options:\n      end-user: {paused: true}\n", "t.yaml:5: customers[0].options.end-user: customer-specific end-user options are used only for a customer taken out of policies"},
		{"bad customer id", "customers:\n  - id: Acme Dental\n    name: Acme\n", "t.yaml:2: customers[0].id: \"Acme Dental\""},
		{"plain ldap", "customers:\n  - id: a\n    name: A\n    sources:\n      ad:\n        url: ldap://dc1\n        bind_dn: x\n        bind_password: env:P\n        base_dn: DC=a\n", "t.yaml:6: customers[0].sources.ad.url: plain ldap://"},
		{"bad rate", "integrations:\n  itglue:\n    url: https://x.example\n    api_key: env:K\n    rate_limit: fast\n", "t.yaml:5: integrations.itglue.rate_limit: rate \"fast\""},
		{"two PSAs, no kind", "integrations:\n  halopsa: {url: https://h.example, client_id: env:A, client_secret: env:B}\n  autotask: {username: env:A, secret: env:B, integration_code: env:C}\ncustomers:\n  - id: a\n    name: A\n    psa: {company_id: \"1\"}\n", "t.yaml:7: customers[0].psa: several PSAs are configured: say which one"},
		{"PSA kind not configured", "customers:\n  - id: a\n    name: A\n    psa: {kind: autotask, company_id: \"1\"}\n", "t.yaml:4: customers[0].psa.kind: autotask is not configured"},
		{"not yaml", "customers: [\n", "t.yaml:1: did not find expected node content"},
		{"empty", "", "t.yaml: the file is empty"},
		{"invalid utf-8", "customers:\n  - id: a\n    name: \xff\n", "not valid UTF-8"},
		{"env ref to autoimport's own key", "integrations:\n  itglue:\n    url: https://x.example\n    api_key: env:AUTOIMPORT_SECRET_KEY\n", "t.yaml:4: integrations.itglue.api_key: env:AUTOIMPORT_SECRET_KEY is autoimport's own configuration"},
		{"file ref under /proc", "integrations:\n  hudu:\n    url: https://h.example\n    api_key: file:/proc/self/environ\n", "t.yaml:4: integrations.hudu.api_key: secret file:/proc/self/environ: /proc/self/environ is under /proc"},
		{"template climbing out of the secrets directory", "integrations:\n  smtp: {host: smtp.example, port: 587, from: a@b.example, enrollment_url: https://e.example,\n    text_template: ../etc/passwd}\n", "integrations.smtp.text_template: ../etc/passwd climbs out of AUTOIMPORT_SECRETS_DIR"},
		{"template under /proc", "integrations:\n  smtp: {host: smtp.example, port: 587, from: a@b.example, enrollment_url: https://e.example,\n    html_template: /proc/self/environ}\n", "integrations.smtp.html_template: /proc/self/environ is under /proc"},
		{"vendor URL over http", "integrations:\n  itglue:\n    url: http://any-host\n    api_key: env:K\n", "t.yaml:3: integrations.itglue.url: \"http://any-host\": credentials are only sent over https"},
		{"Graph login over http", "integrations:\n  m365: {client_id: env:A, client_secret: env:B, login_url: \"http://login.example\"}\n", "integrations.m365.login_url: \"http://login.example\": credentials are only sent over https"},
		{"SMTP in clear to another host", "integrations:\n  smtp: {host: smtp.example, port: 25, tls: none, from: a@b.example, enrollment_url: https://e.example}\n", "integrations.smtp.tls: none sends the SMTP password and every welcome email in clear"},
		// Numeric options: whole numbers in range, for the type that has
		// them; errors at the line of the value or key.
		{"number out of range", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation: true\n      rotation_days: 400\n", "t.yaml:6: policies[0].options.rotation_days: 400 is out of range: want a whole number from 1 to 365"},
		{"length too short", "policies:\n  - name: P\n    type: admin\n    options: {rotation_length: 8}\n", "t.yaml:4: policies[0].options.rotation_length: 8 is out of range: want a whole number from 14 to 128"},
		{"fraction", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: 14.5\n", "t.yaml:5: option rotation_days: want a whole number from 1 to 365, not 14.5"},
		{"quoted number", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: \"14\"\n", "t.yaml:5: option rotation_days: want a whole number from 1 to 365, not \"14\""},
		{"octal-looking number", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: 030\n", "t.yaml:5: option rotation_days: want a whole number from 1 to 365, not 030"},
		{"boolean for a number", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: true\n", "t.yaml:5: option rotation_days: want a whole number from 1 to 365, not true"},
		{"number for a boolean", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation: 14\n", "t.yaml:5: option rotation: want true or false, not 14"},
		{"list for a number", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: [7]\n", "t.yaml:5: option rotation_days: want a whole number from 1 to 365, not a list"},
		{"options not a mapping", "policies:\n  - name: P\n    type: admin\n    options: [rotation]\n", "t.yaml:4: options: want a mapping of option: value"},
		{"duplicated number", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_days: 7\n      rotation_days: 8\n", "t.yaml:6: mapping key \"rotation_days\" already defined at line 5"},
		{"number on an end-user policy", "policies:\n  - name: P\n    type: end-user\n    options:\n      paused: false\n      rotation_days: 14\n", "t.yaml:6: policies[0].options.rotation_days: unknown end-user option \"rotation_days\" (it is an admin option)"},
		{"unknown numeric key", "policies:\n  - name: P\n    type: admin\n    options:\n      rotation_weeks: 2\n", "t.yaml:5: policies[0].options.rotation_weeks: unknown admin option \"rotation_weeks\""},
		{"unknown field beside options", "policies:\n  - name: P\n    type: admin\n    rotation_days: 14\n", "t.yaml:4: field rotation_days not found in type jobs.Policy"},
		{"customer number on end users", "customers:\n  - id: a\n    name: A\n    policies: {end-user: none}\n    options:\n      end-user:\n        rotation_days: 7\n", "t.yaml:7: customers[0].options.end-user.rotation_days: unknown end-user option \"rotation_days\""},
		{"customer number while in policy", "customers:\n  - id: a\n    name: A\n    options:\n      admin: {rotation_days: 7}\n", "t.yaml:5: customers[0].options.admin: customer-specific admin options are used only for a customer taken out of policies"},
		{"customer number out of range", "customers:\n  - id: a\n    name: A\n    policies: {admin: none}\n    options:\n      admin:\n        rotation_length: 200\n", "t.yaml:7: customers[0].options.admin.rotation_length: 200 is out of range: want a whole number from 14 to 128"},
		{"customer number not a number", "customers:\n  - id: a\n    name: A\n    policies: {admin: none}\n    options:\n      admin:\n        rotation_days: weekly\n", "t.yaml:7: option rotation_days: want a whole number from 1 to 365, not \"weekly\""},
		{"unknown customer field still found", "customers:\n  - id: a\n    name: A\n    colour: blue\n", "t.yaml:4: field colour not found in type jobs.Customer"},
		{"unavailable customer option", "customers:\n  - id: a\n    name: A\n    policies: {end-user: none}\n    options:\n      end-user: {welcome_email: true}\n", "t.yaml:6: customers[0].options.end-user: end-user option welcome_email is not available for customer a: no SMTP relay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTenantFile("t.yaml", []byte(tc.file))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// Several errors in options are reported together, each with its line.
func TestTenantFileOptionErrorsTogether(t *testing.T) {
	file := "policies:\n  - name: P\n    type: admin\n    options:\n      rotation: 14\n      rotation_days: x\n      rotation_length: 12.5\n"
	_, err := ParseTenantFile("t.yaml", []byte(file))
	want := []string{
		"t.yaml:5: option rotation: want true or false, not 14",
		"t.yaml:6: option rotation_days: want a whole number from 1 to 365, not \"x\"",
		"t.yaml:7: option rotation_length: want a whole number from 14 to 128, not 12.5",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// Numeric options sit in the same options mapping as the on/off ones, for
// an admin policy and for a customer out of admin policies; booleans read
// as before (yes/no included), and an export writes both back in one
// mapping that parses to the same tenant.
func TestTenantFileNumbers(t *testing.T) {
	file := `policies:
  - name: Rotated admins
    type: admin
    options: {rotation: true, rotation_days: 14, rotation_length: 32}
  - name: Std
    type: end-user
    options: {paused: no, self_serve: yes}
customers:
  - id: bluebird
    name: Bluebird
    policies: {admin: none}
    options:
      admin: {rotation_days: 7}
  - id: cobalt
    name: Cobalt
    policies: {admin: none}
    options:
      admin:
        rotation: false
        rotation_length: 20
`
	tn, err := ParseTenantFile("t.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tn.Policy(Admin, "Rotated admins")
	if !p.Options.Equal(Values{Rotation: true}) || !maps.Equal(p.Numbers, Numbers{RotationDays: 14, RotationLength: 32}) {
		t.Fatalf("policy options %v numbers %v", p.Options, p.Numbers)
	}
	std, _ := tn.Policy(EndUser, "Std")
	if !std.Options.Equal(Values{Paused: false, SelfServe: true}) || std.Numbers != nil {
		t.Fatalf("end-user policy options %v numbers %v", std.Options, std.Numbers)
	}
	bb, _ := tn.Customer("bluebird")
	if len(bb.Options[Admin]) != 0 || !maps.Equal(bb.Numbers[Admin], Numbers{RotationDays: 7}) {
		t.Fatalf("bluebird options %v numbers %v", bb.Options, bb.Numbers)
	}
	co, _ := tn.Customer("cobalt")
	if !co.Options[Admin].Equal(Values{Rotation: false}) || !maps.Equal(co.Numbers[Admin], Numbers{RotationLength: 20}) {
		t.Fatalf("cobalt options %v numbers %v", co.Options, co.Numbers)
	}
	if r := Resolve(tn, bb, Admin); r.Number(RotationDays).Value != 7 || r.Number(RotationDays).Origin != FromCustomer {
		t.Fatalf("bluebird resolves %+v", r.Numbers)
	}

	out, err := EncodeTenantFile(tn)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    options:\n      rotation: true\n      rotation_days: 14\n      rotation_length: 32\n",
		"    policies:\n      admin: none\n    options:\n      admin:\n        rotation_days: 7\n",
		"      admin:\n        rotation: false\n        rotation_length: 20\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("export lacks\n%s\nin\n%s", want, out)
		}
	}
	back, err := ParseTenantFile("export.yaml", out)
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, out)
	}
	if again, _ := EncodeTenantFile(back); string(again) != string(out) {
		t.Fatalf("export does not round-trip:\n%s\n---\n%s", out, again)
	}
}

func FuzzParseTenantFile(f *testing.F) {
	if b, err := os.ReadFile("../examples/tenant.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("customers:\n  - id: a\n    name: A\n    policies: {admin: none}\n    options: {admin: {rotation: true}}\n"))
	f.Add([]byte("policies: [{name: P, type: admin, options: {vault_match: false, rotation: true}}]"))
	f.Add([]byte("integrations: {smtp: {host: h, port: 99999}}"))
	f.Add([]byte("policies: [{name: P, type: admin, options: {rotation: true, rotation_days: 14, rotation_length: 32}}]"))
	f.Add([]byte("customers:\n  - id: a\n    name: A\n    policies: {admin: none}\n    options: {admin: {rotation_days: 7}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tn, err := ParseTenantFile("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// What parses must encode and parse back to the same tenant.
		out, err := EncodeTenantFile(tn)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := ParseTenantFile("export.yaml", out)
		if err != nil {
			t.Fatalf("a valid tenant's export does not parse: %v\n%s", err, out)
		}
		again, _ := EncodeTenantFile(back)
		if string(again) != string(out) {
			t.Fatalf("export does not round-trip:\n%s\n---\n%s", out, again)
		}
	})
}

// What a tenant file may point at: https anywhere, http and SMTP without
// TLS only on this machine or, for an HTTP API, when the integration says
// allow_insecure_http.
func TestTenantFileTransportsThatAreAllowed(t *testing.T) {
	for name, file := range map[string]string{
		"http to loopback":            "integrations:\n  itglue: {url: \"http://127.0.0.1:8080\", api_key: env:K}\n",
		"http to localhost":           "integrations:\n  hudu: {url: \"http://localhost:3000\", api_key: env:K}\n",
		"http allowed explicitly":     "integrations:\n  halopsa: {url: \"http://halo.lan\", allow_insecure_http: true, client_id: env:A, client_secret: env:B}\n",
		"Graph on loopback":           "integrations:\n  m365: {client_id: env:A, client_secret: env:B, login_url: \"http://[::1]:9000\", graph_url: \"http://127.0.0.1:9001\"}\n",
		"SMTP in clear on this host":  "integrations:\n  smtp: {host: 127.0.0.1, port: 25, tls: none, from: a@b.example, enrollment_url: https://e.example}\n",
		"SMTP in clear to localhost":  "integrations:\n  smtp: {host: localhost, port: 25, tls: none, from: a@b.example, enrollment_url: https://e.example}\n",
		"an ordinary env reference":   "integrations:\n  itglue: {url: \"https://api.itglue.com\", api_key: env:MSP_ITGLUE_KEY}\n",
		"a file reference under /run": "integrations:\n  itglue: {url: \"https://api.itglue.com\", api_key: file:/run/secrets/itglue}\n",
	} {
		if _, err := ParseTenantFile("t.yaml", []byte(file)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

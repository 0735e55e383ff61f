package jobs

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// The stored JSON document of options: one object with on/off and numeric
// options; documents written before numeric options existed read as they
// did.
func TestOptionSetJSON(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		values  Values
		numbers Numbers
		err     string
	}{
		{"booleans only, as stored before", `{"paused":false,"rotation":true,"vault_create":true,"vault_match":true}`, Values{Paused: false, Rotation: true, VaultCreate: true, VaultMatch: true}, nil, ""},
		{"empty", `{}`, Values{}, nil, ""},
		{"both", `{"rotation":true,"rotation_days":14,"rotation_length":32}`, Values{Rotation: true}, Numbers{RotationDays: 14, RotationLength: 32}, ""},
		{"numbers only", `{"rotation_days":7}`, Values{}, Numbers{RotationDays: 7}, ""},
		{"fraction", `{"rotation_days":14.5}`, nil, nil, "option rotation_days: want a whole number from 1 to 365, not 14.5"},
		{"exponent", `{"rotation_days":1e1}`, nil, nil, "not 1e1"},
		{"string", `{"rotation_days":"14"}`, nil, nil, `not "14"`},
		{"boolean for a number", `{"rotation_days":true}`, nil, nil, "not true"},
		{"number for a boolean", `{"rotation":1}`, nil, nil, "option rotation: want true or false, not 1"},
		{"not an object", `[true]`, nil, nil, "cannot unmarshal array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o OptionSet
			err := json.Unmarshal([]byte(tc.doc), &o)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Values == nil || !o.Values.Equal(tc.values) || !maps.Equal(o.Numbers, tc.numbers) {
				t.Fatalf("read %#v %#v, want %v %v", o.Values, o.Numbers, tc.values, tc.numbers)
			}
			if tc.numbers == nil && o.Numbers != nil {
				t.Fatalf("numbers %#v, want nil", o.Numbers)
			}
			b, err := json.Marshal(o)
			if err != nil || string(b) != tc.doc {
				t.Fatalf("written back as %s, %v; want %s", b, err, tc.doc)
			}
		})
	}
	var o OptionSet
	if err := json.Unmarshal([]byte("null"), &o); err != nil || !o.IsZero() {
		t.Fatalf("null: %v %v", o, err)
	}
	if b, _ := json.Marshal(OptionSet{}); string(b) != "{}" {
		t.Fatalf("an empty set is written %s, want {}", b)
	}
}

// A policy's and a customer's JSON (audit documents, -o json) hold the
// numeric options in the same options object, and read back the same.
func TestPolicyAndCustomerJSON(t *testing.T) {
	p := Policy{Name: "Rotated admins", Type: Admin, Options: Values{Rotation: true}, Numbers: Numbers{RotationDays: 14}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"Rotated admins","type":"admin","options":{"rotation":true,"rotation_days":14}}`; string(b) != want {
		t.Fatalf("policy JSON %s, want %s", b, want)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil || back.Name != p.Name || !back.Options.Equal(p.Options) || !maps.Equal(back.Numbers, p.Numbers) {
		t.Fatalf("read back %+v, %v", back, err)
	}
	// Booleans only: the document is what it always was.
	b, _ = json.Marshal(Policy{Name: "Std", Type: EndUser, Default: true, Options: Values{Paused: true}})
	if want := `{"name":"Std","type":"end-user","default":true,"options":{"paused":true}}`; string(b) != want {
		t.Fatalf("policy JSON %s, want %s", b, want)
	}

	c := Customer{ID: "bluebird", Name: "Bluebird", Policies: map[AccountType]string{Admin: NoPolicy, EndUser: NoPolicy},
		Options: map[AccountType]Values{EndUser: {Paused: true}},
		Numbers: map[AccountType]Numbers{Admin: {RotationDays: 7}}}
	b, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"options":{"admin":{"rotation_days":7},"end-user":{"paused":true}}`) || strings.Contains(string(b), "Numbers") {
		t.Fatalf("customer JSON %s", b)
	}
	var cb Customer
	if err := json.Unmarshal(b, &cb); err != nil {
		t.Fatal(err)
	}
	if !cb.Options[EndUser].Equal(Values{Paused: true}) || !maps.Equal(cb.Numbers[Admin], Numbers{RotationDays: 7}) || cb.Options[Admin] == nil || cb.Policies[Admin] != NoPolicy {
		t.Fatalf("read back %+v", cb)
	}
	// Without options the document has none.
	b, _ = json.Marshal(Customer{ID: "a", Name: "A"})
	if strings.Contains(string(b), "options") {
		t.Fatalf("customer JSON %s", b)
	}
}

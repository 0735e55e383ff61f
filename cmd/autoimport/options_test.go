package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// resolvedJSON is what options show -o json prints per account type.
type resolvedJSON struct {
	Type    string `json:"type"`
	Options []struct {
		Key string `json:"key"`
	} `json:"options"`
	Numbers []struct {
		Key       string `json:"key"`
		Value     *int   `json:"value"`
		Origin    string `json:"origin"`
		Policy    string `json:"policy"`
		Available *bool  `json:"available"`
		Effective *int   `json:"effective"`
	} `json:"numbers"`
}

func showNumbers(t *testing.T, customer string) map[string]string {
	t.Helper()
	code, out, errs := cli(t, "", "options", "show", "--customer", customer, "-o", "json")
	if code != 0 {
		t.Fatalf("options show exit %d: %s", code, errs)
	}
	var res []resolvedJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("options show JSON: %v\n%s", err, out)
	}
	if len(res) != 2 || res[0].Type != "end-user" || len(res[0].Numbers) != 0 || res[1].Type != "admin" || len(res[1].Options) != 4 || len(res[1].Numbers) != 2 {
		t.Fatalf("want the admin type's two numeric options beside its four on/off ones, got %s", out)
	}
	got := map[string]string{}
	for _, n := range res[1].Numbers {
		if n.Value == nil || n.Effective == nil || *n.Effective != *n.Value || n.Available == nil || !*n.Available || n.Origin == "" {
			t.Fatalf("%s lacks value, origin or availability: %s", n.Key, out)
		}
		got[n.Key] = strings.TrimSpace(fmt.Sprintf("%d %s %s", *n.Value, n.Origin, n.Policy))
	}
	return got
}

// squash makes runs of spaces one, so that table rows compare whatever
// their column widths.
func squash(s string) string { return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ") }

// rotation_days and rotation_length set on an admin policy and on a
// customer out of admin policies, shown with their origin, exported and
// audited; bad values refused with what is expected.
func TestNumericOptionCommands(t *testing.T) {
	freshDir(t)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	check := func(customer string, want map[string]string) {
		t.Helper()
		got := showNumbers(t, customer)
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("%s %s = %q, want %q", customer, k, got[k], w)
			}
		}
	}
	// The example's admin policy sets rotation_days; bluebird follows no
	// admin policy and there is no default one.
	check("acme", map[string]string{"rotation_days": `30 policy Rotated admins`, "rotation_length": "24 built-in"})
	check("bluebird", map[string]string{"rotation_days": "30 built-in", "rotation_length": "24 built-in"})

	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "set", "Rotated admins", "rotation_days=14"}, 0, `updated policy "Rotated admins" (future rotations of 1 customers)`},
		{[]string{"policy", "set", "Rotated admins", "rotation_days=0"}, 2, "option rotation_days: 0 is out of range: want a whole number from 1 to 365"},
		{[]string{"policy", "set", "Rotated admins", "rotation_days=14.5"}, 2, `option rotation_days: want a whole number from 1 to 365, not "14.5"`},
		{[]string{"policy", "set", "Rotated admins", "rotation_days=true"}, 2, `option rotation_days: want a whole number from 1 to 365, not "true"`},
		{[]string{"policy", "set", "Rotated admins", "rotation=14"}, 2, `option rotation: want true or false (or on/off), not "14"`},
		{[]string{"policy", "set", "Standard end users", "rotation_days=14"}, 2, `unknown end-user option "rotation_days" (it is an admin option)`},
		{[]string{"policy", "create", "Strict admins", "--type", "admin", "rotation=true", "rotation_length=32"}, 0, "created admin policy"},
		{[]string{"policy", "create", "Loose admins", "--type", "admin", "rotation_length=8"}, 2, "option rotation_length: 8 is out of range: want a whole number from 14 to 128"},
		{[]string{"policy", "show", "Strict admins"}, 0, "rotation_length 32"},
		{[]string{"policy", "show", "Strict admins"}, 0, "rotation_days 30 (built-in)"},
		{[]string{"policy", "list"}, 0, "rotation=true rotation_length=32"},
		{[]string{"options", "set", "--customer", "acme", "--type", "admin", "rotation_days=7"}, 1, "policy unassign --customer acme --type admin"},
		{[]string{"policy", "unassign", "--customer", "bluebird", "--type", "admin"}, 0, "follows no admin policy"},
		{[]string{"options", "set", "--customer", "bluebird", "--type", "admin", "rotation_days=7"}, 0, "rotation_days 7 7 customer yes"},
		{[]string{"options", "set", "--customer", "bluebird", "--type", "admin", "rotation_length=200"}, 2, "option rotation_length: 200 is out of range"},
		{[]string{"options", "set", "--customer", "bluebird", "--type", "end-user", "rotation_days=7"}, 2, `unknown end-user option "rotation_days"`},
		{[]string{"options", "show", "--customer", "acme", "--type", "admin"}, 0, `rotation_days 14 14 policy "Rotated admins" yes`},
		{[]string{"customer", "show", "bluebird"}, 0, "rotation_length 24 24 built-in yes"},
		{[]string{"audit", "list", "--output", "json"}, 0, `\"rotation_days\":14`},
	}
	for _, s := range steps {
		code, out, errs := cli(t, "", s.args...)
		if code != s.code || !strings.Contains(squash(out+errs), s.want) {
			t.Fatalf("autoimport %s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", strings.Join(s.args, " "), code, s.code, out, errs, s.want)
		}
	}
	check("acme", map[string]string{"rotation_days": `14 policy Rotated admins`, "rotation_length": "24 built-in"})
	check("bluebird", map[string]string{"rotation_days": "7 customer", "rotation_length": "24 built-in"})

	// policy show and customer show -o json carry them in the options.
	_, out, _ := cli(t, "", "policy", "show", "Rotated admins", "-o", "json")
	if !strings.Contains(out, `"rotation_days": 14`) {
		t.Fatalf("policy show -o json:\n%s", out)
	}
	_, out, _ = cli(t, "", "customer", "show", "bluebird", "-o", "json")
	if !strings.Contains(out, `"admin": {`) || !strings.Contains(out, `"rotation_days": 7`) {
		t.Fatalf("customer show -o json:\n%s", out)
	}

	// The export holds them in the options mappings, and applies back
	// with no change.
	code, exported, _ := cli(t, "", "export")
	if code != 0 || !strings.Contains(exported, "      rotation_days: 14\n") || !strings.Contains(exported, "      admin:\n        rotation_days: 7\n") {
		t.Fatalf("export exit %d:\n%s", code, exported)
	}
	if code, out, errs := cli(t, exported, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("re-applying the export: %d %q %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %d %q", code, out)
	}
}

// A tenant file with a bad numeric option is refused with its line.
func TestTenantFileNumberErrorHasLine(t *testing.T) {
	freshDir(t)
	file := "policies:\n  - name: P\n    type: admin\n    options:\n      rotation: true\n      rotation_days: 400\n"
	code, _, errs := cli(t, file, "apply", "-f", "-")
	if code != 2 || !strings.Contains(errs, "-:6: policies[0].options.rotation_days: 400 is out of range: want a whole number from 1 to 365") {
		t.Fatalf("exit %d, %q", code, errs)
	}
}

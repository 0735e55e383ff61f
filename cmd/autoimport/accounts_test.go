package main

import (
	"strings"
	"testing"
)

func TestAccountsCommandsUsage(t *testing.T) {
	freshDir(t)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	cases := []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"accounts", "list", "--customer", "acme", "-o", "json"}, 0, "[]"},
		{[]string{"accounts", "list", "--customer", "acme"}, 0, "0 accounts"},
		{[]string{"accounts", "list", "--customer", "acme", "--state", "confused"}, 2, `unknown state "confused"`},
		{[]string{"accounts", "list", "--customer", "nobody"}, 2, `no customer "nobody"`},
		{[]string{"accounts", "list"}, 2, `required flag(s) "customer" not set`},
		{[]string{"accounts", "show", "--customer", "acme", "jane"}, 1, `no account named "jane" is known`},
		{[]string{"accounts", "match", "--customer", "acme", "jane"}, 2, "--vault-entry ID"},
		{[]string{"accounts", "match", "--customer", "acme", "jane", "--vault-entry", "1", "--vault-create"}, 2, "exclude each other"},
		{[]string{"accounts", "ignore", "--customer", "acme", "jane"}, 2, "--reason"},
		{[]string{"accounts", "ignore", "--customer", "acme", "ad:0f3c", "--reason", "test", "--dry-run"}, 0, "would be ignored"},
		{[]string{"accounts", "set", "--customer", "acme", "--all", "self_serve=maybe"}, 2, "want true or false"},
		{[]string{"accounts", "set", "--customer", "acme", "--all", "paused=true"}, 2, "only self_serve and rotation"},
		{[]string{"accounts", "set", "--customer", "acme", "--all", "self_serve=true"}, 2, "--all would change 0 of 0 imported accounts of acme: run again with --yes"},
		{[]string{"accounts", "set", "--customer", "acme", "--all", "self_serve=true", "--dry-run"}, 0, "0 of 0 accounts would change"},
	}
	for _, c := range cases {
		code, out, errs := cli(t, "", c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d, want %d; output %q, want %q", c.args, code, c.code, out+errs, c.want)
		}
	}
}

func TestRotateAndPasswordCommandsUsage(t *testing.T) {
	freshDir(t)
	if code, _, errs := cli(t, "", "apply", "-f", example(t)); code != 0 {
		t.Fatalf("apply exit %d: %s", code, errs)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rotate", "--dry-run"}, 0, "rotation ok"},
		{[]string{"rotate", "--dry-run", "-o", "json"}, 0, `"outcomes"`},
		{[]string{"rotate", "--account", "adm"}, 2, "--account needs one --customer"},
		{[]string{"rotate", "--now"}, 2, "--now needs --customer"},
		{[]string{"accounts", "password", "--customer", "acme", "adm-jane"}, 2, "not a terminal"},
		{[]string{"accounts", "password", "--customer", "acme", "adm-jane", "--yes"}, 2, "AUTOIMPORT_SECRET_KEY"},
	}
	for _, c := range cases {
		code, out, errs := cli(t, "", c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d, want %d; output %q, want %q", c.args, code, c.code, out+errs, c.want)
		}
	}
}

// Package testenv tells tests about the machine they run on: whether they
// run under continuous integration, where a missing server is a failure
// rather than a reason to skip.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// InCI reports whether the CI environment variable asks for CI behaviour:
// any non-empty value except "false" and "0" (CI systems set "true", "1",
// "yes" and others).
func InCI() bool { return ciValue(os.Getenv("CI")) }

func ciValue(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && !strings.EqualFold(v, "false") && v != "0"
}

// Require fails the test under CI and skips it elsewhere, with the reason:
// for a test that needs a server (MariaDB, Samba) the machine lacks.
func Require(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s — CI must run this test (CI=%q)", reason, os.Getenv("CI"))
	}
	t.Skip(reason)
}

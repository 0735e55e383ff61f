package secret

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T, b byte) *Key {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = b
	}
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKey(t, 1)
	ref := k.SealRef("hunter2")
	if strings.Contains(string(ref), "hunter2") || ref.Validate() != nil {
		t.Fatalf("sealed ref %q", ref)
	}
	if ref.String() != "sealed:…" {
		t.Fatalf("String() = %q, must not print the sealed value", ref.String())
	}
	v, err := (&Resolver{Key: k}).Resolve(ref)
	if err != nil || v != "hunter2" {
		t.Fatalf("Resolve = %q, %v", v, err)
	}
	if _, err := (&Resolver{Key: testKey(t, 2)}).Resolve(ref); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := (&Resolver{}).Resolve(ref); err == nil || !strings.Contains(err.Error(), "AUTOIMPORT_SECRET_KEY is not set") {
		t.Fatalf("no key: %v", err)
	}
	if a, b := k.Seal([]byte("x")), k.Seal([]byte("x")); a == b {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
}

func TestResolveReferences(t *testing.T) {
	t.Setenv("AI_TEST_SECRET", "s3cret")
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	r := &Resolver{Dir: dir}
	cases := []struct {
		ref  Ref
		want string
		err  string
	}{
		{"env:AI_TEST_SECRET", "s3cret", ""},
		{"env:AI_TEST_MISSING", "", "environment variable AI_TEST_MISSING is not set"},
		{Ref("file:" + file), "from-file", ""},
		{"file:pw", "from-file", ""},
		{"file:/nonexistent/pw", "", "secret file:/nonexistent/pw"},
		{"env:AUTOIMPORT_SECRET_KEY", "", "autoimport's own configuration"},
		{"plaintext", "", "never plain text"},
		{"", "", "not set"},
	}
	for _, tc := range cases {
		v, err := r.Resolve(tc.ref)
		if v != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %q", tc.ref, v, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey("not base64!"); err == nil {
		t.Fatal("accepted bad base64")
	}
	if _, err := ParseKey("c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ParseKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="); err != nil {
		t.Fatal(err)
	}
}

// TestDerive checks the derivation against HKDF-SHA256 computed apart
// (RFC 5869 with an empty salt: Python's hmac over 0..31 and info "audit").
func TestDerive(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.Derive("audit")); got != "ada348d64c2535699a93a752aa505cd22246adacfb789565ac5de00263d07c2a" {
		t.Fatalf("Derive(audit) = %s", got)
	}
	if hex.EncodeToString(k.Derive("other")) == hex.EncodeToString(k.Derive("audit")) {
		t.Fatal("two labels gave one key")
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := NewKey(make([]byte, 32))
	f.Add(k.Seal([]byte("x")))
	f.Add("AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = k.Open(s) // must not panic
		_ = Ref("sealed:" + s).Validate()
	})
}

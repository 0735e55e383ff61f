package secret_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/secret"
)

func TestSealedForAPlaceOpensOnlyThere(t *testing.T) {
	k, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := secret.NewKey([]byte("fedcba9876543210fedcba9876543210"))
	s := k.SealFor([]byte("hunter2"), "rotation/cedar-law/ad:g1/password")
	if !secret.Bound(s) || strings.Contains(s, "hunter2") {
		t.Fatalf("sealed: %q", s)
	}
	if pt, err := k.OpenFor(s, "rotation/cedar-law/ad:g1/password"); err != nil || string(pt) != "hunter2" {
		t.Fatalf("open at its place: %q, %v", pt, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"another customer": func() ([]byte, error) { return k.OpenFor(s, "rotation/acme-dental/ad:g1/password") },
		"another account":  func() ([]byte, error) { return k.OpenFor(s, "rotation/cedar-law/ad:g2/password") },
		"another key":      func() ([]byte, error) { return other.OpenFor(s, "rotation/cedar-law/ad:g1/password") },
		"damaged":          func() ([]byte, error) { return k.OpenFor(s[:len(s)-4]+"AAAA", "rotation/cedar-law/ad:g1/password") },
	} {
		if pt, err := open(); err == nil || pt != nil {
			t.Errorf("%s: opened %q", name, pt)
		}
	}
	if _, err := k.OpenFor(k.Seal([]byte("x")), "p"); !errors.Is(err, secret.ErrUnbound) {
		t.Fatalf("a value sealed without a place: %v", err)
	}
}

func FuzzOpenFor(f *testing.F) {
	k, _ := secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	f.Add(k.SealFor([]byte("x"), "p"), "p")
	f.Add("b1:", "")
	f.Add("b1:!!!", "p")
	f.Fuzz(func(t *testing.T, s, place string) {
		_, _ = k.OpenFor(s, place) // must not panic
	})
}

// Package secret handles credentials: references (env:NAME, file:PATH)
// resolved only when a run uses them (Resolver), and values sealed with
// AES-256-GCM under AUTOIMPORT_SECRET_KEY (sealed:BASE64). A Ref never
// prints its value. file: references and templates are read from
// AUTOIMPORT_SECRETS_DIR only, each opened once and checked as the file
// it is, and nothing resolved may hold autoimport's own secrets.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Ref is a secret as written in configuration: "env:NAME", "file:PATH" or
// "sealed:BASE64". Its String form is the reference itself, never a value.
type Ref string

// ErrPlain is returned for a secret written as plain text.
var ErrPlain = errors.New("secrets must be a reference (env:NAME, file:PATH) or sealed (sealed:...), never plain text")

// Validate checks the reference's form without resolving it or touching
// the file system (a Resolver's Check does both).
func (r Ref) Validate() error {
	kind, rest, ok := strings.Cut(string(r), ":")
	if !ok || rest == "" {
		return ErrPlain
	}
	switch kind {
	case "env":
		return checkEnvName(rest)
	case "file":
		if err := CheckPath(rest); err != nil {
			return fmt.Errorf("secret file:%s: %w", rest, err)
		}
		return nil
	case "sealed":
		if _, err := base64.StdEncoding.DecodeString(rest); err != nil {
			return fmt.Errorf("sealed secret is not valid base64")
		}
		return nil
	}
	return ErrPlain
}

// IsZero reports an unset secret.
func (r Ref) IsZero() bool { return r == "" }

// String is the reference, safe to print: a sealed value prints as
// "sealed:…".
func (r Ref) String() string {
	if strings.HasPrefix(string(r), "sealed:") {
		return "sealed:…"
	}
	return string(r)
}

// Key seals and opens values with AES-256-GCM. It keeps its raw bytes so
// that a Resolver can refuse a secret or template that holds a copy.
type Key struct {
	aead cipher.AEAD
	raw  [32]byte
}

// ParseKey reads a base64-encoded 32-byte key.
func ParseKey(b64 string) (*Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("secret key must be base64 (e.g. the output of `openssl rand -base64 32`)")
	}
	return NewKey(raw)
}

// NewKey makes a key from 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &Key{aead: aead}
	copy(k.raw[:], raw)
	return k, nil
}

// Derive returns a 32-byte key for one use, named by label, from the
// master key with HKDF-SHA256 (RFC 5869; no salt, label as info): keys of
// different labels are independent, and none reveals the master key.
func (k *Key) Derive(label string) []byte {
	b, err := hkdf.Key(sha256.New, k.raw[:], nil, label, 32)
	if err != nil {
		panic("secret: derive " + label + ": " + err.Error()) // only for lengths beyond 255 hashes
	}
	return b
}

// Seal encrypts plaintext and returns base64(nonce || ciphertext).
func (k *Key) Seal(plaintext []byte) string {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secret: no randomness: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plaintext, nil))
}

// SealRef seals a value into a "sealed:" reference.
func (k *Key) SealRef(value string) Ref { return Ref("sealed:" + k.Seal([]byte(value))) }

// Open decrypts what Seal returned.
func (k *Key) Open(sealed string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return nil, errors.New("sealed value is damaged")
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return nil, errors.New("sealed value cannot be opened with this AUTOIMPORT_SECRET_KEY (wrong key or damaged value)")
	}
	return pt, nil
}

// sealedValue finds sealed values in text, JSON included.
var sealedValue = regexp.MustCompile(`sealed:[A-Za-z0-9+/]+=*`)

// RedactSealed replaces every sealed value in s by "sealed:…", as
// Ref.String prints one: reports show that a secret is sealed, never its
// ciphertext.
func RedactSealed(s string) string {
	if !strings.Contains(s, "sealed:") {
		return s
	}
	return sealedValue.ReplaceAllLiteralString(s, "sealed:…")
}

// reservedEnvPrefix names autoimport's own configuration: the database
// URL and the secret key must never be sent to an integration.
const reservedEnvPrefix = "AUTOIMPORT_"

func checkEnvName(name string) error {
	if strings.HasPrefix(strings.ToUpper(name), reservedEnvPrefix) {
		return fmt.Errorf("env:%s is autoimport's own configuration (%s*), which is never sent to an integration: put the secret in a variable of another name", name, reservedEnvPrefix)
	}
	return nil
}

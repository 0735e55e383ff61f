package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretsDirVar names the directory file: references and templates are
// read from.
const SecretsDirVar = "AUTOIMPORT_SECRETS_DIR"

// Resolver opens the secrets and templates a tenant names, for one
// process: env: references from its environment, file: references and
// template files from one directory only, sealed: values with its key.
// Whatever it returns has been checked not to hold autoimport's own
// secrets (the master key in any of its encodings, the database
// password), which never leave autoimport, whatever a tenant file says.
// The zero Resolver refuses file: references and templates and withholds
// nothing but what env: references may not name.
type Resolver struct {
	// Key opens sealed: values; it is withheld itself (raw, base64, hex).
	Key *Key
	// Dir is AUTOIMPORT_SECRETS_DIR: file: references and template paths
	// resolve inside it only (a relative path from it, an absolute one
	// must lie in it), links included. Empty refuses them.
	Dir string
	// Withheld are other values no secret or template may contain: the
	// password of AUTOIMPORT_DATABASE_URL. One shorter than 8 bytes is
	// refused only as a whole secret (a short word is found in ordinary
	// text).
	Withheld []string
}

// Resolve returns the secret's value, checked. Errors name the
// reference, never a value.
func (r *Resolver) Resolve(ref Ref) (string, error) {
	kind, rest, _ := strings.Cut(string(ref), ":")
	var v string
	switch kind {
	case "env":
		if err := checkEnvName(rest); err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		val, ok := os.LookupEnv(rest)
		if !ok || val == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set (set it, or change the reference)", ref, rest)
		}
		v = val
	case "file":
		b, err := r.readFile(rest)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret %s: file is empty", ref)
		}
	case "sealed":
		if r.Key == nil {
			return "", fmt.Errorf("secret %s: AUTOIMPORT_SECRET_KEY is not set, so sealed secrets cannot be opened", ref)
		}
		b, err := r.Key.Open(rest)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		v = string(b)
	default:
		if ref == "" {
			return "", errors.New("secret is not set")
		}
		return "", fmt.Errorf("secret: %w", ErrPlain)
	}
	if err := r.checkWithheld([]byte(v)); err != nil {
		return "", fmt.Errorf("secret %s: %w", ref, err)
	}
	return v, nil
}

// ReadTemplate returns a template file's text, read from the secrets
// directory like a file: reference and checked the same way: its
// contents are mailed to every new user.
func (r *Resolver) ReadTemplate(path string) (string, error) {
	b, err := r.readFile(path)
	if err != nil {
		return "", err
	}
	if err := r.checkWithheld(b); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}

// Check is the check of a reference when a tenant is applied, possibly on
// another machine than the one that runs imports: its form; for file:,
// that the secrets directory is set and the path lies in it; and, for a
// value this machine can read (a variable that is set, a file that
// exists, a sealed value this key opens), that it is readable as a run
// would read it and holds none of autoimport's own secrets.
func (r *Resolver) Check(ref Ref) error {
	if err := ref.Validate(); err != nil {
		return err
	}
	kind, rest, _ := strings.Cut(string(ref), ":")
	var v []byte
	switch kind {
	case "env":
		val, ok := os.LookupEnv(rest)
		if !ok {
			return nil
		}
		v = []byte(val)
	case "file":
		b, err := r.readFile(rest)
		if errors.Is(err, fs.ErrNotExist) && r.Dir != "" {
			return nil // only the machine that runs imports can tell
		}
		if err != nil {
			return fmt.Errorf("secret %s: %w", ref, err)
		}
		v = b
	case "sealed":
		if r.Key == nil {
			return nil
		}
		b, err := r.Key.Open(rest)
		if err != nil {
			return nil // a run reports it, with the key it has
		}
		v = b
	}
	if err := r.checkWithheld(v); err != nil {
		return fmt.Errorf("secret %s: %w", ref, err)
	}
	return nil
}

// CheckTemplate is Check for a template path.
func (r *Resolver) CheckTemplate(path string) error {
	_, err := r.ReadTemplate(path)
	if errors.Is(err, fs.ErrNotExist) && r.Dir != "" {
		return nil
	}
	return err
}

// readFile reads path inside the secrets directory. The directory is
// opened once and the path resolved beneath it by the kernel, component
// by component, links included (a link may not leave the directory, and
// may not be absolute); the file is then checked and read as ReadFile
// does, from the descriptor that was opened.
func (r *Resolver) readFile(path string) ([]byte, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	if r.Dir == "" {
		return nil, fmt.Errorf("%s is not set, and files are read from that directory only: set it to the directory that holds the secret files and templates (Docker and Kubernetes mount secrets under /run/secrets)", SecretsDirVar)
	}
	rel, err := r.inDir(path)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", SecretsDirVar, r.Dir, openError(r.Dir, err))
	}
	defer root.Close()
	f, err := root.OpenFile(rel, openFlags, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %v (files are read from inside %s %s, through links that stay inside it)", path, unwrapPath(err), SecretsDirVar, r.Dir)
	}
	return readOpen(f, path, MaxFileSize)
}

// inDir returns path relative to the secrets directory: a relative path
// is already; an absolute one must lie in the directory.
func (r *Resolver) inDir(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return filepath.Clean(path), nil
	}
	rel, err := filepath.Rel(filepath.Clean(r.Dir), filepath.Clean(path))
	if err != nil || rel == "." || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s is outside %s (%s): secret files and templates are read from that directory only", path, SecretsDirVar, r.Dir)
	}
	return rel, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// minWithheldLen is the shortest withheld value looked for inside a
// secret; a shorter one is refused only as the whole secret.
const minWithheldLen = 8

// checkWithheld refuses a value that holds autoimport's own secrets.
func (r *Resolver) checkWithheld(v []byte) error {
	if len(v) == 0 {
		return nil
	}
	if r.Key != nil {
		for _, form := range r.Key.forms() {
			if bytes.Contains(v, form) {
				return errors.New("it holds AUTOIMPORT_SECRET_KEY, autoimport's master key, which is never sent to an integration or mailed")
			}
		}
	}
	for _, w := range r.Withheld {
		if w == "" {
			continue
		}
		if len(w) >= minWithheldLen && bytes.Contains(v, []byte(w)) || string(bytes.TrimSpace(v)) == w {
			return errors.New("it holds the password of AUTOIMPORT_DATABASE_URL, which is never sent to an integration or mailed")
		}
	}
	return nil
}

// forms are the encodings the key is looked for in: the raw bytes, and
// its base64 (standard and URL alphabets, with and without padding) and
// hex texts.
func (k *Key) forms() [][]byte {
	raw := k.raw[:]
	out := [][]byte{raw}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out = append(out, []byte(enc.EncodeToString(raw)))
	}
	h := hex.EncodeToString(raw)
	return append(out, []byte(h), []byte(strings.ToUpper(h)))
}

package secret

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxFileSize bounds what a file: reference or a template file may hold.
const MaxFileSize = 1 << 20

// systemDirs hold the kernel's views of processes and devices: a path
// under them can reveal autoimport's own environment (/proc/self/environ)
// or block forever (/dev/zero's size, a FIFO), so configuration never
// reads from them.
var systemDirs = []string{"/proc", "/sys", "/dev"}

func inSystemDir(abs string) (string, bool) {
	for _, d := range systemDirs {
		if abs == d || strings.HasPrefix(abs, d+"/") {
			return d, true
		}
	}
	return "", false
}

// CheckPath refuses, without touching the file system beyond the working
// directory, a path that names something under /proc, /sys or /dev. It is
// the check a tenant file gets when it is applied, possibly on another
// machine than the one that runs imports.
func CheckPath(path string) error {
	if strings.TrimSpace(path) == "" {
		return errors.New("no path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if d, bad := inSystemDir(abs); bad {
		return fmt.Errorf("%s is under %s: configuration is read from regular files only", path, d)
	}
	return nil
}

// CheckFile accepts a path that resolves, through any symbolic links, to a
// regular file outside /proc, /sys and /dev, of at most MaxFileSize bytes.
// The error says which of these the path is not.
func CheckFile(path string) error {
	if err := CheckPath(path); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return errors.Unwrap(err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return err
	}
	if d, bad := inSystemDir(real); bad {
		return fmt.Errorf("%s leads to %s, under %s: configuration is read from regular files only", path, real, d)
	}
	st, err := os.Stat(real)
	if err != nil {
		return errors.Unwrap(err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > MaxFileSize {
		return fmt.Errorf("%s holds %d bytes, more than the %d a secret or template may", path, st.Size(), MaxFileSize)
	}
	return nil
}

// ReadFile reads a configuration file that CheckFile accepts.
func ReadFile(path string) ([]byte, error) {
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", path, MaxFileSize)
	}
	return b, nil
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

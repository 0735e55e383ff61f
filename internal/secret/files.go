package secret

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxFileSize bounds what a file: reference or a template file may hold.
const MaxFileSize = 1 << 20

// openFlags open a file for reading without waiting for a writer (a FIFO
// opens at once and is then refused), without becoming the process's
// terminal, and without leaking into a child process.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY | syscall.O_CLOEXEC

// ReadFile reads a file that configuration names and whose contents never
// leave autoimport (an Active Directory ca_file). It is opened once, by
// its path (links followed), and the checks are made on the open file,
// not on the name: it must be a regular file on an ordinary file system
// (not procfs, sysfs or another kernel view) of at most limit bytes, and
// it is read from that descriptor, so no link swapped in between the
// check and the read can change what is read. A FIFO, a device such as
// /dev/zero, a directory, and a file that grows past the limit while it
// is read are refused with an error that says which.
func ReadFile(path string, limit int64) ([]byte, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("no path given")
	}
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	return readOpen(f, path, limit)
}

// readOpen checks the open file f and reads it, at most limit bytes, then
// closes it. name is how messages call it.
func readOpen(f *os.File, name string, limit int64) ([]byte, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (it is %s): configuration is read from regular files only", name, fileType(st.Mode()))
	}
	if err := checkFileSystem(f, name); err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s holds %d bytes, more than the %d it may", name, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", name, limit)
	}
	return b, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a file (" + m.Type().String() + ")"
}

// openError says why a file could not be opened, without the operation
// and path that *PathError repeats.
func openError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// systemDirs hold the kernel's views of processes and devices: a path
// under them can reveal autoimport's own environment (/proc/self/environ)
// or block (a FIFO, /dev/zero), so configuration never names them. It is
// the early check of a name; the checks on the open file decide.
var systemDirs = []string{"/proc", "/sys", "/dev"}

// CheckPath refuses, from the name alone, a path under /proc, /sys or /dev
// and a relative path that climbs out of its directory ("../x"). It is
// the check a tenant file gets wherever it is parsed, possibly on another
// machine than the one that runs imports.
func CheckPath(path string) error {
	if strings.TrimSpace(path) == "" {
		return errors.New("no path given")
	}
	if strings.ContainsRune(path, 0) {
		return fmt.Errorf("%q holds a NUL byte", path)
	}
	if !filepath.IsAbs(path) {
		if !filepath.IsLocal(path) {
			return fmt.Errorf("%s climbs out of AUTOIMPORT_SECRETS_DIR: a relative path names a file inside it", path)
		}
		return nil
	}
	clean := filepath.Clean(path)
	for _, d := range systemDirs {
		if clean == d || strings.HasPrefix(clean, d+"/") {
			return fmt.Errorf("%s is under %s: configuration is read from regular files only", path, d)
		}
	}
	return nil
}

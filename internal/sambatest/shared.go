package sambatest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// sharedDC is the DC in dir as one test binary shares it with the others.
// They agree through two lock files beside dir:
//
//   - dir.tests.lock, held exclusively while a binary starts the DC or
//     decides whether to stop it: one binary sets the DC up while the
//     others wait, then find it running and reuse it;
//   - dir.users.lock, held shared by each binary from the moment it has
//     the DC until its tests are done: a binary stops the DC only when it
//     can take this lock exclusively, that is when no other binary uses it.
//
// The last binary done stops the DC only when a test binary started it
// (dir/started-by-tests says so): a DC that was running before the tests
// stays running. The kernel lets go of a crashed binary's locks, so a
// crash stops no one; the DC it started is stopped by the last binary of
// a later run.
type sharedDC struct {
	dir string
	// script runs start.sh with "start" or "stop".
	script func(arg string) ([]byte, error)
	// running reports whether the DC's process is alive.
	running func() bool

	// users holds the shared lock on dir.users.lock from start to release.
	users *os.File
}

// lockWait bounds the wait for another binary's setup of the DC: start.sh
// gets 6 minutes (installing Samba, provisioning, seeding 2,000 users).
const lockWait = 7 * time.Minute

func (d *sharedDC) gatePath() string   { return d.dir + ".tests.lock" }
func (d *sharedDC) usersPath() string  { return d.dir + ".users.lock" }
func (d *sharedDC) markerPath() string { return filepath.Join(d.dir, "started-by-tests") }

// start runs start.sh (which sets the DC up, or finds it running) and
// takes this binary's share of the DC; it returns what start.sh printed.
func (d *sharedDC) start() ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(d.dir), 0o755); err != nil {
		return nil, err
	}
	gate, err := lock(d.gatePath(), unix.LOCK_EX, lockWait)
	if err != nil {
		return nil, err
	}
	defer gate.Close()

	wasRunning := d.running()
	out, err := d.script("start")
	if !wasRunning && d.running() {
		// This binary started the DC (even if start.sh then failed): the
		// last binary done stops it.
		if err := os.WriteFile(d.markerPath(), nil, 0o600); err != nil {
			return nil, fmt.Errorf("mark the Samba DC as started by the tests: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	// Only a binary holding the gate, which this one holds, takes
	// dir.users.lock exclusively: the shared lock is granted at once.
	if d.users, err = lock(d.usersPath(), unix.LOCK_SH, lockWait); err != nil {
		return nil, err
	}
	return out, nil
}

// release lets go of this binary's share of the DC, and stops the DC when
// no other binary uses it and a test binary started it.
func (d *sharedDC) release() error {
	if d.users == nil {
		return nil
	}
	gate, err := lock(d.gatePath(), unix.LOCK_EX, lockWait)
	d.users.Close()
	d.users = nil
	if err != nil {
		return fmt.Errorf("leaving the Samba DC running: %w", err)
	}
	defer gate.Close()
	last, err := lock(d.usersPath(), unix.LOCK_EX, 0)
	if errors.Is(err, errBusy) {
		return nil // another binary uses the DC: the last one stops it
	}
	if err != nil {
		return fmt.Errorf("leaving the Samba DC running: %w", err)
	}
	defer last.Close()
	if _, err := os.Stat(d.markerPath()); err != nil {
		return nil // running before the tests: it stays so
	}
	if out, err := d.script("stop"); err != nil {
		return fmt.Errorf("stopping Samba: %w\n%s", err, out)
	}
	return os.Remove(d.markerPath())
}

var errBusy = errors.New("held by another process")

// lock opens path and flocks it with how (unix.LOCK_EX or LOCK_SH),
// trying for up to wait; the lock lasts until the file is closed. Two
// opens of one file conflict like two processes, even in one process.
func lock(path string, how int, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			if wait == 0 {
				return nil, fmt.Errorf("lock %s: %w", path, errBusy)
			}
			return nil, fmt.Errorf("lock %s: %w for %v (another test binary setting up Samba?)", path, errBusy, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

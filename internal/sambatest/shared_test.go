package sambatest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeDC stands in for start.sh and the Samba process: it starts and
// stops a pretend DC and records what the test binaries did to it.
type fakeDC struct {
	mu              sync.Mutex
	up              bool
	starts, stops   int
	scripts, most   int // start.sh runs under way, and the most at once
	using           int // binaries between start and release
	stoppedUnderUse int // stops while a binary used the DC
	failStart       error
}

func (f *fakeDC) running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

func (f *fakeDC) script(arg string) ([]byte, error) {
	f.mu.Lock()
	f.scripts++
	f.most = max(f.most, f.scripts)
	f.mu.Unlock()
	time.Sleep(time.Millisecond) // room for another run to begin, were it let
	defer func() {
		f.mu.Lock()
		f.scripts--
		f.mu.Unlock()
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch arg {
	case "start":
		if !f.up {
			f.up = true
			f.starts++
		}
		if f.failStart != nil {
			return nil, f.failStart
		}
		return []byte("AUTOIMPORT_TEST_SAMBA_URL=ldaps://127.0.0.1:636\n"), nil
	case "stop":
		if f.using > 0 {
			f.stoppedUnderUse++
		}
		if f.up {
			f.up = false
			f.stops++
		}
		return nil, nil
	}
	return nil, fmt.Errorf("start.sh %s: unknown argument", arg)
}

// binary is one test binary's share of the DC in dir.
func (f *fakeDC) binary(dir string) *sharedDC {
	return &sharedDC{dir: dir, script: f.script, running: f.running}
}

func (f *fakeDC) use(t *testing.T, b *sharedDC) {
	t.Helper()
	if _, err := b.start(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.using++
	f.mu.Unlock()
}

func (f *fakeDC) done(t *testing.T, b *sharedDC) {
	t.Helper()
	f.mu.Lock()
	f.using--
	f.mu.Unlock()
	if err := b.release(); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeDC) want(t *testing.T, up bool, starts, stops int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up != up || f.starts != starts || f.stops != stops || f.stoppedUnderUse != 0 {
		t.Fatalf("DC up %v after %d starts and %d stops (%d under use); want up %v after %d and %d",
			f.up, f.starts, f.stops, f.stoppedUnderUse, up, starts, stops)
	}
}

func dcDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "autoimport-samba")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// The binary that started the DC finishes first: the DC stays up for the
// other, which stops it when it is done.
func TestSharedDCIsStoppedByTheLastBinaryDone(t *testing.T) {
	dir, f := dcDir(t), &fakeDC{}
	a, b := f.binary(dir), f.binary(dir)
	f.use(t, a)
	f.use(t, b)
	f.want(t, true, 1, 0)
	f.done(t, a)
	f.want(t, true, 1, 0)
	f.done(t, b)
	f.want(t, false, 1, 1)
	if _, err := os.Stat(filepath.Join(dir, "started-by-tests")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the marker outlived the DC: %v", err)
	}
	// A later run starts and stops it again.
	c := f.binary(dir)
	f.use(t, c)
	f.done(t, c)
	f.want(t, false, 2, 2)
}

// A DC running before the tests stays running.
func TestSharedDCRunningBeforeStaysRunning(t *testing.T) {
	dir, f := dcDir(t), &fakeDC{up: true}
	a, b := f.binary(dir), f.binary(dir)
	f.use(t, a)
	f.use(t, b)
	f.done(t, b)
	f.done(t, a)
	f.want(t, true, 0, 0)
}

// A binary that crashed holds nothing; the DC it started is stopped by the
// last binary of the next run.
func TestSharedDCStartedByACrashedBinary(t *testing.T) {
	dir, f := dcDir(t), &fakeDC{}
	crashed := f.binary(dir)
	if _, err := crashed.start(); err != nil {
		t.Fatal(err)
	}
	crashed.users.Close() // what the kernel does when the process dies
	next := f.binary(dir)
	f.use(t, next)
	f.want(t, true, 1, 0)
	f.done(t, next)
	f.want(t, false, 1, 1)
}

// A start.sh that started Samba and then failed leaves the binary without
// a share; the DC is still marked as the tests', so the next run's last
// binary stops it.
func TestSharedDCStartThatFailed(t *testing.T) {
	dir, f := dcDir(t), &fakeDC{failStart: errors.New("seeding failed")}
	a := f.binary(dir)
	if _, err := a.start(); err == nil {
		t.Fatal("start succeeded")
	}
	if err := a.release(); err != nil {
		t.Fatal(err)
	}
	f.want(t, true, 1, 0)
	f.failStart = nil
	b := f.binary(dir)
	f.use(t, b)
	f.done(t, b)
	f.want(t, false, 1, 1)
}

// Binaries starting and finishing at once: start.sh never runs twice at
// the same time, the DC is never stopped while a binary uses it, and the
// last one done stops it.
func TestSharedDCConcurrentBinaries(t *testing.T) {
	dir, f := dcDir(t), &fakeDC{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				b := f.binary(dir)
				if _, err := b.start(); err != nil {
					t.Error(err)
					return
				}
				f.mu.Lock()
				f.using++
				f.mu.Unlock()
				if !f.running() {
					t.Error("the DC is down while a binary uses it")
				}
				f.mu.Lock()
				f.using--
				f.mu.Unlock()
				if err := b.release(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.most != 1 || f.up || f.starts != f.stops || f.starts == 0 || f.stoppedUnderUse != 0 {
		t.Fatalf("at most %d start.sh at once; DC up %v after %d starts and %d stops (%d under use)",
			f.most, f.up, f.starts, f.stops, f.stoppedUnderUse)
	}
}

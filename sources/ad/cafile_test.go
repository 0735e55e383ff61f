package ad

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A ca_file that is not a bounded regular file is refused at once with
// what it is: /dev/zero used to fill memory until the process died with
// the customer's lease held, and a FIFO blocked the run.
func TestCAFileThatIsNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero":          "ca_file: /dev/zero is not a regular file (it is a character device)",
		fifo:                 "is not a regular file (it is a FIFO)",
		"/proc/self/environ": "is on procfs",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := New(Config{Customer: "acme", URL: "ldaps://dc1.acme.example", BindDN: "svc@acme.example", BindPassword: "pw", CAFile: path})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "AD: customer acme") {
				t.Errorf("ca_file %s: %v, want %q", path, err, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("ca_file %s: New still blocked after a minute", path)
		}
	}
}

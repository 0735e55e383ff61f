package autotask_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
	"github.com/sirupsen/logrus"
)

func TestConcurrentUseAndThreadLimit(t *testing.T) {
	srv := newServer(t, autotasktest.Options{Latency: 20 * time.Millisecond})
	srv.Generate(123, 700, 1)
	c := newClient(t, srv, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			if _, err := c.Index(context.Background(), scope); err != nil {
				errs <- err
			}
			if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "G", LastName: fmt.Sprint(g)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Count(autotasktest.KindCreateContact); n != 8 {
		t.Errorf("creates = %d, want 8", n)
	}
	if n := len(srv.Contacts(123)); n != 708 {
		t.Errorf("stored %d, want 708", n)
	}
	if p := srv.PeakConcurrency(autotasktest.KindQueryContacts); p < 1 || p > 3 {
		t.Errorf("peak concurrent queries = %d, want 1..3 (the thread limit)", p)
	}
	if n := srv.Count(autotasktest.KindZone); n < 1 || n > 8 {
		t.Errorf("zone lookups = %d", n)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetLevel(logrus.DebugLevel)
	srv := newServer(t, autotasktest.Options{})
	srv.Generate(123, 3, 1)
	c := newClient(t, srv, func(c *autotask.Config) { c.Log = log })
	if _, err := c.Index(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Contacts/query") {
		t.Fatalf("nothing logged: %q", buf.String())
	}
	if strings.Contains(buf.String(), srv.Secret) {
		t.Error("log carries the secret")
	}
}

package connectwise_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
	"github.com/sirupsen/logrus"
)

func TestTimeoutRetried(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.Generate(250, 5, 1)
	srv.Inject(cwtest.Fault{Kind: cwtest.KindListContacts, Latency: 2 * time.Second})
	c := newClient(t, srv, func(c *connectwise.Config) { c.Timeout = 100 * time.Millisecond })
	ix, err := c.Index(context.Background(), scope)
	if err != nil || ix.Len() != 5 {
		t.Fatalf("Index after a timed-out attempt = %v, %v", ix, err)
	}
	// At least one: on a loaded machine the retry itself may also run
	// past the 100 ms attempt timeout and be retried again.
	if c.Stats().Retries < 1 {
		t.Errorf("retries = %d, want at least 1", c.Stats().Retries)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	srv.Generate(250, 150, 1)
	c := newClient(t, srv, func(c *connectwise.Config) { c.PageSize = 50 })
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			if _, err := c.Index(context.Background(), scope); err != nil {
				errs <- err
			}
			if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "G", LastName: fmt.Sprint(g), Email: fmt.Sprintf("g%d@acme.example", g)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Count(cwtest.KindCreateContact); n != 8 {
		t.Errorf("creates counted %d, want 8", n)
	}
	if n := len(srv.Contacts(250)); n != 158 {
		t.Errorf("stored %d contacts, want 158", n)
	}
	if n := srv.Count(cwtest.KindCommTypes); n < 1 || n > 8 {
		t.Errorf("communication type lookups = %d", n)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetLevel(logrus.DebugLevel)
	srv := newServer(t, cwtest.Options{})
	srv.Generate(250, 3, 1)
	c := newClient(t, srv, func(c *connectwise.Config) { c.Log = log })
	if _, err := c.Index(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B", Email: "a@b.example"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "/company/contacts") {
		t.Fatalf("no request logged: %q", out)
	}
	for _, secret := range []string{srv.PrivateKey, srv.PublicKey + ":"} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries %q", secret)
		}
	}
}

// Without the right to list communication types the email goes in by the
// type's name; any other failure of that lookup stops the create.
func TestEmailTypeFallback(t *testing.T) {
	srv := newServer(t, cwtest.Options{EmailTypeID: 9})
	srv.Inject(cwtest.Fault{Kind: cwtest.KindCommTypes, Status: 403})
	c := newClient(t, srv, nil)
	got, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "A", LastName: "B", Email: "a@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "a@acme.example" || srv.Contacts(250)[0].Email != "a@acme.example" {
		t.Errorf("created %+v, stored %+v", got, srv.Contacts(250))
	}

	srv2 := newServer(t, cwtest.Options{})
	srv2.Inject(cwtest.Fault{Kind: cwtest.KindCommTypes, Status: 400})
	_, err = newClient(t, srv2, nil).Create(context.Background(), scope, sinks.NewContact{FirstName: "A", Email: "a@acme.example"})
	if err == nil || !strings.Contains(err.Error(), "ConnectWise: customer acme: create contact in company 250: list communication types") {
		t.Fatalf("err = %v", err)
	}
	if n := srv2.Count(cwtest.KindCreateContact); n != 0 {
		t.Errorf("%d creates sent after the lookup failed", n)
	}
}

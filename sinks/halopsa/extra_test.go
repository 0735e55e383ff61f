package halopsa_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
	"github.com/sirupsen/logrus"
)

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	srv.Generate(12, 300, 1)
	c := newClient(t, srv, func(c *halopsa.Config) { c.PageSize = 100 })
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
	if n := srv.Count(halopsatest.KindCreateUsers); n != 8 {
		t.Errorf("creates = %d, want 8", n)
	}
	if n := srv.Count(halopsatest.KindToken); n != 1 {
		t.Errorf("token requests = %d, want 1 shared by every goroutine", n)
	}
	if n := len(srv.Users(12)); n != 308 {
		t.Errorf("stored %d, want 308", n)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetLevel(logrus.DebugLevel)
	srv := newServer(t, halopsatest.Options{})
	srv.Generate(12, 3, 1)
	c := newClient(t, srv, func(c *halopsa.Config) { c.Log = log })
	if _, err := c.Index(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "/api/Users") {
		t.Fatalf("nothing logged: %q", buf.String())
	}
	if strings.Contains(buf.String(), srv.ClientSecret) || strings.Contains(buf.String(), "Bearer") {
		t.Error("log carries a secret or token")
	}
}

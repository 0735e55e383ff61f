package restclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/msp-tools/autoimport/internal/fence"
)

// A write whose fence fails is not sent, and not retried: the server never
// sees it and the error says so.
func TestAFencedWriteIsNotSent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	lost := errors.New("customer acme: the lease is another holder's")
	ctx := fence.With(context.Background(), func() error { return lost })
	_, err := fastClient(srv).JSON(ctx, Request{Method: http.MethodPost, URL: srv.URL + "/create", Customer: "acme", Body: map[string]string{"a": "b"}}, nil)
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, fence.ErrNotSent) || !errors.Is(err, lost) || ae.Customer != "acme" {
		t.Fatalf("err %v; want an *Error for acme wrapping ErrNotSent and the fence's reason", err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the server saw %d requests", n)
	}
}

// The fence is asked before each attempt, after its backoff: a write the
// server throttled is not sent again once the fence fails.
func TestTheFenceIsAskedBeforeEachAttempt(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	var asked atomic.Int32
	ctx := fence.With(context.Background(), func() error {
		if asked.Add(1) > 1 {
			return errors.New("lost while throttled")
		}
		return nil
	})
	_, err := fastClient(srv).JSON(ctx, Request{Method: http.MethodPost, URL: srv.URL + "/create", Customer: "acme", Body: map[string]string{"a": "b"}}, nil)
	if !errors.Is(err, fence.ErrNotSent) {
		t.Fatalf("err %v; want ErrNotSent from the retry's fence", err)
	}
	if calls.Load() != 1 || asked.Load() != 2 {
		t.Fatalf("the server saw %d requests, the fence was asked %d times; want 1 and 2", calls.Load(), asked.Load())
	}
}

// The fence is asked after the rate limiter's wait, not before it: a
// lease that runs out while a write waits for its turn stops it.
func TestTheFenceIsAskedAfterTheLimiter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	const every = 50 * time.Millisecond
	c := New(Config{Integration: "Test API", MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, Transport: srv.Client().Transport,
		Limiter: rate.NewLimiter(rate.Every(every), 1)})
	if _, err := c.JSON(context.Background(), Request{Method: http.MethodGet, URL: srv.URL + "/first", Customer: "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var askedAfter time.Duration
	ctx := fence.With(context.Background(), func() error { askedAfter = time.Since(start); return nil })
	if _, err := c.JSON(ctx, Request{Method: http.MethodPost, URL: srv.URL + "/second", Customer: "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	// The limiter holds the second request about 50 ms; the fence is
	// asked once it lets it go (a slower machine only asks it later).
	if askedAfter < every*4/5 {
		t.Fatalf("the fence was asked %v after the request began; want after the limiter's %v wait", askedAfter, every)
	}
}

package restclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// paddedJSON is a valid JSON document of exactly n bytes (n >= 2): an
// empty object followed by spaces, so that only its length can make a
// client refuse it.
func paddedJSON(n int) string { return "{}" + strings.Repeat(" ", n-2) }

func TestBodyLimit(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name      string
		status    int
		size      int
		nilOut    bool
		malformed bool
	}{
		{"at the limit", 200, limit, false, false},
		{"one byte over", 200, limit + 1, false, true},
		{"far over", 200, 50 * limit, false, true},
		{"over, body not decoded", 200, limit + 1, true, true},
		{"error status, long body", 500, 50 * limit, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				io.WriteString(w, paddedJSON(c.size))
			}))
			defer srv.Close()
			cl := New(Config{Integration: "Test API", MaxBody: limit, MaxRetries: -1, Transport: srv.Client().Transport})
			var out map[string]any
			dst := any(&out)
			if c.nilOut {
				dst = nil
			}
			_, err := cl.JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/p?key=K", Customer: "acme"}, dst)
			if got := errors.Is(err, ErrMalformed); got != c.malformed {
				t.Fatalf("err = %v, want malformed %v", err, c.malformed)
			}
			if c.status == 200 && !c.malformed && err != nil {
				t.Fatal(err)
			}
			if err != nil {
				var re *Error
				if !errors.As(err, &re) || re.Status != c.status {
					t.Fatalf("err = %#v, want an *Error with status %d", err, c.status)
				}
				for _, want := range []string{"Test API", "customer acme", "GET /p"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%q lacks %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "key=K") {
					t.Errorf("%q carries the query", err)
				}
			}
		})
	}
}

// TestDefaultMaxBody sends one byte more than DefaultMaxBody of valid JSON
// to a client made without a MaxBody.
func TestDefaultMaxBody(t *testing.T) {
	if DefaultMaxBody < 8<<20 {
		t.Fatalf("DefaultMaxBody %d is too small for a page of 1,000 records", DefaultMaxBody)
	}
	pad := strings.Repeat(" ", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{}")
		left := int(DefaultMaxBody) - 2 + 1
		for left > 0 {
			n := min(left, len(pad))
			if _, err := io.WriteString(w, pad[:n]); err != nil {
				return
			}
			left -= n
		}
	}))
	defer srv.Close()
	cl := New(Config{Integration: "Test API", MaxRetries: -1, Transport: srv.Client().Transport})
	var out map[string]any
	_, err := cl.JSON(context.Background(), Request{Method: "GET", URL: srv.URL + "/big", Customer: "acme"}, &out)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "Test API: customer acme") {
		t.Fatalf("err = %v, want a malformed-body error naming the integration and customer", err)
	}
}

func TestReadBodyReusesTheBuffer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, paddedJSON(20)) }))
	defer srv.Close()
	cl := New(Config{Integration: "Test API", MaxBody: 10, Transport: srv.Client().Transport})
	r := Request{Method: "GET", URL: srv.URL + "/p", Customer: "acme"}
	resp, err := cl.Do(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ReadBody(resp, r, nil); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "customer acme") {
		t.Fatalf("ReadBody = %v", err)
	}
}

func TestLimitBodies(t *testing.T) {
	var size atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, paddedJSON(int(size.Load()))) }))
	defer srv.Close()
	hc := &http.Client{Transport: LimitBodies("Test login", srv.Client().Transport, 100), Timeout: 5 * time.Second}
	for _, c := range []struct {
		size int
		ok   bool
	}{{100, true}, {101, false}, {5000, false}} {
		size.Store(int64(c.size))
		resp, err := hc.Post(srv.URL+"/token?tenant=t", "application/x-www-form-urlencoded", strings.NewReader("client_secret=S3CRET"))
		if c.ok {
			if err != nil {
				t.Fatalf("size %d: %v", c.size, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(b) != c.size {
				t.Fatalf("size %d: read %d bytes", c.size, len(b))
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "Test login") || strings.Contains(err.Error(), "S3CRET") {
			t.Fatalf("size %d: err = %v", c.size, err)
		}
	}
}

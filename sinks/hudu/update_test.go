package hudu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
	"github.com/sirupsen/logrus"
)

type entryWorld struct {
	srv                         *hudutest.Server
	jane, other, archived, gone int
}

func newEntryWorld(t *testing.T) entryWorld {
	t.Helper()
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	srv.AddCompany(8, "Bravo Ltd")
	w := entryWorld{srv: srv}
	w.jane = srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane Doe (Active Directory)", Username: "jdoe", Password: "old-value", PasswordType: "Active Directory", Description: "Imported by autoimport; password not yet set"})
	w.other = srv.AddPassword(hudutest.AssetPassword{CompanyID: 8, Name: "Bob", Username: "bob", Password: "bob-value", PasswordType: "Active Directory"})
	w.archived = srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Old", Username: "old", Password: "x", Archived: true})
	w.gone = srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Gone", Username: "gone", Password: "x"})
	if !srv.DeletePassword(w.gone) {
		t.Fatal("DeletePassword did not find the entry")
	}
	return w
}

func TestEntry(t *testing.T) {
	w := newEntryWorld(t)
	c := newClient(t, w.srv, nil)
	ref := strconv.Itoa
	for _, tt := range []struct {
		name    string
		ref     string
		want    sinks.VaultEntry
		is      error
		message []string
	}{
		{name: "found", ref: ref(w.jane), want: sinks.VaultEntry{Ref: ref(w.jane), Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: "Active Directory"}},
		{name: "unknown id", ref: "999999", is: sinks.ErrNotFound, message: []string{"no asset password 999999"}},
		{name: "deleted", ref: ref(w.gone), is: sinks.ErrNotFound, message: []string{"no asset password " + ref(w.gone)}},
		{name: "other company", ref: ref(w.other), is: sinks.ErrWrongCustomer, message: []string{"company 8 (Bravo Ltd)", "customer's company 7"}},
		{name: "archived", ref: ref(w.archived), is: sinks.ErrNotFound, message: []string{"is archived"}},
		{name: "not an id", ref: "-3", message: []string{`asset password id "-3" is not a positive integer`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Entry(context.Background(), acme, tt.ref)
			if tt.message == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Entry = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Entry = %+v, want an error", got)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if tt.is == nil && (errors.Is(err, sinks.ErrNotFound) || errors.Is(err, sinks.ErrWrongCustomer)) {
				t.Errorf("error %v claims not found or wrong customer for a malformed reference", err)
			}
			for _, m := range append(tt.message, "Hudu: customer acme: ") {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

func TestSetPasswordThenReadBack(t *testing.T) {
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.DebugLevel)
	w := newEntryWorld(t)
	c := newClient(t, w.srv, func(c *hudu.Config) { c.Log = log })
	ctx := context.Background()
	ref := strconv.Itoa(w.jane)
	const first, second = "Rotated-Value-1!", "Rotated-Value-2!"
	if err := c.SetPassword(ctx, acme, ref, first, "Password set by rotation"); err != nil {
		t.Fatal(err)
	}
	p, _ := w.srv.Password(w.jane)
	if p.Password != first || p.Description != "Password set by rotation" || p.Name != "Jane Doe (Active Directory)" || p.CompanyID != 7 || p.Username != "jdoe" || p.PasswordType != "Active Directory" {
		t.Fatalf("stored %+v", p)
	}
	if got, err := c.Password(ctx, acme, ref); err != nil || got != first {
		t.Fatalf("Password = %q, %v; want the new value", got, err)
	}
	if err := c.SetPassword(ctx, acme, ref, second, ""); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.srv.Password(w.jane); p.Password != second || p.Description != "Password set by rotation" {
		t.Fatalf("empty notes must keep the description: stored %+v", p)
	}
	if got, err := c.Password(ctx, acme, ref); err != nil || got != second {
		t.Fatalf("Password = %q, %v; want the second value", got, err)
	}
	if n := w.srv.Count(hudutest.KindUpdatePassword); n != 2 {
		t.Errorf("%d updates, want 2", n)
	}
	if logs.Len() == 0 {
		t.Fatal("no debug lines were logged")
	}
	for _, v := range []string{first, second, "old-value"} {
		if strings.Contains(logs.String(), v) {
			t.Fatalf("the log holds a password: %s", logs.String())
		}
	}
}

// The PUT carries the wrapper, the value, and the name and company_id read
// first; nothing is written to an entry autoimport may not use.
func TestSetPasswordBody(t *testing.T) {
	var puts []map[string]map[string]any
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/asset_passwords/41":
			_, _ = w.Write([]byte(`{"asset_password":{"id":41,"company_id":"7","name":"Jane","username":"jdoe","password":"old","archived":false}}`))
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/asset_passwords/42":
			_, _ = w.Write([]byte(`{"asset_password":{"id":42,"company_id":9,"company_name":"Zulu","name":"Z","password":"z"}}`))
		case r.Method == http.MethodPut:
			if r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "content type", http.StatusUnsupportedMediaType)
				return
			}
			var doc map[string]map[string]any
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &doc); err != nil {
				http.Error(w, "bad json", http.StatusBadRequest)
				return
			}
			puts = append(puts, doc)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	defer stub.Close()
	c, err := hudu.New(hudu.Config{URL: stub.URL, APIKey: "k", Rate: "1000/s", Transport: stub.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPassword(context.Background(), acme, "41", "New-Value-1!", "rotated"); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"password": "New-Value-1!", "description": "rotated", "name": "Jane", "company_id": float64(7)}
	if len(puts) != 1 || len(puts[0]) != 1 || len(puts[0]["asset_password"]) != len(want) {
		t.Fatalf("PUT bodies %v", puts)
	}
	for k, v := range want {
		if puts[0]["asset_password"][k] != v {
			t.Errorf("asset_password.%s = %v, want %v", k, puts[0]["asset_password"][k], v)
		}
	}
	err = c.SetPassword(context.Background(), acme, "42", "New-Value-1!", "")
	if !errors.Is(err, sinks.ErrWrongCustomer) || !strings.Contains(err.Error(), "company 9 (Zulu)") || len(puts) != 1 {
		t.Fatalf("err = %v after %d PUTs", err, len(puts))
	}
}

func TestSetPasswordRefusesWithoutWriting(t *testing.T) {
	w := newEntryWorld(t)
	c := newClient(t, w.srv, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		id int
		is error
	}{{w.other, sinks.ErrWrongCustomer}, {w.archived, sinks.ErrNotFound}, {w.gone, sinks.ErrNotFound}} {
		ref := strconv.Itoa(tt.id)
		if err := c.SetPassword(ctx, acme, ref, "New-Value-1!", "n"); !errors.Is(err, tt.is) {
			t.Errorf("SetPassword(%s) = %v, want %v", ref, err, tt.is)
		}
		if _, err := c.Password(ctx, acme, ref); !errors.Is(err, tt.is) {
			t.Errorf("Password(%s) = %v, want %v", ref, err, tt.is)
		}
	}
	if n := w.srv.Count(hudutest.KindUpdatePassword); n != 0 {
		t.Errorf("%d updates were sent", n)
	}
	for _, bad := range []string{"", "\xff"} {
		if err := c.SetPassword(ctx, acme, strconv.Itoa(w.jane), bad, ""); err == nil || !strings.Contains(err.Error(), "non-empty valid UTF-8") {
			t.Errorf("SetPassword(%q) = %v", bad, err)
		}
	}
}

// PUT is idempotent: 429 (Hudu's "Retry later", after Retry-After) and 5xx
// are retried.
func TestSetPasswordRetries(t *testing.T) {
	for _, f := range []hudutest.Fault{
		{Kind: hudutest.KindUpdatePassword, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		{Kind: hudutest.KindUpdatePassword, Status: http.StatusServiceUnavailable, Times: 2},
		{Kind: hudutest.KindUpdatePassword, Status: http.StatusInternalServerError},
	} {
		t.Run(strconv.Itoa(f.Status), func(t *testing.T) {
			w := newEntryWorld(t)
			w.srv.Inject(f)
			c := newClient(t, w.srv, nil)
			if err := c.SetPassword(context.Background(), acme, strconv.Itoa(w.jane), "After-Retry-1!", ""); err != nil {
				t.Fatal(err)
			}
			if p, _ := w.srv.Password(w.jane); p.Password != "After-Retry-1!" {
				t.Fatalf("stored %q", p.Password)
			}
			times := max(f.Times, 1)
			if n := w.srv.Count(hudutest.KindUpdatePassword); n != int64(times+1) {
				t.Errorf("%d update attempts, want %d", n, times+1)
			}
		})
	}
	w := newEntryWorld(t)
	w.srv.Inject(hudutest.Fault{Kind: hudutest.KindUpdatePassword, Status: http.StatusForbidden})
	c := newClient(t, w.srv, nil)
	err := c.SetPassword(context.Background(), acme, strconv.Itoa(w.jane), "Never-Stored-1!", "")
	if err == nil || !strings.Contains(err.Error(), "password access") || !strings.Contains(err.Error(), "HTTP 403") || strings.Contains(err.Error(), "Never-Stored-1!") {
		t.Fatalf("err = %v", err)
	}
	if w.srv.Count(hudutest.KindUpdatePassword) != 1 {
		t.Error("a 403 was retried")
	}
}

func TestEntryMalformedBody(t *testing.T) {
	w := newEntryWorld(t)
	c := newClient(t, w.srv, nil)
	ctx := context.Background()
	ref := strconv.Itoa(w.jane)
	for name, call := range map[string]func() error{
		"read asset password":              func() error { _, err := c.Entry(ctx, acme, ref); return err },
		"set asset password":               func() error { return c.SetPassword(ctx, acme, ref, "Not-Written-1!", "") },
		"read the value of asset password": func() error { _, err := c.Password(ctx, acme, ref); return err },
	} {
		w.srv.Inject(hudutest.Fault{Kind: hudutest.KindShowPassword, Malformed: true})
		err := call()
		if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "Hudu: customer acme: "+name+" "+ref) {
			t.Errorf("%s: err = %v, want ErrMalformed naming Hudu and the call", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "old-value") {
			t.Errorf("%s: the error quotes the password: %v", name, err)
		}
	}
	if n := w.srv.Count(hudutest.KindUpdatePassword); n != 0 {
		t.Errorf("%d updates after a malformed read", n)
	}
}

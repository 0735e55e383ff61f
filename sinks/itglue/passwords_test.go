package itglue_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/sirupsen/logrus"
)

// entryWorld is an account with entries of every kind Entry tells apart.
type entryWorld struct {
	srv                                                      *itgluetest.Server
	jane, other, archived, personal, restricted, nocat, gone int
}

func newEntryWorld(t *testing.T, o itgluetest.Options) entryWorld {
	t.Helper()
	srv := startServer(t, o)
	srv.AddOrganization(7, "Acme")
	srv.AddOrganization(8, "Bravo Ltd")
	w := entryWorld{srv: srv}
	w.jane = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane Doe (Active Directory)", Username: "jdoe", Value: "old-value", Notes: "Imported by autoimport; password not yet set"}, "Active Directory")
	w.other = srv.AddPassword(itgluetest.Password{OrganizationID: 8, Name: "Bob", Username: "bob", Value: "bob-value"}, "Active Directory")
	w.archived = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Old", Username: "old", Value: "x", Archived: true}, "Active Directory")
	w.personal = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Mine", Username: "mine", Value: "x", MyGlue: true}, "Active Directory")
	w.restricted = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Only me", Username: "me", Value: "x", Restricted: true}, "Active Directory")
	w.nocat = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "No category", Username: "nocat", Value: "x"}, "")
	w.gone = srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Gone", Username: "gone", Value: "x"}, "Active Directory")
	if !srv.DeletePassword(w.gone) {
		t.Fatal("DeletePassword did not find the entry")
	}
	return w
}

func TestEntry(t *testing.T) {
	for _, omit := range []bool{false, true} {
		w := newEntryWorld(t, itgluetest.Options{OmitCategoryNames: omit})
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
			{name: "no category", ref: ref(w.nocat), want: sinks.VaultEntry{Ref: ref(w.nocat), Name: "No category", Username: "nocat"}},
			{name: "unknown id", ref: "999999", is: sinks.ErrNotFound, message: []string{"no password 999999"}},
			{name: "deleted", ref: ref(w.gone), is: sinks.ErrNotFound, message: []string{"no password " + ref(w.gone)}},
			{name: "other organization", ref: ref(w.other), is: sinks.ErrWrongCustomer, message: []string{"organization 8 (Bravo Ltd)", "customer's organization 7"}},
			{name: "archived", ref: ref(w.archived), is: sinks.ErrNotFound, message: []string{"is archived"}},
			{name: "personal", ref: ref(w.personal), is: sinks.ErrNotFound, message: []string{"personal (My Glue)"}},
			{name: "restricted", ref: ref(w.restricted), is: sinks.ErrNotFound, message: []string{"restricted"}},
			{name: "not an id", ref: "jdoe", message: []string{`password id "jdoe" is not a positive integer`}},
		} {
			t.Run(tt.name+map[bool]string{true: " without category names"}[omit], func(t *testing.T) {
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
				for _, m := range append(tt.message, "IT Glue: customer acme: ") {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q lacks %q", err, m)
					}
				}
			})
		}
		if omit && w.srv.Count(itgluetest.KindListCategories) != 1 {
			t.Errorf("category list read %d times, want once", w.srv.Count(itgluetest.KindListCategories))
		}
	}
}

func TestSetPasswordThenReadBack(t *testing.T) {
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.DebugLevel)
	w := newEntryWorld(t, itgluetest.Options{})
	c := newClient(t, w.srv, func(c *itglue.Config) { c.Log = log })
	ctx := context.Background()
	ref := strconv.Itoa(w.jane)

	const first, second = "Rotated-Value-1!", "Rotated-Value-2!"
	if err := c.SetPassword(ctx, acme, ref, first, "Password set by rotation"); err != nil {
		t.Fatal(err)
	}
	p, _ := w.srv.Password(w.jane)
	if p.Value != first || p.Notes != "Password set by rotation" || p.Name != "Jane Doe (Active Directory)" || p.Username != "jdoe" {
		t.Fatalf("stored %+v", p)
	}
	if got, err := c.Password(ctx, acme, ref); err != nil || got != first {
		t.Fatalf("Password = %q, %v; want the new value", got, err)
	}
	// Empty notes leave the note alone.
	if err := c.SetPassword(ctx, acme, ref, second, ""); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.srv.Password(w.jane); p.Value != second || p.Notes != "Password set by rotation" {
		t.Fatalf("stored %+v", p)
	}
	if got, err := c.Password(ctx, acme, ref); err != nil || got != second {
		t.Fatalf("Password = %q, %v; want the second value", got, err)
	}
	if n := w.srv.Count(itgluetest.KindUpdatePassword); n != 2 {
		t.Errorf("%d updates, want 2", n)
	}
	if logs.Len() == 0 {
		t.Fatal("no debug lines were logged")
	}
	for _, v := range []string{first, second} {
		if strings.Contains(logs.String(), v) {
			t.Fatalf("the log holds the password: %s", logs.String())
		}
	}
}

// A value is never written into an entry autoimport may not use.
func TestSetPasswordRefusesWithoutWriting(t *testing.T) {
	w := newEntryWorld(t, itgluetest.Options{})
	c := newClient(t, w.srv, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		id int
		is error
	}{
		{w.other, sinks.ErrWrongCustomer},
		{w.archived, sinks.ErrNotFound},
		{w.personal, sinks.ErrNotFound},
		{w.restricted, sinks.ErrNotFound},
		{w.gone, sinks.ErrNotFound},
	} {
		ref := strconv.Itoa(tt.id)
		if err := c.SetPassword(ctx, acme, ref, "New-Value-1!", "n"); !errors.Is(err, tt.is) {
			t.Errorf("SetPassword(%s) = %v, want %v", ref, err, tt.is)
		}
		if _, err := c.Password(ctx, acme, ref); !errors.Is(err, tt.is) {
			t.Errorf("Password(%s) = %v, want %v", ref, err, tt.is)
		}
		if p, ok := w.srv.Password(tt.id); ok && p.Value == "New-Value-1!" {
			t.Errorf("entry %d was written", tt.id)
		}
	}
	if n := w.srv.Count(itgluetest.KindUpdatePassword); n != 0 {
		t.Errorf("%d updates were sent", n)
	}
	for _, bad := range []string{"", "\xff\xfe"} {
		if err := c.SetPassword(ctx, acme, strconv.Itoa(w.jane), bad, ""); err == nil || !strings.Contains(err.Error(), "non-empty valid UTF-8") {
			t.Errorf("SetPassword(%q) = %v", bad, err)
		}
	}
}

// PATCH is idempotent: 429 (after Retry-After) and 5xx are retried.
func TestSetPasswordRetries(t *testing.T) {
	for _, f := range []itgluetest.Fault{
		{Kind: itgluetest.KindUpdatePassword, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		{Kind: itgluetest.KindUpdatePassword, Status: http.StatusServiceUnavailable, Times: 2},
		{Kind: itgluetest.KindUpdatePassword, Status: http.StatusBadGateway},
	} {
		t.Run(strconv.Itoa(f.Status), func(t *testing.T) {
			w := newEntryWorld(t, itgluetest.Options{})
			w.srv.Inject(f)
			c := newClient(t, w.srv, nil)
			if err := c.SetPassword(context.Background(), acme, strconv.Itoa(w.jane), "After-Retry-1!", ""); err != nil {
				t.Fatal(err)
			}
			if p, _ := w.srv.Password(w.jane); p.Value != "After-Retry-1!" {
				t.Fatalf("stored %q", p.Value)
			}
			times := max(f.Times, 1)
			if n := w.srv.Count(itgluetest.KindUpdatePassword); n != int64(times+1) {
				t.Errorf("%d update attempts, want %d", n, times+1)
			}
			if c.Stats().Retries != int64(times) {
				t.Errorf("stats %+v", c.Stats())
			}
		})
	}
	// Retries run out: the error names the call and never the value.
	w := newEntryWorld(t, itgluetest.Options{})
	w.srv.Inject(itgluetest.Fault{Kind: itgluetest.KindUpdatePassword, Status: http.StatusServiceUnavailable, Times: -1})
	c := newClient(t, w.srv, func(c *itglue.Config) { c.MaxRetries = 2 })
	err := c.SetPassword(context.Background(), acme, strconv.Itoa(w.jane), "Never-Stored-1!", "")
	if err == nil || !strings.Contains(err.Error(), "IT Glue: customer acme: set password") || !strings.Contains(err.Error(), "HTTP 503") || strings.Contains(err.Error(), "Never-Stored-1!") {
		t.Fatalf("err = %v", err)
	}
	var re *restclient.Error
	if !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("err %v is not a temporary *restclient.Error", err)
	}
}

func TestPasswordCallsWithoutPasswordAccess(t *testing.T) {
	w := newEntryWorld(t, itgluetest.Options{NoPasswordAccess: true})
	c := newClient(t, w.srv, nil)
	ctx := context.Background()
	ref := strconv.Itoa(w.jane)
	if _, err := c.Entry(ctx, acme, ref); err != nil {
		t.Fatalf("Entry needs no Password Access: %v", err)
	}
	if _, err := c.Password(ctx, acme, ref); err == nil || !strings.Contains(err.Error(), "Password Access") {
		t.Errorf("Password = %v, want an error about Password Access", err)
	}
	err := c.SetPassword(ctx, acme, ref, "New-Value-1!", "")
	if err == nil || !strings.Contains(err.Error(), "Password Access") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("SetPassword = %v, want a 403 about Password Access", err)
	}
	if p, _ := w.srv.Password(w.jane); p.Value != "old-value" {
		t.Errorf("value changed to %q", p.Value)
	}
}

func TestEntryMalformedBody(t *testing.T) {
	w := newEntryWorld(t, itgluetest.Options{})
	c := newClient(t, w.srv, nil)
	ctx := context.Background()
	ref := strconv.Itoa(w.jane)
	for name, call := range map[string]func() error{
		"read password":              func() error { _, err := c.Entry(ctx, acme, ref); return err },
		"set password":               func() error { return c.SetPassword(ctx, acme, ref, "Not-Written-1!", "") },
		"read the value of password": func() error { _, err := c.Password(ctx, acme, ref); return err },
	} {
		w.srv.Inject(itgluetest.Fault{Kind: itgluetest.KindShowPassword, Malformed: true})
		err := call()
		if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "IT Glue: customer acme: "+name+" "+ref) {
			t.Errorf("%s: err = %v, want ErrMalformed naming IT Glue and the call", name, err)
		}
	}
	if n := w.srv.Count(itgluetest.KindUpdatePassword); n != 0 {
		t.Errorf("%d updates after a malformed read", n)
	}
}

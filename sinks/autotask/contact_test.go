package autotask_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

func TestContact(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	jane := srv.AddContact(autotasktest.Contact{CompanyID: 123, FirstName: "Jane", LastName: "Doe", EmailAddress: "jane@acme.example", IsActive: true})
	left := srv.AddContact(autotasktest.Contact{CompanyID: 123, FirstName: "Left", LastName: "Long Ago"})
	other := srv.AddContact(autotasktest.Contact{CompanyID: 124, FirstName: "Olga", LastName: "Other", IsActive: true})
	gone := srv.AddContact(autotasktest.Contact{CompanyID: 123, FirstName: "Gone", LastName: "Away", IsActive: true})
	if !srv.DeleteContact(gone) {
		t.Fatal("DeleteContact did not find the contact")
	}
	c := newClient(t, srv, nil)
	ref := func(id int64) string { return strconv.FormatInt(id, 10) }
	for _, tt := range []struct {
		name, ref string
		want      sinks.Contact
		is        error
		message   string
	}{
		{name: "found", ref: ref(jane), want: sinks.Contact{Ref: ref(jane), FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"}},
		{name: "inactive", ref: ref(left), want: sinks.Contact{Ref: ref(left), FirstName: "Left", LastName: "Long Ago"}},
		{name: "unknown", ref: "42", is: sinks.ErrNotFound, message: "Autotask has no contact 42"},
		{name: "deleted", ref: ref(gone), is: sinks.ErrNotFound, message: "no contact " + ref(gone)},
		{name: "other company", ref: ref(other), is: sinks.ErrWrongCustomer, message: "belongs to company 124, not the customer's company 123"},
		{name: "not an id", ref: "1.5", message: `contact id "1.5" is not a positive integer`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Contact(context.Background(), scope, tt.ref)
			if tt.message == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Contact = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.message) || !strings.HasPrefix(err.Error(), "Autotask: customer acme: ") {
				t.Fatalf("err = %v, want %q", err, tt.message)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if tt.is == nil && (errors.Is(err, sinks.ErrNotFound) || errors.Is(err, sinks.ErrWrongCustomer)) {
				t.Errorf("error %v claims not found or wrong customer for a malformed reference", err)
			}
		})
	}
	// A 404 is taken as not found too.
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindContact, Status: http.StatusNotFound})
	if _, err := c.Contact(context.Background(), scope, ref(jane)); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
}

func TestContactRetriesAndMalformed(t *testing.T) {
	srv := newServer(t, autotasktest.Options{})
	jane := srv.AddContact(autotasktest.Contact{CompanyID: 123, FirstName: "Jane", LastName: "Doe", IsActive: true})
	ref := strconv.FormatInt(jane, 10)
	ctx := context.Background()

	// Before any call succeeded a 500 is reported at once, as a possible
	// credential problem; a 429 is still waited out.
	c := newClient(t, srv, nil)
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindContact, Status: http.StatusInternalServerError})
	_, err := c.Contact(ctx, scope, ref)
	if err == nil || !strings.Contains(err.Error(), "wrong API user name or integration code") || srv.Count(autotasktest.KindContact) != 1 {
		t.Fatalf("first-call 500: %v after %d requests", err, srv.Count(autotasktest.KindContact))
	}
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindContact, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	if got, err := c.Contact(ctx, scope, ref); err != nil || got.FirstName != "Jane" {
		t.Fatalf("after 429: %+v, %v", got, err)
	}
	// Once a call succeeded, 5xx is retried.
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindContact, Status: http.StatusServiceUnavailable, Times: 2})
	before := srv.Count(autotasktest.KindContact)
	if got, err := c.Contact(ctx, scope, ref); err != nil || got.FirstName != "Jane" {
		t.Fatalf("after 503s: %+v, %v", got, err)
	}
	if n := srv.Count(autotasktest.KindContact) - before; n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	srv.Inject(autotasktest.Fault{Kind: autotasktest.KindContact, Malformed: true})
	_, err = c.Contact(ctx, scope, ref)
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "Autotask: customer acme: read contact "+ref) {
		t.Fatalf("err = %v, want ErrMalformed naming Autotask and the call", err)
	}
}

func TestContactMisbehavingServer(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"no item member", `{}`, "no item member"},
		{"another contact", `{"item":{"id":8,"companyID":123}}`, "asked for contact 7, got 8"},
		{"no company", `{"item":{"id":7,"companyID":0}}`, "belongs to no company"},
		{"item not an object", `{"item":[1]}`, "malformed response body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) }))
			defer stub.Close()
			c, err := autotask.New(autotask.Config{APIURL: stub.URL + "/ATServicesRest/", UserName: "stub@x.example", Secret: "s", IntegrationCode: "i", Rate: "1000/s", Transport: stub.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Contact(context.Background(), scope, "7")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Autotask: customer acme: read contact 7") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

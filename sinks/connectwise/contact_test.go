package connectwise_test

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
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
)

func TestContact(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	jane := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"})
	left := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Left", LastName: "Long Ago", Inactive: true})
	other := srv.AddContact(cwtest.Contact{CompanyID: 251, FirstName: "Olga", LastName: "Other"})
	gone := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Gone", LastName: "Away"})
	if !srv.DeleteContact(gone) || srv.DeleteContact(gone) {
		t.Fatal("DeleteContact must report the first delete only")
	}
	c := newClient(t, srv, nil)
	ref := strconv.Itoa
	for _, tt := range []struct {
		name, ref string
		want      sinks.Contact
		is        error
		message   string
	}{
		{name: "found", ref: ref(jane), want: sinks.Contact{Ref: ref(jane), FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"}},
		{name: "inactive", ref: ref(left), want: sinks.Contact{Ref: ref(left), FirstName: "Left", LastName: "Long Ago"}},
		{name: "unknown", ref: "99", is: sinks.ErrNotFound, message: "ConnectWise has no contact 99"},
		{name: "deleted", ref: ref(gone), is: sinks.ErrNotFound, message: "no contact " + ref(gone)},
		{name: "other company", ref: ref(other), is: sinks.ErrWrongCustomer, message: "belongs to company 251 (Other Inc), not the customer's company 250"},
		{name: "not an id", ref: "jane", message: `contact id "jane" is not a positive integer`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Contact(context.Background(), scope, tt.ref)
			if tt.message == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Contact = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.message) || !strings.HasPrefix(err.Error(), "ConnectWise: customer acme: ") {
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
}

func TestContactRetriesAndMalformed(t *testing.T) {
	srv := newServer(t, cwtest.Options{})
	jane := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Jane", LastName: "Doe"})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	srv.Inject(cwtest.Fault{Kind: cwtest.KindGetContact, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	srv.Inject(cwtest.Fault{Kind: cwtest.KindGetContact, Status: http.StatusServiceUnavailable})
	if got, err := c.Contact(ctx, scope, strconv.Itoa(jane)); err != nil || got.FirstName != "Jane" {
		t.Fatalf("Contact after 429 and 503 = %+v, %v", got, err)
	}
	if n := srv.Count(cwtest.KindGetContact); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	srv.Inject(cwtest.Fault{Kind: cwtest.KindGetContact, Malformed: true})
	_, err := c.Contact(ctx, scope, strconv.Itoa(jane))
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "ConnectWise: customer acme: read contact "+strconv.Itoa(jane)) {
		t.Fatalf("err = %v, want ErrMalformed naming ConnectWise and the call", err)
	}
}

// Cloud may answer wrong credentials with 404: the not-found error says so.
func TestContactNotFoundMayBeCredentials(t *testing.T) {
	srv := newServer(t, cwtest.Options{AuthFailureStatus: http.StatusNotFound})
	jane := srv.AddContact(cwtest.Contact{CompanyID: 250, FirstName: "Jane"})
	c := newClient(t, srv, func(c *connectwise.Config) { c.PrivateKey = "wrong" })
	_, err := c.Contact(context.Background(), scope, strconv.Itoa(jane))
	if !errors.Is(err, sinks.ErrNotFound) || !strings.Contains(err.Error(), "wrong company id or API key") {
		t.Fatalf("err = %v", err)
	}
}

func TestContactMisbehavingServer(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"no company", `{"id":7,"firstName":"A"}`, "belongs to no company"},
		{"another contact", `{"id":8,"firstName":"A","company":{"id":250}}`, "asked for contact 7, got 8"},
		{"an array", `[{"id":7}]`, "malformed response body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) }))
			defer stub.Close()
			c, err := connectwise.New(connectwise.Config{URL: stub.URL, CompanyID: "stub", PublicKey: "p", PrivateKey: "k", ClientID: "c", Rate: "1000/s", Transport: stub.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Contact(context.Background(), scope, "7")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ConnectWise: customer acme: read contact 7") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

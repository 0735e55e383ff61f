package halopsa_test

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
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
)

func TestContact(t *testing.T) {
	srv := newServer(t, halopsatest.Options{})
	branch := srv.AddSite(12, "Branch")
	jane := srv.AddUser(halopsatest.User{ClientID: 12, FirstName: "Jane", Surname: "Doe", EmailAddress: "jane@acme.example"})
	away := srv.AddUser(halopsatest.User{ClientID: 12, SiteID: branch, Name: "Mary Ann Smith", Inactive: true})
	other := srv.AddUser(halopsatest.User{ClientID: 13, FirstName: "Olga", Surname: "Other"})
	gone := srv.AddUser(halopsatest.User{ClientID: 12, FirstName: "Gone", Surname: "Away"})
	if !srv.DeleteUser(gone) {
		t.Fatal("DeleteUser did not find the user")
	}
	c := newClient(t, srv, nil)
	ref := strconv.Itoa
	withSite := sinks.PSAScope{Customer: "acme", CompanyID: "12:" + ref(branch)}
	for _, tt := range []struct {
		name  string
		scope sinks.PSAScope
		ref   string
		want  sinks.Contact
		is    error
		msg   string
	}{
		{name: "found", scope: scope, ref: ref(jane), want: sinks.Contact{Ref: ref(jane), FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"}},
		{name: "inactive, named only", scope: scope, ref: ref(away), want: sinks.Contact{Ref: ref(away), FirstName: "Mary Ann", LastName: "Smith"}},
		{name: "any site of the client", scope: withSite, ref: ref(jane), want: sinks.Contact{Ref: ref(jane), FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"}},
		{name: "unknown", scope: scope, ref: "999999", is: sinks.ErrNotFound, msg: "Halo has no user 999999"},
		{name: "deleted", scope: scope, ref: ref(gone), is: sinks.ErrNotFound, msg: "no user " + ref(gone)},
		{name: "other client", scope: scope, ref: ref(other), is: sinks.ErrWrongCustomer, msg: "belongs to client 13 (Other), not the customer's client 12"},
		{name: "not an id", scope: scope, ref: "95.0", msg: `user id "95.0" is not a positive integer`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Contact(context.Background(), tt.scope, tt.ref)
			if tt.msg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Contact = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "HaloPSA: customer acme: ") {
				t.Fatalf("err = %v, want %q", err, tt.msg)
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
	srv := newServer(t, halopsatest.Options{})
	jane := srv.AddUser(halopsatest.User{ClientID: 12, FirstName: "Jane", Surname: "Doe"})
	ref := strconv.Itoa(jane)
	c := newClient(t, srv, nil)
	ctx := context.Background()
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindGetUser, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindGetUser, Status: http.StatusBadGateway})
	if got, err := c.Contact(ctx, scope, ref); err != nil || got.FirstName != "Jane" {
		t.Fatalf("after 429 and 502: %+v, %v", got, err)
	}
	if n := srv.Count(halopsatest.KindGetUser); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	// An expired token is replaced once.
	srv.ExpireTokens()
	if _, err := c.Contact(ctx, scope, ref); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	srv.Inject(halopsatest.Fault{Kind: halopsatest.KindGetUser, Malformed: true})
	_, err := c.Contact(ctx, scope, ref)
	if !errors.Is(err, restclient.ErrMalformed) || !strings.Contains(err.Error(), "HaloPSA: customer acme: read user "+ref) {
		t.Fatalf("err = %v, want ErrMalformed naming HaloPSA and the call", err)
	}
}

func TestContactMisbehavingServer(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		is               error
	}{
		{"empty record", `{}`, "answered without a user 7", sinks.ErrNotFound},
		{"another user", `{"id":8,"client_id":12}`, "asked for user 7, got 8", restclient.ErrMalformed},
		{"no client", `{"id":7,"client_id":0}`, "belongs to no client", sinks.ErrWrongCustomer},
		{"an array", `[{"id":7}]`, "malformed response body", restclient.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/auth/token" {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer stub.Close()
			c, err := halopsa.New(halopsa.Config{URL: stub.URL, ClientID: "c", ClientSecret: "s", Rate: "1000/s", Transport: stub.Client().Transport})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Contact(context.Background(), scope, "7")
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "HaloPSA: customer acme: read user 7") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

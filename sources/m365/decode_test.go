package m365_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
)

func TestDecodePage(t *testing.T) {
	tests := []struct {
		file           string
		ok, bad        int
		next, delta    bool
		removed, typed int
	}{
		{file: "users_page.json", ok: 2, next: true},
		{file: "delta_page.json", ok: 3, delta: true, removed: 2, typed: 1},
		{file: "role_members.json", ok: 2, typed: 2},
		{file: "bad_entries.json", ok: 2, bad: 4},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			users, errs, next, delta, err := m365.DecodePage(body)
			if err != nil {
				t.Fatalf("DecodePage: %v", err)
			}
			ok, bad, removed, typed := 0, 0, 0, 0
			for i, u := range users {
				if errs[i] != nil {
					var ee *sources.EntryError
					if !errors.As(errs[i], &ee) {
						t.Errorf("entry %d: error %v is not an *EntryError", i, errs[i])
					}
					bad++
					continue
				}
				ok++
				if u.Removed != nil {
					removed++
				}
				if u.ODataType != "" {
					typed++
				}
			}
			if ok != tc.ok || bad != tc.bad || removed != tc.removed || typed != tc.typed || (next != "") != tc.next || (delta != "") != tc.delta {
				t.Errorf("ok %d bad %d removed %d typed %d next %q delta %q; want %+v", ok, bad, removed, typed, next, delta, tc)
			}
		})
	}

	t.Run("hybrid fields", func(t *testing.T) {
		body, _ := os.ReadFile(filepath.Join("testdata", "users_page.json"))
		users, _, _, _, _ := m365.DecodePage(body)
		u := users[0]
		if u.OnPremisesImmutableID != "MyIRAFVEd2aImaq7zN3u/w==" || u.OnPremisesSyncEnabled == nil || !*u.OnPremisesSyncEnabled ||
			u.AccountEnabled == nil || !*u.AccountEnabled || len(u.AssignedLicenses) != 1 || u.OnPremisesSamAccountName != "jdoe" {
			t.Errorf("hybrid user decoded as %+v", u)
		}
		g := users[1]
		if g.OnPremisesSyncEnabled != nil || g.GivenName != "" || g.UserType != "Guest" || *g.AccountEnabled {
			t.Errorf("guest decoded as %+v", g)
		}
	})

	for _, body := range []string{``, `null`, `[]`, `{}`, `{"value":null}`, `{"value":{}}`, `{"value":[`, `<html>busy</html>`} {
		t.Run("malformed "+body, func(t *testing.T) {
			_, _, _, _, err := m365.DecodePage([]byte(body))
			if !errors.Is(err, restclient.ErrMalformed) {
				t.Errorf("DecodePage(%q) error = %v, want ErrMalformed", body, err)
			}
		})
	}
	t.Run("empty page", func(t *testing.T) {
		users, _, _, _, err := m365.DecodePage([]byte(`{"value":[]}`))
		if err != nil || len(users) != 0 {
			t.Errorf("empty page: %v %v", users, err)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"value":[{"id":"a","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"x"}`))
	f.Add([]byte(`{"value":[{"id":"a","assignedLicenses":null,"accountEnabled":null}]}`))
	f.Add([]byte(`{"value":[1,true,null,"s",{"id":{}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		users, errs, _, _, err := m365.DecodePage(body)
		if err != nil {
			if users != nil || !errors.Is(err, restclient.ErrMalformed) {
				t.Fatalf("error %v with %d users", err, len(users))
			}
			return
		}
		if len(users) != len(errs) {
			t.Fatalf("%d users, %d errors", len(users), len(errs))
		}
		for i, u := range users {
			if errs[i] == nil && u.ID == "" {
				t.Fatalf("entry %d accepted without an id", i)
			}
			if errs[i] != nil && strings.TrimSpace(errs[i].Error()) == "" {
				t.Fatalf("entry %d: empty error", i)
			}
		}
	})
}

// FuzzAccounts serves a fuzzed body as the only page of users and reads it
// through the whole source: a stream of accounts and errors, never a panic,
// every account with an id and a username.
func FuzzAccounts(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var body atomic.Value
	body.Store([]byte(`{"value":[]}`))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /t/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`))
	})
	mux.HandleFunc("GET /v1.0/directoryRoles", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"value":[]}`))
	})
	mux.HandleFunc("GET /v1.0/users", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body.Load().([]byte))
	})
	ts := httptest.NewServer(mux)
	f.Cleanup(ts.Close)
	src, err := m365.New(m365.Config{Customer: "acme", TenantID: "t", ClientID: "c", ClientSecret: "s",
		LoginURL: ts.URL, GraphURL: ts.URL, Transport: ts.Client().Transport, MaxPages: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		body.Store(page)
		for a, err := range src.Accounts(context.Background(), sources.Selection{}) {
			if err != nil {
				continue
			}
			if a.ID == "" || a.Username == "" || a.Source != sources.KindM365 {
				t.Fatalf("account without id or username: %+v", a)
			}
		}
	})
}

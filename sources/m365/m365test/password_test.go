package m365test_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// patch sends a PATCH /v1.0/users/{id} and returns the status and, for an
// error, Graph's error code and message.
func (c *client) patch(id, contentType, body string) (int, string, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, c.srv.URL+"/v1.0/users/"+url.PathEscape(id), bytes.NewBufferString(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		if len(raw) != 0 {
			c.t.Errorf("204 with a body %q", raw)
		}
		return resp.StatusCode, "", ""
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		c.t.Fatalf("error body %q: %v", raw, err)
	}
	return resp.StatusCode, e.Error.Code, e.Error.Message
}

func resetBody(pw string) string {
	b, _ := json.Marshal(map[string]any{"passwordProfile": map[string]any{"password": pw, "forceChangePasswordNextSignIn": false}})
	return string(b)
}

const goodPassword = "Rotated-Pass-2024!"

// pwTenant is a fake with a cloud user, a hybrid user and a Global
// Administrator whose passwords were last changed on 1 January 2024.
type pwTenant struct {
	srv                 *m365test.Server
	ten                 *m365test.Tenant
	user, hybrid, admin string
}

var longAgo = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newPWTenant(t *testing.T) *pwTenant {
	t.Helper()
	srv := m365test.NewServer(m365test.Options{})
	t.Cleanup(srv.Close)
	ten := srv.Default()
	synced := true
	p := &pwTenant{srv: srv, ten: ten,
		user:   ten.AddUser(m365test.User{DisplayName: "Cloud User", LastPasswordChange: longAgo}),
		hybrid: ten.AddUser(m365test.User{DisplayName: "Hybrid User", OnPremisesSyncEnabled: &synced, LastPasswordChange: longAgo}),
		admin:  ten.AddUser(m365test.User{DisplayName: "Global Admin", LastPasswordChange: longAgo}),
	}
	ten.ActivateRole(m365test.GlobalAdministrator, "")
	ten.AssignRole(m365test.GlobalAdministrator, p.admin)
	return p
}

func TestPasswordResetApplies(t *testing.T) {
	p := newPWTenant(t)
	c := newClient(t, p.srv, p.srv.TenantID)
	if status, code, msg := c.patch(p.user, "application/json", resetBody(goodPassword)); status != http.StatusNoContent {
		t.Fatalf("reset: %d %s %s", status, code, msg)
	}
	if pw, ok := p.ten.Password(p.user); !ok || pw != goodPassword {
		t.Error("the fake did not record the password")
	}
	if p.ten.MustChangePassword(p.user) {
		t.Error("forceChangePasswordNextSignIn false was not honoured")
	}
	u, _ := p.ten.User(p.user)
	if !u.LastPasswordChange.After(longAgo) || time.Since(u.LastPasswordChange) > time.Minute {
		t.Errorf("lastPasswordChangeDateTime %v", u.LastPasswordChange)
	}
	status, _, body := c.get("/v1.0/users/" + p.user + "?$select=id,lastPasswordChangeDateTime")
	if got, _ := body["lastPasswordChangeDateTime"].(string); status != 200 || got != u.LastPasswordChange.Format(time.RFC3339) {
		t.Errorf("GET lastPasswordChangeDateTime: %d %v", status, body)
	}
	if n := p.srv.Count(m365test.KindUserUpdate); n != 1 {
		t.Errorf("%d updates counted", n)
	}
	// Without forceChangePasswordNextSignIn the user must change it.
	if status, _, _ := c.patch(p.user, "application/json", `{"passwordProfile":{"password":"Another-Pass-1"}}`); status != http.StatusNoContent {
		t.Fatal(status)
	}
	if !p.ten.MustChangePassword(p.user) {
		t.Error("an omitted forceChangePasswordNextSignIn did not count as true")
	}
}

func TestPasswordResetRefusals(t *testing.T) {
	p := newPWTenant(t)
	c := newClient(t, p.srv, p.srv.TenantID)
	cases := []struct {
		name, id, ctype, body string
		setup                 func()
		status                int
		code                  string
	}{
		{"no token", p.user, "application/json", resetBody(goodPassword), func() { c.token = "" }, 401, "InvalidAuthenticationToken"},
		{"form body", p.user, "application/x-www-form-urlencoded", "password=x", nil, 415, "BadRequest"},
		{"not JSON", p.user, "application/json", "{", nil, 400, "BadRequest"},
		{"other property", p.user, "application/json", `{"passwordProfile":{"password":"Rotated-Pass-1"},"displayName":"x"}`, nil, 400, "Request_BadRequest"},
		{"no password", p.user, "application/json", `{"passwordProfile":{"forceChangePasswordNextSignIn":false}}`, nil, 400, "Request_BadRequest"},
		{"empty password", p.user, "application/json", resetBody(""), nil, 400, "Request_BadRequest"},
		{"unknown profile field", p.user, "application/json", `{"passwordProfile":{"password":"Rotated-Pass-1","pwd":"x"}}`, nil, 400, "Request_BadRequest"},
		{"weak", p.user, "application/json", resetBody("onlylowercase"), nil, 400, "Request_BadRequest"},
		{"short", p.user, "application/json", resetBody("Ab1!"), nil, 400, "Request_BadRequest"},
		{"synced", p.hybrid, "application/json", resetBody(goodPassword), nil, 400, "Request_BadRequest"},
		{"missing", "00000000-0000-4000-8000-000000000000", "application/json", resetBody(goodPassword), nil, 404, "Request_ResourceNotFound"},
		{"admin without the role", p.admin, "application/json", resetBody(goodPassword), func() { p.ten.SetAppCanResetAdmins(false) }, 403, "Authorization_RequestDenied"},
		{"no permission", p.user, "application/json", resetBody(goodPassword), func() { p.ten.SetAppCanResetPasswords(false) }, 403, "Authorization_RequestDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			tok := c.token
			t.Cleanup(func() {
				c.token = tok
				p.ten.SetAppCanResetAdmins(true)
				p.ten.SetAppCanResetPasswords(true)
			})
			if tc.setup != nil {
				tc.setup()
			}
			status, code, msg := c.patch(tc.id, tc.ctype, tc.body)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s %q, want %d %s", status, code, msg, tc.status, tc.code)
			}
			for _, id := range []string{p.user, p.hybrid, p.admin} {
				if _, ok := p.ten.Password(id); ok {
					t.Fatal("a refused reset took effect")
				}
			}
		})
	}
}

func TestPasswordResetOfAdmins(t *testing.T) {
	p := newPWTenant(t)
	c := newClient(t, p.srv, p.srv.TenantID)
	// Held by default: the app may reset administrators.
	if status, code, _ := c.patch(p.admin, "application/json", resetBody(goodPassword)); status != http.StatusNoContent {
		t.Fatalf("admin reset by default: %d %s", status, code)
	}
	p.ten.SetAppCanResetAdmins(false)
	if status, code, msg := c.patch(p.admin, "application/json", resetBody("Second-Pass-22")); status != 403 || msg != "Insufficient privileges to complete the operation." {
		t.Errorf("admin reset without the role: %d %s %s", status, code, msg)
	}
	if status, _, _ := c.patch(p.user, "application/json", resetBody("Second-Pass-22")); status != http.StatusNoContent {
		t.Errorf("a non-admin reset without the admin role: %d", status)
	}
	// Through a role-assignable group, and not for Directory Readers.
	viaGroup := p.ten.AddUser(m365test.User{DisplayName: "Group Admin"})
	reader := p.ten.AddUser(m365test.User{DisplayName: "Reader"})
	p.ten.AssignRole(m365test.GlobalAdministrator, p.ten.AddGroup("Tier 0", viaGroup))
	p.ten.ActivateRole(m365test.DirectoryReaders, "")
	p.ten.AssignRole(m365test.DirectoryReaders, reader)
	if status, _, _ := c.patch(viaGroup, "application/json", resetBody(goodPassword)); status != 403 {
		t.Errorf("admin through a group: %d", status)
	}
	if status, _, _ := c.patch(reader, "application/json", resetBody(goodPassword)); status != http.StatusNoContent {
		t.Errorf("Directory Readers member: %d", status)
	}
}

func TestPasswordResetFaults(t *testing.T) {
	p := newPWTenant(t)
	c := newClient(t, p.srv, p.srv.TenantID)
	cases := []struct {
		name    string
		fault   m365test.Fault
		status  int
		applied bool
	}{
		{"refused before", m365test.Fault{Kind: m365test.KindUserUpdate, Status: 503}, 503, false},
		{"dropped before", m365test.Fault{Kind: m365test.KindUserUpdate, Drop: true}, 0, false},
		{"failed after", m365test.Fault{Kind: m365test.KindUserUpdate, Status: 500, AfterApply: true}, 500, true},
		{"dropped after", m365test.Fault{Kind: m365test.KindUserUpdate, Drop: true, AfterApply: true}, 0, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			id := p.ten.AddUser(m365test.User{DisplayName: "Fault " + tc.name, LastPasswordChange: longAgo})
			p.srv.Inject(tc.fault)
			status, _, _ := c.patch(id, "application/json", resetBody(goodPassword+string(rune('a'+i))))
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			_, applied := p.ten.Password(id)
			u, _ := p.ten.User(id)
			if applied != tc.applied || u.LastPasswordChange.After(longAgo) != tc.applied {
				t.Errorf("applied %v (last change %v), want %v", applied, u.LastPasswordChange, tc.applied)
			}
		})
	}
}

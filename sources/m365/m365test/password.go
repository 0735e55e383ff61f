package m365test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Password resets: PATCH /v1.0/users/{id} with
// {"passwordProfile":{"password":"…","forceChangePasswordNextSignIn":false}},
// answered 204 No Content.
//
// What the fake enforces, as Graph does for an app-only call:
//
//   - the app needs an application permission that may write passwords
//     (User-PasswordProfile.ReadWrite.All, User.ReadWrite.All or
//     Directory.ReadWrite.All); without it every reset is 403
//     Authorization_RequestDenied. Granted by default:
//     Tenant.SetAppCanResetPasswords(false) takes it away;
//   - resetting a user who holds a directory role also needs the directory
//     role Privileged Authentication Administrator on the app's service
//     principal (User Administrator cannot reset Global Administrators).
//     The fake counts every activated role except Directory Readers, held
//     directly or through a role-assignable group. Held by default, like
//     the consent: Tenant.SetAppCanResetAdmins(false) takes it away, and
//     such resets are then 403;
//   - a user synced from on-premises AD (onPremisesSyncEnabled true) is 400
//     Request_BadRequest: its password is mastered in AD;
//   - the cloud password policy (unconfirmed in detail): 8 to 256
//     characters, three of upper case, lower case, digits and symbols;
//     otherwise 400 Request_BadRequest;
//   - the body must be JSON holding passwordProfile only, with a non-empty
//     password; forceChangePasswordNextSignIn not sent counts as true.
//
// A reset records the password (Tenant.Password) and sets
// lastPasswordChangeDateTime to the server's clock. Faults of kind
// KindUserUpdate refuse before the change; with AfterApply they answer
// (a status, or Drop) after it.

// passwordState is a tenant's password side, guarded by Tenant.mu.
type passwordState struct {
	// noPermission and noAdminRole invert the defaults (both granted).
	noPermission, noAdminRole bool
	passwords                 map[string]string
	forceChange               map[string]bool
}

// SetAppCanResetPasswords says whether the MSP's app holds an application
// permission that writes passwords (User-PasswordProfile.ReadWrite.All);
// default true.
func (t *Tenant) SetAppCanResetPasswords(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pw.noPermission = !ok
}

// SetAppCanResetAdmins says whether the app's service principal holds the
// directory role Privileged Authentication Administrator, needed to reset
// users who hold directory roles; default true.
func (t *Tenant) SetAppCanResetAdmins(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pw.noAdminRole = !ok
}

// Password returns the password last set through Graph for a user, so a
// test can check what a client sent; false when none was.
func (t *Tenant) Password(id string) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	pw, ok := t.pw.passwords[id]
	return pw, ok
}

// MustChangePassword reports whether the last reset asked the user to
// change the password at the next sign-in.
func (t *Tenant) MustChangePassword(id string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.pw.forceChange[id]
}

// holdsRole reports whether a user holds an activated directory role other
// than Directory Readers. Caller holds t.mu.
func (t *Tenant) holdsRole(id string) bool {
	for _, rid := range t.roleList {
		r := t.roles[rid]
		if r.RoleTemplateID == DirectoryReaders {
			continue
		}
		for _, u := range t.transitiveUsers(r.Members) {
			if u.ID == id {
				return true
			}
		}
	}
	return false
}

// Graph's messages for refused resets.
const (
	msgDenied  = "Insufficient privileges to complete the operation."
	msgSynced  = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
	msgComplex = "The specified password does not comply with password complexity requirements. Please provide a different password."
)

// updateUser answers PATCH /v1.0/users/{id}; after, if not nil, is a fault
// to answer with once the change is made.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, t *Tenant, after *Fault) {
	key, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/v1.0/users/"))
	if len(r.URL.Query()) > 0 {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Query options are not allowed on an update.")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		graphError(w, http.StatusUnsupportedMediaType, "BadRequest", "A supported MIME type could not be found that matches the content type of the response.")
		return
	}
	var body map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil || dec.More() {
		graphError(w, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return
	}
	for k := range body {
		if k != "passwordProfile" {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("The fake accepts only passwordProfile in an update, not '%s'.", k))
			return
		}
	}
	var prof struct {
		Password                             *string `json:"password"`
		ForceChangePasswordNextSignIn        *bool   `json:"forceChangePasswordNextSignIn"`
		ForceChangePasswordNextSignInWithMfa *bool   `json:"forceChangePasswordNextSignInWithMfa"`
	}
	raw, ok := body["passwordProfile"]
	pdec := json.NewDecoder(bytes.NewReader(raw))
	pdec.DisallowUnknownFields()
	if !ok || pdec.Decode(&prof) != nil || prof.Password == nil || *prof.Password == "" {
		graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'passwordProfile' of resource 'User'.")
		return
	}
	force := prof.ForceChangePasswordNextSignIn == nil || *prof.ForceChangePasswordNextSignIn

	t.mu.Lock()
	u, found := t.users[key]
	if !found {
		for _, c := range t.users {
			if strings.EqualFold(c.UserPrincipalName, key) {
				u, found = c, true
				break
			}
		}
	}
	var status int
	var code, msg string
	switch {
	case !found || u.deleted:
		status, code, msg = http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key)
	case t.pw.noPermission, t.pw.noAdminRole && t.holdsRole(u.ID):
		status, code, msg = http.StatusForbidden, "Authorization_RequestDenied", msgDenied
	case u.OnPremisesSyncEnabled != nil && *u.OnPremisesSyncEnabled:
		status, code, msg = http.StatusBadRequest, "Request_BadRequest", msgSynced
	case !cloudPolicyOK(*prof.Password):
		status, code, msg = http.StatusBadRequest, "Request_BadRequest", msgComplex
	default:
		if t.pw.passwords == nil {
			t.pw.passwords, t.pw.forceChange = map[string]string{}, map[string]bool{}
		}
		t.pw.passwords[u.ID] = *prof.Password
		t.pw.forceChange[u.ID] = force
		u.LastPasswordChange = s.now().UTC().Truncate(time.Second)
	}
	t.mu.Unlock()
	if status != 0 {
		graphError(w, status, code, msg)
		return
	}
	if after != nil && !s.delay(w, r, after, 0) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// cloudPolicyOK is Entra ID's password policy for cloud users: 8 to 256
// characters, at least three of the four classes.
func cloudPolicyOK(pw string) bool {
	n := len([]rune(pw))
	if n < 8 || n > 256 {
		return false
	}
	var upper, lower, digit, symbol int
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			symbol = 1
		}
	}
	return upper+lower+digit+symbol >= 3
}

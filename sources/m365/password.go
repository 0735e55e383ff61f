package m365

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// Password changes of cloud-only users.
//
// A reset is PATCH /v1.0/users/{id} with the new password in
// passwordProfile, answered 204. The app needs an application permission
// that writes passwords and, to reset administrators, a directory role on
// its service principal (see PasswordFix). Users synced from on-premises AD
// are mastered there: Graph refuses them, and they are rotated in AD.
//
// A reset is sent once: a server error or a lost answer may hide a change
// that happened, and a second attempt could then be refused (password
// history) although the first took, so the caller gets ErrOutcomeUnknown
// and decides. Only 429, which Graph answers before doing anything, is
// retried. To learn after a crash whether a reset took, read
// LastPasswordChange before SetPassword, keep it with the pending password,
// and compare it with a later reading.

// PasswordFix says what the MSP's app needs to reset passwords in a
// customer's tenant.
const PasswordFix = "grant the app the application permission User-PasswordProfile.ReadWrite.All (or User.ReadWrite.All) " +
	"with admin consent in this tenant, and, to reset administrators, assign the directory role Privileged Authentication " +
	"Administrator to the app's service principal (User Administrator cannot reset Global Administrators)"

// Errors of the password calls, for errors.Is; they come wrapped in an
// *Error naming the customer, the tenant and the user.
var (
	// ErrResetDenied: 403, the app may not reset this user's password
	// (see PasswordFix). Nothing was changed.
	ErrResetDenied = errors.New("the app may not reset this user's password")
	// ErrOnPremisesSynced: the user is synced from on-premises AD, so
	// Graph refuses the reset; rotate it in AD. Nothing was changed.
	ErrOnPremisesSynced = errors.New("the user is synced from on-premises Active Directory: its password can only be rotated in AD")
	// ErrUserNotFound: no user has this id. Nothing was changed.
	ErrUserNotFound = errors.New("no such user")
	// ErrOutcomeUnknown: the reset was sent but no clear answer came back
	// (a dropped connection, a timeout, a server error after the retries).
	// Graph may or may not have taken the password: ask LastPasswordChange.
	ErrOutcomeUnknown = errors.New("no clear answer from Graph: the password may or may not have been changed")
)

// PolicyError is a password Entra ID's password policy refused (400).
// Nothing was changed.
type PolicyError struct {
	// Reason is Graph's message.
	Reason string
}

func (e *PolicyError) Error() string {
	return "the tenant's password policy refused the password: " + e.Reason
}

// passwordPolicyText recognises Graph's messages about a refused password.
var passwordPolicyText = regexp.MustCompile(`(?i)comply with password|password complexity|password is too (weak|short|long)|banned password|password policy`)

// onPremisesText recognises Graph's refusal to write an object mastered in
// on-premises AD.
var onPremisesText = regexp.MustCompile(`(?i)on-premises mastered|Directory Sync`)

type passwordProfile struct {
	Password                      string `json:"password"`
	ForceChangePasswordNextSignIn bool   `json:"forceChangePasswordNextSignIn"`
}

// SetPassword resets a user's password (the Entra object id, or the UPN)
// through Graph, without asking the user to change it at the next
// sign-in. The errors say whether anything changed: *PolicyError,
// ErrResetDenied, ErrOnPremisesSynced and ErrUserNotFound mean nothing
// did; ErrOutcomeUnknown means it may have. The password is never logged or
// put in an error.
func (s *Source) SetPassword(ctx context.Context, userID, newPassword string) error {
	op := "set password of user " + userID
	fail := func(err error) error {
		return &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Err: err}
	}
	switch {
	case userID == "":
		return fail(errors.New("the user id is empty"))
	case newPassword == "":
		return fail(errors.New("the new password is empty"))
	case !utf8.ValidString(newPassword):
		return fail(errors.New("the new password is not valid UTF-8"))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	body, err := json.Marshal(struct {
		PasswordProfile passwordProfile `json:"passwordProfile"`
	}{passwordProfile{Password: newPassword}})
	if err != nil {
		return fail(err)
	}
	err = s.send(ctx, http.MethodPatch, s.graphURL("/users/"+url.PathEscape(userID), nil), body)
	if err == nil {
		return nil
	}
	return s.passwordError(op, err)
}

// LastPasswordChange returns the user's lastPasswordChangeDateTime, or the
// zero time when Graph has none. A missing user is ErrUserNotFound.
func (s *Source) LastPasswordChange(ctx context.Context, userID string) (time.Time, error) {
	op := "read lastPasswordChangeDateTime of user " + userID
	if userID == "" {
		return time.Time{}, &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Err: errors.New("the user id is empty")}
	}
	body, err := s.get(ctx, s.graphURL("/users/"+url.PathEscape(userID), url.Values{"$select": {"id,lastPasswordChangeDateTime"}}), nil, nil)
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", ErrUserNotFound, err)
		}
		return time.Time{}, s.graphError(op, err)
	}
	var u struct {
		LastPasswordChange *string `json:"lastPasswordChangeDateTime"`
	}
	if err := json.Unmarshal(body, &u); err != nil {
		return time.Time{}, s.graphError(op, fmt.Errorf("%w: %v", restclient.ErrMalformed, err))
	}
	t, err := parseGraphTime(u.LastPasswordChange)
	if err != nil {
		return time.Time{}, s.graphError(op, err)
	}
	return t, nil
}

// UserState is whether a user exists and may sign in.
type UserState string

// The states Lookup reports.
const (
	UserEnabled  UserState = "enabled"
	UserDisabled UserState = "disabled"
	UserMissing  UserState = "missing"
)

// UserStatus is what Lookup found.
type UserStatus struct {
	State             UserState
	UserPrincipalName string
	// OnPremisesSynced is true for a user synced from AD: its password is
	// rotated there, not through Graph.
	OnPremisesSynced bool
	// LastPasswordChange is lastPasswordChangeDateTime (zero when absent).
	LastPasswordChange time.Time
}

// Lookup reports whether the user exists and is enabled, whether it is
// synced from AD, and when its password last changed. A missing user is
// State UserMissing, not an error.
func (s *Source) Lookup(ctx context.Context, userID string) (UserStatus, error) {
	op := "look up user " + userID
	if userID == "" {
		return UserStatus{}, &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Err: errors.New("the user id is empty")}
	}
	body, err := s.get(ctx, s.graphURL("/users/"+url.PathEscape(userID),
		url.Values{"$select": {"id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime"}}), nil, nil)
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return UserStatus{State: UserMissing}, nil
		}
		return UserStatus{}, s.graphError(op, err)
	}
	var u struct {
		UserPrincipalName     string  `json:"userPrincipalName"`
		AccountEnabled        *bool   `json:"accountEnabled"`
		OnPremisesSyncEnabled *bool   `json:"onPremisesSyncEnabled"`
		LastPasswordChange    *string `json:"lastPasswordChangeDateTime"`
	}
	if err := json.Unmarshal(body, &u); err != nil || u.AccountEnabled == nil {
		return UserStatus{}, s.graphError(op, fmt.Errorf("%w: not a user with accountEnabled", restclient.ErrMalformed))
	}
	st := UserStatus{State: UserDisabled, UserPrincipalName: u.UserPrincipalName,
		OnPremisesSynced: u.OnPremisesSyncEnabled != nil && *u.OnPremisesSyncEnabled}
	if *u.AccountEnabled {
		st.State = UserEnabled
	}
	if st.LastPasswordChange, err = parseGraphTime(u.LastPasswordChange); err != nil {
		return UserStatus{}, s.graphError(op, err)
	}
	return st, nil
}

// parseGraphTime reads an optional ISO 8601 UTC time of Graph.
func parseGraphTime(v *string) (time.Time, error) {
	if v == nil || *v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: %v", restclient.ErrMalformed, *v, err)
	}
	return t.UTC(), nil
}

// send makes one authenticated write to Graph whose body holds a secret:
// the body never reaches a log or an error. It is not repeated after a
// server error or a network failure (only after 429). A token refused
// before its announced expiry is renewed once.
func (s *Source) send(ctx context.Context, method, rawURL string, body []byte) error {
	for attempt := 0; ; attempt++ {
		ts := s.tokenSource()
		tok, err := ts.Token()
		if err != nil {
			return s.tokenError(err)
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok.AccessToken)
		h.Set("Accept", "application/json")
		h.Set("Content-Type", "application/json")
		h.Set("client-request-id", newRequestID())
		once := false
		resp, err := s.rest.Do(ctx, restclient.Request{Method: method, URL: rawURL, Header: h, Body: body, Secret: true, Idempotent: &once})
		var re *restclient.Error
		if attempt == 0 && errors.As(err, &re) && re.Status == http.StatusUnauthorized {
			s.renewTokens(ts)
			continue
		}
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil
	}
}

// passwordError classifies a failed reset and says what to fix.
func (s *Source) passwordError(op string, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return err // the token was refused: nothing was sent
	}
	e := &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Err: err}
	var re *restclient.Error
	if !errors.As(err, &re) {
		e.Err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		return e
	}
	e.Code = re.Code
	switch {
	case re.Status == http.StatusForbidden:
		e.Err = fmt.Errorf("%w: %w", ErrResetDenied, err)
		e.Fix = PasswordFix
	case re.Status == http.StatusBadRequest && onPremisesText.MatchString(re.Message):
		e.Err = fmt.Errorf("%w: %w", ErrOnPremisesSynced, err)
		e.Fix = "rotate this user's password in the customer's Active Directory; Entra Connect syncs it to the cloud"
	case re.Status == http.StatusBadRequest && passwordPolicyText.MatchString(re.Message):
		return &Error{Customer: s.cfg.Customer, Tenant: s.cfg.TenantID, Op: op, Code: re.Code, Err: &PolicyError{Reason: re.Message}}
	case re.Status == http.StatusNotFound:
		e.Err = fmt.Errorf("%w: %w", ErrUserNotFound, err)
	case re.Status == http.StatusUnauthorized:
		e.Fix = "the access token was refused: check that the token's tenant and the Graph URL belong to the same cloud"
	case re.Status == 0 || re.Status >= 500:
		e.Err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return e
}

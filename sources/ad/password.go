package ad

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/text/encoding/unicode"

	"github.com/msp-tools/autoimport/internal/fence"
)

// Password changes.
//
// An administrator's reset is one LDAP Modify that replaces unicodePwd with
// the new password in double quotes, encoded UTF-16LE. Domain controllers
// take it only over an encrypted connection; Samba with "ldap server require
// strong auth = no" takes it in clear as well, so the client refuses
// plaintext itself, before it connects. The bind account needs the "Reset
// Password" extended right on the account.
//
// After a crash between the change and its answer, the caller learns
// whether the directory took a password with CheckPassword (a bind as the
// account) or PasswordLastSet.

// PasswordTarget names the account whose password is set, read or checked.
type PasswordTarget struct {
	// ObjectGUID is the account's objectGUID in canonical text form, the
	// Account.ID an import stored. Preferred: it survives renames and moves.
	ObjectGUID string
	// DN is used when ObjectGUID is empty.
	DN string
	// Username (sAMAccountName) names the account in errors; optional.
	Username string
}

// label names the target before it is resolved.
func (t PasswordTarget) label() string {
	var parts []string
	if t.Username != "" {
		parts = append(parts, strconv.Quote(t.Username))
	}
	switch {
	case t.ObjectGUID != "":
		parts = append(parts, "(objectGUID "+t.ObjectGUID+")")
	case t.DN != "":
		parts = append(parts, t.DN)
	}
	if len(parts) == 0 {
		return "an unnamed account"
	}
	return strings.Join(parts, " ")
}

// Errors of the password calls, for errors.Is.
var (
	// ErrPlaintext: the Source's connection is not encrypted (ldap://
	// without start_tls), so no password is sent. Nothing was changed.
	ErrPlaintext = errors.New("refusing to send a password over a connection without TLS")
	// ErrNotFound: no account has the target's objectGUID (or DN).
	ErrNotFound = errors.New("no such account")
	// ErrResetDenied: the bind account lacks the "Reset Password" right on
	// the account (LDAP result 50). Nothing was changed.
	ErrResetDenied = errors.New(`the bind account lacks the "Reset Password" right on the account`)
	// ErrOutcomeUnknown: the change was sent but no answer came back (the
	// connection dropped, or timed out). The directory may or may not have
	// taken the password: ask CheckPassword.
	ErrOutcomeUnknown = errors.New("no answer from the DC: the password may or may not have been changed")
	// ErrLockedOut: CheckPassword cannot tell, the account is locked out.
	ErrLockedOut = errors.New("the account is locked out, so a bind cannot tell whether the password is right")
)

// PolicyError is a password the domain's policy refused (length,
// complexity, history or minimum age): LDAP result 19 constraintViolation,
// or 53 unwillingToPerform, with 0000052D in the diagnostic. Nothing was
// changed.
type PolicyError struct {
	// ResultCode is the LDAP result code, 19 or 53.
	ResultCode uint16
	// Reason is the directory's own explanation, tidied: Samba's sentence
	// (e.g. "the password does not meet the complexity criteria"), or for
	// Windows DCs, whose text names no reason, a summary of the causes.
	Reason string
	// Diagnostic is the server's whole diagnostic message, trimmed.
	Diagnostic string
}

func (e *PolicyError) Error() string {
	return "the domain's password policy refused the password: " + e.Reason
}

// AccountState is whether an account exists and may sign in.
type AccountState string

// The states Lookup reports.
const (
	AccountEnabled  AccountState = "enabled"
	AccountDisabled AccountState = "disabled"
	AccountMissing  AccountState = "missing"
)

// AccountStatus is what Lookup found.
type AccountStatus struct {
	State AccountState
	// DN, ObjectGUID, Username (sAMAccountName) and DisplayName are the
	// account's current values (empty when missing).
	DN, ObjectGUID, Username, DisplayName string
	// UserAccountControl is the flags word.
	UserAccountControl uint32
	// PasswordLastSet is pwdLastSet as a time; zero when pwdLastSet is 0
	// (the user must change the password at next logon) or absent.
	PasswordLastSet time.Time
	// MustChangePassword is true when pwdLastSet is 0.
	MustChangePassword bool
}

// passwordAttrs are read for a password target.
var passwordAttrs = []string{"objectClass", "objectGUID", "sAMAccountName", "displayName", "userAccountControl", "pwdLastSet"}

// refusePlaintext reports ErrPlaintext for a Source that would talk in
// clear: ldap:// without start_tls, however allow_plaintext is set.
func (s *Source) refusePlaintext(op string) error {
	if s.tlsCfg == nil {
		return s.errorf(fmt.Errorf("%w: %s is ldap:// without start_tls (allow_plaintext is for reads in labs); use ldaps:// or set start_tls", ErrPlaintext, s.url.Redacted()), "%s", op)
	}
	return nil
}

// checkTLS makes sure a connection really is encrypted before a password
// goes over it.
func checkTLS(conn *ldap.Conn) error {
	if _, ok := conn.TLSConnectionState(); !ok {
		return fmt.Errorf("%w: the connection is not encrypted", ErrPlaintext)
	}
	return nil
}

// Lookup reports whether the account exists and is enabled, with its
// current DN, names and pwdLastSet. A missing account is State
// AccountMissing, not an error.
func (s *Source) Lookup(ctx context.Context, target PasswordTarget) (AccountStatus, error) {
	op := "look up " + target.label()
	ss, err := s.openReusing(ctx)
	if err != nil {
		return AccountStatus{}, err
	}
	defer ss.close()
	e, err := ss.passwordEntry(ctx, target)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return AccountStatus{}, s.errorf(err, "%s", op)
	}
	ss.release() // answered, found or not
	if err != nil {
		return AccountStatus{State: AccountMissing}, nil
	}
	st, err := statusOf(e)
	if err != nil {
		return AccountStatus{}, s.errorf(err, "%s", op)
	}
	return st, nil
}

// PasswordLastSet returns the account's pwdLastSet: when its password was
// last set, or the zero time when pwdLastSet is 0 (must change at next
// logon). A missing account is ErrNotFound.
func (s *Source) PasswordLastSet(ctx context.Context, target PasswordTarget) (time.Time, error) {
	st, err := s.Lookup(ctx, target)
	if err != nil {
		return time.Time{}, err
	}
	if st.State == AccountMissing {
		return time.Time{}, s.errorf(ErrNotFound, "read pwdLastSet of %s", target.label())
	}
	return st.PasswordLastSet, nil
}

// SetPassword replaces the account's password (an administrator's reset:
// the old password is not needed). The password is sent only over LDAPS or
// StartTLS; a Source configured for plaintext gets ErrPlaintext before
// anything is sent. The errors say whether the directory changed anything:
// *PolicyError, ErrResetDenied, ErrNotFound and ErrPlaintext mean it did
// not; ErrOutcomeUnknown means it may have. The password never appears in an
// error or a log.
func (s *Source) SetPassword(ctx context.Context, target PasswordTarget, newPassword string) error {
	op := "set password of " + target.label()
	if err := s.refusePlaintext(op); err != nil {
		return err
	}
	if newPassword == "" {
		return s.errorf(errors.New("the new password is empty"), "%s", op)
	}
	if !utf8.ValidString(newPassword) {
		return s.errorf(errors.New("the new password is not valid UTF-8"), "%s", op)
	}
	value, err := encodeUnicodePwd(newPassword)
	if err != nil {
		return s.errorf(errors.New("the new password cannot be encoded as UTF-16"), "%s", op)
	}
	ss, err := s.openReusing(ctx)
	if err != nil {
		return err
	}
	defer ss.close()
	if err := checkTLS(ss.conn); err != nil {
		return s.errorf(err, "%s", op)
	}
	e, err := ss.passwordEntry(ctx, target)
	if err != nil {
		return s.errorf(err, "%s", op)
	}
	op = "set password of " + resolvedLabel(target, e)
	if err := personAccount(e); err != nil {
		return s.errorf(err, "%s", op)
	}
	if err := fence.Check(ctx); err != nil {
		return s.errorf(err, "%s", op)
	}
	req := ldap.NewModifyRequest(e.DN, nil)
	req.Replace("unicodePwd", []string{value})
	conn := ss.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = conn.Modify(req)
	ss.stopped(stop)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
		}
		return s.errorf(explainModify(err, s.cfg.BindDN), "%s", op)
	}
	ss.release()
	return nil
}

// CheckPassword reports whether password is the account's current
// password: it binds as the account on a connection of its own and proves
// the bind with a base search of the rootDSE. A wrong password is (false,
// nil). AD reports some account restrictions (disabled, expired, must
// change, logon hours or workstations) only after the password matched:
// those are (true, nil). A locked-out account is ErrLockedOut.
//
// Each wrong password counts as a failed logon toward the domain's lockout
// threshold, like any other.
func (s *Source) CheckPassword(ctx context.Context, target PasswordTarget, password string) (bool, error) {
	op := "check password of " + target.label()
	if err := s.refusePlaintext(op); err != nil {
		return false, err
	}
	if password == "" {
		// An empty password would be an anonymous bind, which succeeds.
		return false, s.errorf(errors.New("the password to check is empty"), "%s", op)
	}
	ss, err := s.openReusing(ctx)
	if err != nil {
		return false, err
	}
	e, err := ss.passwordEntry(ctx, target)
	if err != nil {
		ss.close()
		return false, s.errorf(err, "%s", op)
	}
	ss.release()
	op = "check password of " + resolvedLabel(target, e)
	var verdict error
	conn, err := s.dialAs(ctx, e.DN, password, func(err error) error {
		verdict = bindVerdict(err)
		return verdict
	})
	switch {
	case errors.Is(verdict, errWrongPassword):
		return false, nil
	case errors.Is(verdict, errRightPassword):
		return true, nil
	case verdict != nil:
		return false, s.errorf(verdict, "%s", op)
	case err != nil:
		return false, err
	}
	defer conn.Close()
	if err := checkTLS(conn); err != nil {
		return false, s.errorf(err, "%s", op)
	}
	if err := proveBind(ctx, conn); err != nil {
		return false, s.errorf(err, "%s", op)
	}
	return true, nil
}

// encodeUnicodePwd is the unicodePwd value: the password in double
// quotes, UTF-16LE.
func encodeUnicodePwd(pw string) (string, error) {
	return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(`"` + pw + `"`)
}

// passwordEntry finds the target with a base search: by objectGUID (the
// <GUID=...> form of a DN, which both AD and Samba accept), else by DN.
func (ss *session) passwordEntry(ctx context.Context, t PasswordTarget) (*ldap.Entry, error) {
	base, guid := t.DN, ""
	if t.ObjectGUID != "" {
		raw, err := GUIDBytes(t.ObjectGUID)
		if err != nil {
			return nil, err
		}
		guid, _ = GUIDString(raw)
		base = "<GUID=" + guid + ">"
	}
	if base == "" {
		return nil, errors.New("the target has neither an objectGUID nor a DN")
	}
	req := ldap.NewSearchRequest(base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(ss.src.cfg.SearchTimeout/time.Second), false,
		"(objectClass=*)", passwordAttrs, nil)
	res, err := ss.baseSearch(ctx, req)
	if ss.reused && ss.reconnectAfter(ctx, err) {
		// A connection kept idle that the DC closed meanwhile: a
		// search changes nothing, so it is asked again on a new one.
		res, err = ss.baseSearch(ctx, req)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("read the account: %w", explainSearch(err))
	}
	if len(res.Entries) == 0 {
		return nil, fmt.Errorf("%w (or not readable by %q)", ErrNotFound, ss.src.cfg.BindDN)
	}
	e := res.Entries[0]
	if guid != "" {
		// A server that ignored the <GUID=...> form would have answered
		// something else.
		if got, err := GUIDString(e.GetRawAttributeValue("objectGUID")); err != nil || got != guid {
			return nil, fmt.Errorf("the DC answered the search for objectGUID %s with %q, whose objectGUID differs", t.ObjectGUID, e.DN)
		}
	}
	return e, nil
}

// baseSearch runs req on the session's connection, which ctx ending
// closes.
func (ss *session) baseSearch(ctx context.Context, req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	conn := ss.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer ss.stopped(stop)
	return conn.Search(req)
}

// resolvedLabel names a found account: "dave" (CN=Dave Dunn,...).
func resolvedLabel(t PasswordTarget, e *ldap.Entry) string {
	name := e.GetAttributeValue("sAMAccountName")
	if name == "" {
		name = t.Username
	}
	if name == "" {
		return e.DN
	}
	return strconv.Quote(name) + " (" + e.DN + ")"
}

// personAccount refuses objects whose password autoimport must never set:
// anything but a user, and computer accounts (a new password would break
// the machine's trust).
func personAccount(e *ldap.Entry) error {
	classes := e.GetAttributeValues("objectClass")
	if !hasValueFold(classes, "user") {
		return fmt.Errorf("not a user account (objectClass %s)", strings.Join(classes, ", "))
	}
	if hasValueFold(classes, "computer") {
		return errors.New("a computer or managed service account: its password is the machine's")
	}
	return nil
}

func statusOf(e *ldap.Entry) (AccountStatus, error) {
	st := AccountStatus{DN: e.DN, Username: e.GetAttributeValue("sAMAccountName"), DisplayName: e.GetAttributeValue("displayName")}
	if err := personAccount(e); err != nil {
		return AccountStatus{}, err
	}
	st.ObjectGUID, _ = GUIDString(e.GetRawAttributeValue("objectGUID"))
	uac, err := parseUAC(e.GetAttributeValue("userAccountControl"))
	if err != nil {
		return AccountStatus{}, fmt.Errorf("userAccountControl %q is not an integer", e.GetAttributeValue("userAccountControl"))
	}
	st.UserAccountControl = uac
	st.State = AccountEnabled
	if uac&uacDisabled != 0 {
		st.State = AccountDisabled
	}
	if v := e.GetAttributeValue("pwdLastSet"); v != "" {
		ft, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ft < 0 {
			return AccountStatus{}, fmt.Errorf("pwdLastSet %q is not a FILETIME", v)
		}
		st.MustChangePassword = ft == 0
		st.PasswordLastSet = FiletimeToTime(ft)
	}
	return st, nil
}

// passwordPolicyCode is the Win32 error (ERROR_PASSWORD_RESTRICTION) AD
// and Samba put in the diagnostic of a password the policy refuses.
const passwordPolicyCode = "0000052D"

// samba's explanation follows this marker.
var sambaReason = regexp.MustCompile(`check_password_restrictions:\s*(.+)`)

// explainModify classifies a failed unicodePwd replace.
func explainModify(err error, bindDN string) error {
	if errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	diag := ""
	if le.Err != nil {
		diag = tidyDiagnostic(le.Err.Error())
	}
	switch {
	case le.ResultCode == ldap.ErrorNetwork || isTimeout(err) || isDropped(err):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, tidyError{err})
	case (le.ResultCode == ldap.LDAPResultConstraintViolation || le.ResultCode == ldap.LDAPResultUnwillingToPerform) &&
		strings.Contains(strings.ToUpper(diag), passwordPolicyCode):
		return &PolicyError{ResultCode: le.ResultCode, Reason: policyReason(diag), Diagnostic: diag}
	case le.ResultCode == ldap.LDAPResultInsufficientAccessRights:
		return fmt.Errorf("%w: LDAP result 50 insufficient access rights for %q: delegate Reset Password on the account's OU; "+
			"members of protected groups (adminCount 1: Domain Admins, Administrators, ...) take their permissions from "+
			"CN=AdminSDHolder,CN=System instead, so grant it there (or bind as a Domain Admin): %w", ErrResetDenied, bindDN, tidyError{err})
	case le.ResultCode == ldap.LDAPResultNoSuchObject:
		return fmt.Errorf("%w: LDAP result 32: %w", ErrNotFound, tidyError{err})
	case le.ResultCode == ldap.LDAPResultUnwillingToPerform:
		return fmt.Errorf("LDAP result 53 unwilling to perform: the DC will not set this password: it needs an encrypted connection "+
			"(LDAPS or StartTLS with a 128-bit cipher) and the value in quotes, UTF-16LE; \"User cannot change password\" does not apply "+
			"to a reset: %w", tidyError{err})
	}
	return tidyError{err}
}

// tidyDiagnostic drops the NUL byte and collapses the line breaks and tabs
// of AD's diagnostic messages.
func tidyDiagnostic(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	return strings.Join(strings.Fields(s), " ")
}

// policyReason is the directory's reason for refusing a password. Samba
// says it in words after "check_password_restrictions:"; Windows DCs name
// only the problem code, so the reason lists what the policy checks.
func policyReason(diag string) string {
	if m := sambaReason.FindStringSubmatch(diag); m != nil {
		return strings.TrimRight(strings.TrimSpace(m[1]), "!. ")
	}
	return "the password does not meet the domain's length, complexity or history requirements, or the minimum password age has not passed (" +
		passwordPolicyCode + ")"
}

// Bind verdicts of CheckPassword.
var (
	errWrongPassword = errors.New("wrong password")
	errRightPassword = errors.New("password matches; the account is restricted")
)

// matchedSubcodes are AD's invalidCredentials sub-codes that it reports
// only after the password matched.
var matchedSubcodes = map[string]bool{"530": true, "531": true, "532": true, "533": true, "701": true, "773": true}

// bindVerdict reads a refused bind of CheckPassword.
func bindVerdict(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials {
		return explainBind(err)
	}
	code := ""
	if m := adDataCode.FindStringSubmatch(le.Err.Error()); m != nil {
		code = strings.ToLower(m[1])
	}
	switch {
	case code == "" || code == "52e":
		return errWrongPassword
	case matchedSubcodes[code]:
		return errRightPassword
	case code == "525":
		return fmt.Errorf("%w: bind: data 525: %w", ErrNotFound, tidyError{err})
	case code == "775":
		return fmt.Errorf("%w: %w", ErrLockedOut, tidyError{err})
	}
	return fmt.Errorf("bind as the account: %w", explainBind(err))
}

// authenticatedUsers is the SID every authenticated (not anonymous) token
// holds.
const authenticatedUsers = "S-1-5-11"

// proveBind reads the rootDSE on a freshly bound connection. Samba has no
// WhoAmI operation, so this is the proof that the bind holds; when the DC
// returns the connection's tokenGroups, they must include Authenticated
// Users (an anonymous session does not).
func proveBind(ctx context.Context, conn *ldap.Conn) error {
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"tokenGroups"}, nil)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	res, err := conn.Search(req)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read the rootDSE after binding as the account: %w", tidyError{err})
	}
	if len(res.Entries) == 0 {
		return errors.New("the rootDSE is empty after binding as the account")
	}
	groups := res.Entries[0].GetRawAttributeValues("tokenGroups")
	if len(groups) == 0 {
		return nil // the DC does not show tokenGroups; the bind stands
	}
	for _, g := range groups {
		if sid, err := ParseSIDBytes(g); err == nil && sid.String() == authenticatedUsers {
			return nil
		}
	}
	return errors.New("the bind as the account gave an unauthenticated session (no Authenticated Users in the rootDSE's tokenGroups)")
}

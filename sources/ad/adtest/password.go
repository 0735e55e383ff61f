package adtest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"

	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/sources/ad"
)

// Password changes, as a domain controller answers them.
//
// The fake takes an administrator's reset, a modify that replaces
// unicodePwd with the password in double quotes, UTF-16LE, from the bind
// account of Options (which holds the "Reset Password" right) and only over
// TLS: LDAPS, or a connection upgraded with StartTLS. Over plain LDAP it
// answers 53 unwillingToPerform 0000001F as Windows does (Samba with the
// test setting would accept it). The domain's policy (minimum length 7 and
// the complexity rule of internal/password by default) refuses a weak
// password with 19 constraintViolation 0000052D and Samba's text. A change
// sets pwdLastSet; from then on the user binds with the new password, not
// the old one. FailPasswordChanges injects a refusal for want of rights or
// a crash between the change and its answer.

// PasswordPolicy is the domain's password policy as the fake enforces it.
type PasswordPolicy struct {
	// MinLength is the minimum number of characters (0: none).
	MinLength int
	// Complexity turns on AD's complexity rule.
	Complexity bool
}

// DefaultPasswordPolicy is the policy of a new Windows domain (and of a
// Samba domain provisioned with defaults).
var DefaultPasswordPolicy = PasswordPolicy{MinLength: 7, Complexity: true}

// passwordState is the password side of a Directory, guarded by its mu.
type passwordState struct {
	byEntry map[*Entry]string
	policy  *PasswordPolicy
	now     func() time.Time
}

func (d *Directory) clock() time.Time {
	if d.pw.now != nil {
		return d.pw.now()
	}
	return time.Now()
}

func (d *Directory) policy() PasswordPolicy {
	if d.pw.policy != nil {
		return *d.pw.policy
	}
	return DefaultPasswordPolicy
}

// SetPasswordPolicy replaces the domain's password policy.
func (d *Directory) SetPasswordPolicy(p PasswordPolicy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pw.policy = &p
}

// SetClock makes the directory read the time from now (pwdLastSet and
// whenChanged of password changes); nil restores the real clock.
func (d *Directory) SetClock(now func() time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pw.now = now
}

// SetUserPassword gives a user a password without the policy check, as
// seeding a directory does, and sets pwdLastSet to now.
func (d *Directory) SetUserPassword(dn, pw string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok {
		return fmt.Errorf("adtest: no entry %q", dn)
	}
	d.setPassword(e, pw)
	return nil
}

// Password returns a user's current password, for tests that check what a
// client set; false when the user has none.
func (d *Directory) Password(dn string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.byDN[strings.ToLower(dn)]
	if !ok {
		return "", false
	}
	pw, ok := d.pw.byEntry[e]
	return pw, ok
}

// setPassword stores pw and updates pwdLastSet, uSNChanged and
// whenChanged. Caller holds d.mu.
func (d *Directory) setPassword(e *Entry, pw string) {
	if d.pw.byEntry == nil {
		d.pw.byEntry = map[*Entry]string{}
	}
	d.pw.byEntry[e] = pw
	now := d.clock().UTC()
	e.set("pwdLastSet", strconv.FormatInt(ad.TimeToFiletime(now), 10))
	d.stamp(e, "pwdLastSet", "unicodePwd")
	e.set("whenChanged", now.Format("20060102150405.0Z"))
}

// userBind checks a bind as a user of the directory, named by DN, UPN,
// sAMAccountName or NETBIOS\sAMAccountName. It returns the user's DN, or ""
// and AD's diagnostic.
func (d *Directory) userBind(name, pw string) (string, string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.findAccount(name)
	if e == nil {
		return "", bindDiagnostic("525")
	}
	want, ok := d.pw.byEntry[e]
	if !ok || want != pw {
		return "", badCredentials
	}
	if uac, _ := strconv.Atoi(e.First("userAccountControl")); uac&2 != 0 {
		// AD says "disabled" only to the right password.
		return "", bindDiagnostic("533")
	}
	return e.DN, ""
}

func bindDiagnostic(code string) string {
	return "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " + code + ", v4563\x00"
}

// findAccount finds a user by DN, UPN, sAMAccountName or
// NETBIOS\sAMAccountName. Caller holds d.mu.
func (d *Directory) findAccount(name string) *Entry {
	if e, ok := d.byDN[strings.ToLower(name)]; ok && !e.deleted {
		return e
	}
	sam := ""
	if dom, rest, ok := strings.Cut(name, `\`); ok && strings.EqualFold(dom, d.NetBIOS) {
		sam = rest
	}
	for _, e := range d.entries {
		if e.deleted {
			continue
		}
		switch {
		case sam != "" && strings.EqualFold(e.First("sAMAccountName"), sam),
			sam == "" && strings.Contains(name, "@") && strings.EqualFold(e.First("userPrincipalName"), name),
			sam == "" && !strings.ContainsAny(name, "@=") && strings.EqualFold(e.First("sAMAccountName"), name):
			return e
		}
	}
	return nil
}

// resolveBase turns a search base into the lower-cased DN of its entry:
// plain DNs as they are, and AD's <GUID=xxxxxxxx-xxxx-...> form by the
// entry's objectGUID ("" when none has it). Caller holds d.mu.
func (d *Directory) resolveBase(base string) string {
	inner, ok := strings.CutPrefix(base, "<")
	if !ok {
		return strings.ToLower(base)
	}
	inner, _ = strings.CutSuffix(inner, ">")
	kind, val, _ := strings.Cut(inner, "=")
	if !strings.EqualFold(kind, "GUID") {
		return ""
	}
	raw, err := ad.GUIDBytes(val)
	if err != nil {
		return ""
	}
	// Readers share d.mu, so the index has a lock of its own.
	d.guidMu.Lock()
	defer d.guidMu.Unlock()
	if d.guids == nil {
		d.guids = make(map[string]string, len(d.entries))
	}
	for _, e := range d.entries[d.guided:] {
		if g := e.First("objectGUID"); g != "" {
			d.guids[g] = e.key
		}
	}
	d.guided = len(d.entries)
	return d.guids[string(raw)]
}

// PasswordFault is an injected outcome of a password change.
type PasswordFault int

// The faults FailPasswordChanges injects.
const (
	// DenyReset answers 50 insufficientAccessRights, as a DC does when the
	// bind account lacks the Reset Password right on the account.
	DenyReset PasswordFault = iota + 1
	// DropAfterApply changes the password, then cuts every open
	// connection before answering: a crash between the directory call and
	// its answer.
	DropAfterApply
	// DropBeforeApply cuts every open connection without changing the
	// password: a request lost on its way, the DC never received it.
	DropBeforeApply
)

// FailPasswordChanges makes the next len(faults) password changes that
// reach the rights check (bound, over TLS, to an existing account) end in
// these faults, in order.
func (s *Server) FailPasswordChanges(faults ...PasswordFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pwFaults = append(s.pwFaults, faults...)
}

func (s *Server) setWho(id int, dn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dn == "" {
		delete(s.who, id)
		return
	}
	s.who[id] = dn
}

// AD's diagnostics for refused password changes.
const (
	diagWillNotPerform = "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0\n\x00"
	diagNoAccess       = "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFFICIENT_ACCESS_RIGHTS), data 0\n\x00"
	diagNotBound       = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563\x00"
	diagComplexity     = "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!"
)

func diagTooShort(min int) string {
	return fmt.Sprintf("0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than %d characters!", min)
}

func (s *Server) handleModify(w *gldap.ResponseWriter, r *gldap.Request) {
	s.modifies.Add(1)
	resp := r.NewModifyResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	answer := func(code int, diag string) {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
		_ = w.Write(resp)
	}
	m, err := r.GetModifyMessage()
	if err != nil {
		answer(gldap.ResultProtocolError, err.Error())
		return
	}
	id := r.ConnectionID()
	s.mu.Lock()
	who := s.who[id]
	secure := s.opts.LDAPS || s.secure[id]
	s.mu.Unlock()
	if who == "" {
		answer(gldap.ResultOperationsError, diagNotBound)
		return
	}
	var vals []string
	if len(m.Changes) == 1 {
		vals = modificationValues(m.Changes[0].Modification.Vals)
	}
	if len(m.Changes) != 1 || !strings.EqualFold(m.Changes[0].Modification.Type, "unicodePwd") ||
		m.Changes[0].Operation != gldap.ReplaceAttribute || len(vals) != 1 {
		answer(gldap.ResultUnwillingToPerform, "adtest: the only modify supported is an administrator's password reset (one replace of unicodePwd)")
		return
	}
	d := s.dir
	d.mu.RLock()
	key := d.resolveBase(m.DN)
	e := d.byDN[key]
	d.mu.RUnlock()
	if e == nil {
		answer(gldap.ResultNoSuchObject, "0000208D: NameErr: DSID-03100288, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'"+d.BaseDN+"'\n\x00")
		return
	}
	if !secure {
		s.pwRefusals.Add(1)
		answer(gldap.ResultUnwillingToPerform, diagWillNotPerform)
		return
	}
	s.mu.Lock()
	var fault PasswordFault
	if len(s.pwFaults) > 0 {
		fault, s.pwFaults = s.pwFaults[0], s.pwFaults[1:]
	}
	s.mu.Unlock()
	if fault == DenyReset || !strings.EqualFold(who, s.opts.BindDN) {
		// Only the bind account of Options holds the Reset Password right;
		// a user resetting (rather than changing) a password is refused.
		s.pwRefusals.Add(1)
		answer(gldap.ResultInsufficientAccessRights, diagNoAccess)
		return
	}
	if fault == DropBeforeApply {
		s.DropConnections()
		return
	}
	pw, ok := decodeUnicodePwd(vals[0])
	if !ok {
		s.pwRefusals.Add(1)
		answer(gldap.ResultUnwillingToPerform, diagWillNotPerform)
		return
	}
	d.mu.Lock()
	pol := d.policy()
	var refusal string
	switch {
	case utf8.RuneCountInString(pw) < pol.MinLength:
		refusal = diagTooShort(pol.MinLength)
	case pol.Complexity && password.CheckADComplexity(pw, e.First("sAMAccountName"), e.First("displayName")) != nil:
		refusal = diagComplexity
	default:
		d.setPassword(e, pw)
	}
	d.mu.Unlock()
	if refusal != "" {
		s.pwRefusals.Add(1)
		answer(gldap.ResultConstraintViolation, refusal)
		return
	}
	s.pwChanges.Add(1)
	if fault == DropAfterApply {
		s.DropConnections()
		return
	}
	_ = w.Write(resp)
}

// modificationValues returns the values of a modification. gldap (up to
// v0.1.14 at least) hands over the BER encoding of the whole SET of values
// as one value; that is decoded here, and values given as they are pass
// through.
func modificationValues(vals []string) []string {
	if len(vals) != 1 || len(vals[0]) == 0 || vals[0][0] != byte(ber.TagOctetString) {
		return vals
	}
	r := bytes.NewReader([]byte(vals[0]))
	var out []string
	for r.Len() > 0 {
		p, err := ber.ReadPacket(r)
		if err != nil || p.ClassType != ber.ClassUniversal || p.TagType != ber.TypePrimitive || p.Tag != ber.TagOctetString {
			return vals
		}
		out = append(out, string(p.ByteValue))
	}
	return out
}

// decodeUnicodePwd reads a unicodePwd value: UTF-16LE of the password in
// double quotes.
func decodeUnicodePwd(v string) (string, bool) {
	if len(v)%2 != 0 || len(v) < 4 {
		return "", false
	}
	u := make([]uint16, len(v)/2)
	for i := range u {
		u[i] = uint16(v[2*i]) | uint16(v[2*i+1])<<8
	}
	if u[0] != '"' || u[len(u)-1] != '"' {
		return "", false
	}
	runes := utf16.Decode(u[1 : len(u)-1])
	for _, r := range runes {
		if r == utf8.RuneError {
			return "", false
		}
	}
	return string(runes), true
}

// Well-known SIDs of a session's token.
var (
	sidEveryone      = ad.SID{Revision: 1, Authority: 1, Sub: []uint32{0}}
	sidNetwork       = ad.SID{Revision: 1, Authority: 5, Sub: []uint32{2}}
	sidAnonymous     = ad.SID{Revision: 1, Authority: 5, Sub: []uint32{7}}
	sidAuthenticated = ad.SID{Revision: 1, Authority: 5, Sub: []uint32{11}}
)

// tokenGroups are the SIDs of the connection's security context, as the
// rootDSE shows them: for a bound user its own SID and Domain Users, then
// Everyone, Network and Authenticated Users; for an anonymous session
// Everyone, Network and Anonymous.
func (s *Server) tokenGroups(id int) []string {
	s.mu.Lock()
	who := s.who[id]
	s.mu.Unlock()
	if who == "" {
		return []string{string(sidEveryone.Bytes()), string(sidNetwork.Bytes()), string(sidAnonymous.Bytes())}
	}
	var out []string
	s.dir.mu.RLock()
	if e, ok := s.dir.byDN[strings.ToLower(who)]; ok && e.First("objectSid") != "" {
		out = append(out, e.First("objectSid"))
	}
	out = append(out, string(s.dir.SID.WithRID(513).Bytes()))
	s.dir.mu.RUnlock()
	return append(out, string(sidEveryone.Bytes()), string(sidNetwork.Bytes()), string(sidAuthenticated.Bytes()))
}

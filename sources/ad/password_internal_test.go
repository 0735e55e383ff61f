package ad

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestExplainModify(t *testing.T) {
	windowsPolicy := "0000052D: AtrErr: DSID-03190F80, #1:\n\t0: 0000052D: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n\x00"
	cases := []struct {
		name   string
		err    error
		is     error  // errors.Is target, if any
		policy string // PolicyError.Reason, if a PolicyError
		text   string // substring of the message
	}{
		{"samba complexity", ldap.NewError(19, errors.New("0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!")),
			nil, "the password does not meet the complexity criteria", ""},
		{"samba length", ldap.NewError(19, errors.New("0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!")),
			nil, "the password is too short. It should be equal or longer than 7 characters", ""},
		{"samba history", ldap.NewError(19, errors.New("0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!")),
			nil, "the password was already used (in history)", ""},
		{"windows policy", ldap.NewError(19, errors.New(windowsPolicy)),
			nil, "the password does not meet the domain's length, complexity or history requirements, or the minimum password age has not passed (0000052D)", ""},
		{"policy as 53", ldap.NewError(53, errors.New("0000052D: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0\n\x00")),
			nil, "the password does not meet the domain's length, complexity or history requirements, or the minimum password age has not passed (0000052D)", ""},
		{"no TLS", ldap.NewError(53, errors.New("0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0\n\x00")),
			nil, "", "needs an encrypted connection"},
		{"NT hash", ldap.NewError(53, errors.New("00002035: setup_io: it's not allowed to set the NT hash password directly'")),
			nil, "", "UTF-16LE"},
		{"rights", ldap.NewError(50, errors.New("00002098: SecErr: DSID-03150F94, problem 4003 (INSUFFICIENT_ACCESS_RIGHTS), data 0\n\x00")),
			ErrResetDenied, "", "AdminSDHolder"},
		{"no such object", ldap.NewError(32, errors.New("0000208D: NameErr: DSID-03100288, problem 2001 (NO_OBJECT)")),
			ErrNotFound, "", ""},
		{"dropped", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed")), ErrOutcomeUnknown, "", ""},
		{"reader EOF", errors.New("unable to read LDAP response packet: EOF"), ErrOutcomeUnknown, "", ""},
		{"timeout", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection timed out")), ErrOutcomeUnknown, "", ""},
		{"busy", ldap.NewError(51, errors.New("busy")), nil, "", "Busy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := explainModify(c.err, "CN=svc,DC=x")
			var pe *PolicyError
			isPolicy := errors.As(got, &pe)
			if (c.policy != "") != isPolicy {
				t.Fatalf("%v: PolicyError %v, want %v", got, isPolicy, c.policy != "")
			}
			if isPolicy && pe.Reason != c.policy {
				t.Errorf("Reason %q, want %q", pe.Reason, c.policy)
			}
			if isPolicy && strings.ContainsAny(pe.Diagnostic, "\x00\n\t") {
				t.Errorf("Diagnostic not tidied: %q", pe.Diagnostic)
			}
			if c.is != nil && !errors.Is(got, c.is) {
				t.Errorf("%v is not %v", got, c.is)
			}
			if c.is != ErrOutcomeUnknown && errors.Is(got, ErrOutcomeUnknown) {
				t.Errorf("%v claims an unknown outcome", got)
			}
			if !strings.Contains(got.Error(), c.text) || strings.Contains(got.Error(), "\x00") {
				t.Errorf("message %q lacks %q or holds a NUL", got, c.text)
			}
		})
	}
}

func TestBindVerdict(t *testing.T) {
	diag := func(code string) error {
		return ldap.NewError(49, errors.New("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data "+code+", v4563\x00"))
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"wrong password", diag("52e"), errWrongPassword},
		{"no sub-code", ldap.NewError(49, errors.New("invalid credentials")), errWrongPassword},
		{"disabled", diag("533"), errRightPassword},
		{"expired", diag("532"), errRightPassword},
		{"must reset", diag("773"), errRightPassword},
		{"logon hours", diag("530"), errRightPassword},
		{"workstation", diag("531"), errRightPassword},
		{"account expired", diag("701"), errRightPassword},
		{"no such user", diag("525"), ErrNotFound},
		{"locked out", diag("775"), ErrLockedOut},
	}
	for _, c := range cases {
		if got := bindVerdict(c.err); !errors.Is(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := bindVerdict(ldap.NewError(8, errors.New("strong auth"))); errors.Is(got, errWrongPassword) || errors.Is(got, errRightPassword) {
		t.Errorf("result 8 read as a verdict: %v", got)
	}
}

func TestBindForm(t *testing.T) {
	cases := []struct{ name, form, first, second string }{
		{"CN=svc,OU=Service,DC=corp,DC=example", bindByDN, "CN=svc,OU=Service,DC=corp,DC=example", ""},
		{`cn=Smith\, John,dc=corp`, bindByDN, `cn=Smith\, John,dc=corp`, ""},
		{"svc@corp.example", bindByUPN, "svc", "corp.example"},
		{"odd@name@corp.example", bindByUPN, "odd@name", "corp.example"},
		{`CORP\svc`, bindByDownLevel, "CORP", "svc"},
		{` svc `, bindByName, "svc", ""},
	}
	for _, c := range cases {
		form, first, second := bindForm(c.name)
		if form != c.form || first != c.first || second != c.second {
			t.Errorf("bindForm(%q) = %q %q %q, want %q %q %q", c.name, form, first, second, c.form, c.first, c.second)
		}
	}
	for dn, want := range map[string]string{"DC=corp,DC=example,DC=test": "corp.example.test", "dc=Corp": "Corp", "OU=x,DC=corp": "", "": "", "not a dn": ""} {
		if got := dnsNameOf(dn); got != want {
			t.Errorf("dnsNameOf(%q) = %q, want %q", dn, got, want)
		}
	}
}

// Of the accounts a UPN search finds, the one with that UPN wins; the
// implicit UPN (sAMAccountName@<domain>) counts only with the domain's
// own suffix.
func TestPickByUPN(t *testing.T) {
	byUPN := BindIdentity{ObjectGUID: "1", Username: "svc-auto", UPN: "automation@alt.example"}
	bySAM := BindIdentity{ObjectGUID: "2", Username: "automation"}
	cases := []struct {
		found       []BindIdentity
		upn, suffix string
		want        string // ObjectGUID, "" for none
	}{
		{[]BindIdentity{bySAM, byUPN}, "automation@alt.example", "alt.example", "1"},
		{[]BindIdentity{bySAM}, "automation@corp.example", "corp.example", "2"},
		{[]BindIdentity{bySAM}, "automation@elsewhere.example", "elsewhere.example", ""},
	}
	for _, c := range cases {
		got := pickByUPN(c.found, c.upn, c.suffix, "corp.example")
		switch {
		case c.want == "" && len(got) != 0, c.want != "" && (len(got) != 1 || got[0].ObjectGUID != c.want):
			t.Errorf("pickByUPN(%q) = %+v, want %q", c.upn, got, c.want)
		}
	}
}

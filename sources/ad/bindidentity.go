package ad

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// BindIdentity is the directory account a Source binds as: the account
// BindDN names, found in the directory whatever form BindDN takes.
// Rotation must never change this account's password: autoimport would
// lock itself out of the directory.
type BindIdentity struct {
	// ObjectGUID is the account's objectGUID in canonical text form, as
	// Account.ID holds it.
	ObjectGUID string
	DN         string
	// Username is the sAMAccountName; UPN the userPrincipalName, empty
	// when the account has none (it then binds by its implicit UPN,
	// sAMAccountName@<DNS domain>).
	Username, UPN string
}

// bindIdentityAttrs are read from the bind account.
var bindIdentityAttrs = []string{"objectGUID", "sAMAccountName", "userPrincipalName"}

// The forms a bind name takes.
const (
	bindByDN        = "DN"
	bindByUPN       = "UPN"
	bindByDownLevel = `DOMAIN\name`
	bindByName      = "sAMAccountName"
)

// bindForm tells which of the forms AD accepts for a simple bind name
// is: a DN (CN=svc,OU=...), a UPN (svc@corp.example), a down-level logon
// name (CORP\svc) or a bare sAMAccountName. It returns the form and the
// name's parts: for a UPN the part before and after the last @, for a
// down-level name the domain and the account name.
func bindForm(name string) (form, first, second string) {
	name = strings.TrimSpace(name)
	switch {
	case strings.Contains(name, "="): // no sAMAccountName or UPN holds one
		return bindByDN, name, ""
	case strings.Contains(name, `\`):
		dom, acc, _ := strings.Cut(name, `\`)
		return bindByDownLevel, dom, acc
	case strings.Contains(name, "@"):
		at := strings.LastIndexByte(name, '@')
		return bindByUPN, name[:at], name[at+1:]
	}
	return bindByName, name, ""
}

// dnsNameOf is the DNS name of a domain naming context: DC=corp,DC=example
// is corp.example; "" when the DN has other components.
func dnsNameOf(baseDN string) string {
	dn, err := ldap.ParseDN(baseDN)
	if err != nil || len(dn.RDNs) == 0 {
		return ""
	}
	var labels []string
	for _, rdn := range dn.RDNs {
		if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "DC") {
			return ""
		}
		labels = append(labels, rdn.Attributes[0].Value)
	}
	return strings.Join(labels, ".")
}

// BindIdentity finds the account the Source binds as, with one search
// chosen by the form of BindDN: a base search of a DN, or under the base
// DN by userPrincipalName (or, for an implicit UPN, by the sAMAccountName
// before the @ when the suffix is the domain's DNS name) or by
// sAMAccountName for CORP\name and a bare name. An account the search
// does not find (one of another domain, outside the base DN) is
// ErrNotFound.
func (s *Source) BindIdentity(ctx context.Context) (BindIdentity, error) {
	form, first, second := bindForm(s.cfg.BindDN)
	op := fmt.Sprintf("find the bind account %q (a %s)", s.cfg.BindDN, form)
	if form == bindByDownLevel && s.cfg.Domain != "" && !strings.EqualFold(first, s.cfg.Domain) {
		return BindIdentity{}, s.errorf(fmt.Errorf("%w: it is an account of domain %s, not of %s", ErrNotFound, first, s.cfg.Domain), "%s", op)
	}
	ss, err := s.open(ctx)
	if err != nil {
		return BindIdentity{}, err
	}
	defer ss.close()
	base := s.cfg.BaseDN
	if base == "" && form != bindByDN {
		root, err := ss.baseEntry(ctx, "rootDSE", "", "defaultNamingContext")
		if err != nil {
			return BindIdentity{}, err
		}
		if base = root.GetAttributeValue("defaultNamingContext"); base == "" {
			return BindIdentity{}, s.errorf(errors.New("rootDSE has no defaultNamingContext"), "%s (set base_dn)", op)
		}
	}
	spec := searchSpec{what: "the bind account", base: base, scope: ldap.ScopeWholeSubtree, attrs: bindIdentityAttrs}
	switch form {
	case bindByDN:
		spec.base, spec.scope, spec.filter = first, ldap.ScopeBaseObject, "(objectClass=user)"
	case bindByUPN:
		spec.filter = fmt.Sprintf("(&(objectClass=user)(|(userPrincipalName=%s)(sAMAccountName=%s)))", ldap.EscapeFilter(first+"@"+second), ldap.EscapeFilter(first))
	case bindByDownLevel:
		spec.filter = fmt.Sprintf("(&(objectClass=user)(sAMAccountName=%s))", ldap.EscapeFilter(second))
	default:
		spec.filter = fmt.Sprintf("(&(objectClass=user)(sAMAccountName=%s))", ldap.EscapeFilter(first))
	}
	var found []BindIdentity
	var bad error
	err = ss.search(ctx, spec, func(e *ldap.Entry) bool {
		guid, err := GUIDString(e.GetRawAttributeValue("objectGUID"))
		if err != nil {
			bad = fmt.Errorf("%s: %w", e.DN, err)
			return false
		}
		found = append(found, BindIdentity{ObjectGUID: guid, DN: e.DN, Username: e.GetAttributeValue("sAMAccountName"), UPN: e.GetAttributeValue("userPrincipalName")})
		return len(found) < 3
	})
	var le *ldap.Error
	switch {
	case form == bindByDN && errors.As(err, &le) && le.ResultCode == ldap.LDAPResultNoSuchObject:
		return BindIdentity{}, s.errorf(ErrNotFound, "%s", op)
	case err != nil:
		return BindIdentity{}, err
	case bad != nil:
		return BindIdentity{}, s.errorf(bad, "%s", op)
	}
	if form == bindByUPN {
		found = pickByUPN(found, first+"@"+second, second, dnsNameOf(base))
	}
	switch len(found) {
	case 0:
		return BindIdentity{}, s.errorf(fmt.Errorf("%w under %q", ErrNotFound, base), "%s", op)
	case 1:
		return found[0], nil
	}
	dns := make([]string, len(found))
	for i, f := range found {
		dns[i] = f.DN
	}
	return BindIdentity{}, s.errorf(fmt.Errorf("%d accounts fit: %s", len(found), strings.Join(dns, "; ")), "%s", op)
}

// pickByUPN keeps, of the accounts a UPN search found, the one the UPN
// names: the account with that userPrincipalName (unique in a forest),
// else the one whose implicit UPN it is, sAMAccountName@<DNS domain>.
func pickByUPN(found []BindIdentity, upn, suffix, domainDNS string) []BindIdentity {
	for _, f := range found {
		if strings.EqualFold(f.UPN, upn) {
			return []BindIdentity{f}
		}
	}
	if domainDNS == "" || !strings.EqualFold(suffix, domainDNS) {
		return nil
	}
	return found
}

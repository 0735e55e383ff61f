package ad

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Info describes the domain a Source reads, as discovered from the rootDSE
// and the naming context.
type Info struct {
	// BaseDN is the domain naming context searched.
	BaseDN string
	// RootDN is the forest root's naming context (equal to BaseDN in a
	// single-domain forest).
	RootDN string
	// NetBIOS is the pre-Windows 2000 domain name (CORP).
	NetBIOS string
	// SID is the domain SID (objectSid of the naming-context head).
	SID SID
	// RootSID is the forest root domain's SID, home of Enterprise and
	// Schema Admins.
	RootSID SID
	// DNSHostName is the DC that answered.
	DNSHostName string
}

// Check connects, binds and reads the domain facts: a connection test.
func (s *Source) Check(ctx context.Context) (Info, error) {
	ss, err := s.open(ctx)
	if err != nil {
		return Info{}, err
	}
	defer ss.close()
	return ss.discover(ctx)
}

// baseEntry reads one entry with base scope.
func (ss *session) baseEntry(ctx context.Context, what, dn string, attrs ...string) (*ldap.Entry, error) {
	var found *ldap.Entry
	err := ss.search(ctx, searchSpec{what: what, base: dn, scope: ldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: attrs},
		func(e *ldap.Entry) bool { found = e; return false })
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, ss.src.errorf(fmt.Errorf("not found or not readable by %q", ss.src.cfg.BindDN), "read %s %q", what, dn)
	}
	return found, nil
}

func (ss *session) discover(ctx context.Context) (Info, error) {
	cfg := ss.src.cfg
	root, err := ss.baseEntry(ctx, "rootDSE", "", "defaultNamingContext", "rootDomainNamingContext", "configurationNamingContext", "dnsHostName")
	if err != nil {
		return Info{}, err
	}
	info := Info{
		BaseDN:      cfg.BaseDN,
		RootDN:      root.GetAttributeValue("rootDomainNamingContext"),
		DNSHostName: root.GetAttributeValue("dnsHostName"),
	}
	if info.BaseDN == "" {
		info.BaseDN = root.GetAttributeValue("defaultNamingContext")
		if info.BaseDN == "" {
			return Info{}, ss.src.errorf(fmt.Errorf("rootDSE has no defaultNamingContext"), "discover base DN (set base_dn)")
		}
	}
	head, err := ss.baseEntry(ctx, "domain head", info.BaseDN, "objectSid")
	if err != nil {
		return Info{}, err
	}
	info.SID, err = ParseSIDBytes(head.GetRawAttributeValue("objectSid"))
	if err != nil {
		return Info{}, ss.src.errorf(err, "domain SID of %q (is base_dn the domain's naming context, not an OU?)", info.BaseDN)
	}
	info.RootSID = info.SID
	if info.RootDN == "" {
		info.RootDN = info.BaseDN
	}
	if !strings.EqualFold(info.RootDN, info.BaseDN) {
		rootHead, err := ss.baseEntry(ctx, "forest root domain head", info.RootDN, "objectSid")
		if err != nil {
			return Info{}, err
		}
		if info.RootSID, err = ParseSIDBytes(rootHead.GetRawAttributeValue("objectSid")); err != nil {
			return Info{}, ss.src.errorf(err, "forest root domain SID of %q", info.RootDN)
		}
	}
	info.NetBIOS = cfg.Domain
	if info.NetBIOS == "" {
		if confNC := root.GetAttributeValue("configurationNamingContext"); confNC != "" {
			filter := "(&(objectClass=crossRef)(nCName=" + ldap.EscapeFilter(info.BaseDN) + "))"
			err := ss.search(ctx, searchSpec{what: "domain crossRef", base: "CN=Partitions," + confNC, scope: ldap.ScopeSingleLevel,
				filter: filter, attrs: []string{"nETBIOSName"}}, func(e *ldap.Entry) bool {
				info.NetBIOS = e.GetAttributeValue("nETBIOSName")
				return false
			})
			if err != nil && ctx.Err() != nil {
				return Info{}, err
			}
		}
	}
	if info.NetBIOS == "" {
		info.NetBIOS = netbiosFromDN(info.BaseDN)
	}
	return info, nil
}

// netbiosFromDN derives a NetBIOS name from the first DC= component, the
// usual (but not guaranteed) convention.
func netbiosFromDN(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return ""
	}
	for _, rdn := range parsed.RDNs {
		for _, a := range rdn.Attributes {
			if strings.EqualFold(a.Type, "DC") {
				n := strings.ToUpper(a.Value)
				if len(n) > 15 {
					n = n[:15]
				}
				return n
			}
		}
	}
	return ""
}

package adtest

import (
	"fmt"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// The matching rules the fake implements.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// matcher decides whether an entry matches a filter.
type matcher func(e *Entry) bool

// binaryAttrs compare byte for byte; everything else case-insensitively.
var binaryAttrs = map[string]bool{"objectguid": true, "objectsid": true, "ms-ds-consistencyguid": true}

// compileFilter turns a filter string into a matcher over d. The caller
// holds d's read lock; in-chain closures are computed here, once per search.
func (d *Directory) compileFilter(filter string) (matcher, error) {
	p, err := ldap.CompileFilter(filter)
	if err != nil {
		return nil, err
	}
	return d.compile(p)
}

func packetString(p *ber.Packet) string {
	if p.Data == nil {
		return ""
	}
	return string(p.Data.Bytes())
}

func (d *Directory) compile(p *ber.Packet) (matcher, error) {
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		subs := make([]matcher, 0, len(p.Children))
		for _, c := range p.Children {
			m, err := d.compile(c)
			if err != nil {
				return nil, err
			}
			subs = append(subs, m)
		}
		if p.Tag == ldap.FilterAnd {
			return func(e *Entry) bool {
				for _, m := range subs {
					if !m(e) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(e *Entry) bool {
			for _, m := range subs {
				if m(e) {
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterNot:
		if len(p.Children) != 1 {
			return nil, fmt.Errorf("NOT filter with %d children", len(p.Children))
		}
		m, err := d.compile(p.Children[0])
		if err != nil {
			return nil, err
		}
		return func(e *Entry) bool { return !m(e) }, nil
	case ldap.FilterPresent:
		attr := strings.ToLower(packetString(p))
		if attr == "objectclass" {
			return func(*Entry) bool { return true }, nil
		}
		return func(e *Entry) bool { _, ok := e.attrs[attr]; return ok }, nil
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch:
		attr := strings.ToLower(packetString(p.Children[0]))
		val := packetString(p.Children[1])
		return equality(attr, val), nil
	case ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		attr := strings.ToLower(packetString(p.Children[0]))
		val := packetString(p.Children[1])
		ge := p.Tag == ldap.FilterGreaterOrEqual
		return func(e *Entry) bool {
			for _, v := range e.Get(attr) {
				c := compareOrdered(v, val)
				if (ge && c >= 0) || (!ge && c <= 0) {
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterSubstrings:
		attr := strings.ToLower(packetString(p.Children[0]))
		var initial, final string
		var anys []string
		for _, c := range p.Children[1].Children {
			v := strings.ToLower(packetString(c))
			switch c.Tag {
			case ldap.FilterSubstringsInitial:
				initial = v
			case ldap.FilterSubstringsAny:
				anys = append(anys, v)
			case ldap.FilterSubstringsFinal:
				final = v
			}
		}
		return func(e *Entry) bool {
			for _, v := range e.Get(attr) {
				if substringMatch(strings.ToLower(v), initial, anys, final) {
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterExtensibleMatch:
		var rule, attr, val string
		for _, c := range p.Children {
			switch c.Tag {
			case 1:
				rule = packetString(c)
			case 2:
				attr = strings.ToLower(packetString(c))
			case 3:
				val = packetString(c)
			}
		}
		switch rule {
		case ruleBitAnd, ruleBitOr:
			want, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return func(*Entry) bool { return false }, nil
			}
			all := rule == ruleBitAnd
			return func(e *Entry) bool {
				for _, v := range e.Get(attr) {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						continue
					}
					if (all && n&want == want) || (!all && n&want != 0) {
						return true
					}
				}
				return false
			}, nil
		case ruleInChain:
			switch attr {
			case "memberof":
				members := d.transitiveMembers(val)
				return func(e *Entry) bool { return members[e.key] }, nil
			case "member":
				groups := d.transitiveGroups(val)
				return func(e *Entry) bool { return groups[e.key] }, nil
			}
			return func(*Entry) bool { return false }, nil
		case "":
			return equality(attr, val), nil
		}
		return nil, fmt.Errorf("unsupported matching rule %s", rule)
	}
	return nil, fmt.Errorf("unsupported filter choice %d", p.Tag)
}

// equality matches attr=val: objectCategory accepts the short name as AD
// does, binary attributes compare bytes, everything else ignores case.
func equality(attr, val string) matcher {
	if binaryAttrs[attr] {
		return func(e *Entry) bool {
			for _, v := range e.Get(attr) {
				if v == val {
					return true
				}
			}
			return false
		}
	}
	if attr == "objectcategory" && !strings.Contains(val, "=") {
		return func(e *Entry) bool {
			cat := e.First(attr)
			first, _, _ := strings.Cut(cat, ",")
			_, name, _ := strings.Cut(first, "=")
			return strings.EqualFold(name, val) || strings.EqualFold(cat, val)
		}
	}
	return func(e *Entry) bool {
		for _, v := range e.Get(attr) {
			if strings.EqualFold(v, val) {
				return true
			}
		}
		return false
	}
}

func compareOrdered(a, b string) int {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func substringMatch(v, initial string, anys []string, final string) bool {
	if !strings.HasPrefix(v, initial) {
		return false
	}
	v = v[len(initial):]
	for _, a := range anys {
		i := strings.Index(v, a)
		if i < 0 {
			return false
		}
		v = v[i+len(a):]
	}
	return strings.HasSuffix(v, final)
}

// transitiveMembers returns the keys of every entry that is a member of
// the group, directly or through nested groups (never through the primary
// group, as in AD).
func (d *Directory) transitiveMembers(groupDN string) map[string]bool {
	out := map[string]bool{}
	queue := []string{strings.ToLower(groupDN)}
	seen := map[string]bool{queue[0]: true}
	for len(queue) > 0 {
		g, ok := d.byDN[queue[0]]
		queue = queue[1:]
		if !ok {
			continue
		}
		for _, m := range g.Get("member") {
			k := strings.ToLower(m)
			out[k] = true
			if !seen[k] {
				seen[k] = true
				queue = append(queue, k)
			}
		}
	}
	return out
}

// transitiveGroups returns the keys of every group holding the entry,
// directly or through nesting.
func (d *Directory) transitiveGroups(dn string) map[string]bool {
	out := map[string]bool{}
	queue := []string{strings.ToLower(dn)}
	for len(queue) > 0 {
		e, ok := d.byDN[queue[0]]
		queue = queue[1:]
		if !ok {
			continue
		}
		for _, g := range e.Get("memberOf") {
			k := strings.ToLower(g)
			if !out[k] {
				out[k] = true
				queue = append(queue, k)
			}
		}
	}
	return out
}

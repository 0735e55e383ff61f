package adtest

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/jimlambrt/gldap"
)

// Controls of AD the fake honours besides paging, and what a search
// returns under them.
const (
	controlPaging      = "1.2.840.113556.1.4.319"
	controlDirSync     = "1.2.840.113556.1.4.841"
	controlShowDeleted = "1.2.840.113556.1.4.417"
	controlExtendedDN  = "1.2.840.113556.1.4.529"
)

// supportedControls is what the rootDSE lists.
var supportedControls = []string{controlPaging, controlDirSync, controlShowDeleted, controlExtendedDN}

// view is how a search sees the directory: with Show Deleted it finds
// tombstones; with Extended DN, the entry's DN and every DN-valued
// attribute come as <GUID=hex>;<SID=hex>;dn (the hexadecimal form AD uses
// when the control has no value), the GUID being the object's identity.
type view struct {
	showDeleted, extendedDN bool
}

func findControl(cs []gldap.Control, oid string) gldap.Control {
	for _, c := range cs {
		if c.GetControlType() == oid {
			return c
		}
	}
	return nil
}

func searchView(cs []gldap.Control) view {
	return view{showDeleted: findControl(cs, controlShowDeleted) != nil, extendedDN: findControl(cs, controlExtendedDN) != nil}
}

// dnSyntax are the attributes whose values are DNs.
var dnSyntax = map[string]bool{"member": true, "memberof": true, "objectcategory": true, "distinguishedname": true, "lastknownparent": true, "manager": true}

// extendedDN is e's DN in the Extended DN form. Caller holds d.mu.
func extendedDN(e *Entry) string {
	var b strings.Builder
	b.WriteString("<GUID=" + hex.EncodeToString([]byte(e.id)) + ">;")
	if sid := e.First("objectSid"); sid != "" {
		b.WriteString("<SID=" + hex.EncodeToString([]byte(sid)) + ">;")
	}
	b.WriteString(e.DN)
	return b.String()
}

// extendValues gives the values of a DN-valued attribute the Extended DN
// form: those naming an entry get its GUID and SID; objectCategory (a
// schema object the fake does not hold) a GUID made from the name. Caller
// holds d.mu.
func (d *Directory) extendValues(attr string, vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		switch x, ok := d.byDN[strings.ToLower(v)]; {
		case ok:
			out[i] = extendedDN(x)
		case strings.EqualFold(attr, "objectCategory"):
			sum := sha256.Sum256([]byte("category " + strings.ToLower(v)))
			out[i] = "<GUID=" + hex.EncodeToString(sum[:16]) + ">;" + v
		default:
			out[i] = v
		}
	}
	return out
}

// dn is how the search names e.
func (st *pageState) dn(e *Entry) string {
	if st.view.extendedDN {
		return extendedDN(e)
	}
	return e.DN
}

// searchAttrs selects the requested attributes of e (all for none or "*")
// with range retrieval: an attribute with more values than MaxValRange,
// or asked for as name;range=low-high (high may be *), comes as
// name;range=low-high with at most MaxValRange values, high being * for
// the last part. Caller holds s.dir.mu.
func (s *Server) searchAttrs(e *Entry, st *pageState) map[string][]string {
	out := map[string][]string{}
	maxVals := s.opts.MaxValRange
	put := func(a *Attribute, low, high int, ranged bool) {
		vals := a.Values
		if st.view.extendedDN && dnSyntax[strings.ToLower(a.Name)] {
			vals = s.dir.extendValues(a.Name, vals)
		}
		if !ranged && len(vals) <= maxVals {
			out[a.Name] = vals
			return
		}
		if low > len(vals) {
			low = len(vals)
		}
		end := len(vals) - 1
		if high >= 0 && high < end {
			end = high
		}
		if end-low+1 > maxVals {
			end = low + maxVals - 1
		}
		last := "*"
		if end < len(vals)-1 {
			last = strconv.Itoa(end)
		}
		out[a.Name+";range="+strconv.Itoa(low)+"-"+last] = vals[low : end+1]
	}
	all := len(st.attrs) == 0
	for _, w := range st.attrs {
		if w == "*" {
			all = true
			continue
		}
		name, low, high, ranged := parseRange(w)
		if a, ok := e.attrs[strings.ToLower(name)]; ok {
			put(a, low, high, ranged)
		}
	}
	if all {
		for _, k := range e.order {
			if _, asked := out[e.attrs[k].Name]; !asked {
				put(e.attrs[k], 0, -1, false)
			}
		}
	}
	return out
}

// parseRange splits "member;range=1500-*" into the name and the bounds
// (high -1 for *); ranged is false for a plain name.
func parseRange(w string) (name string, low, high int, ranged bool) {
	name, opt, ok := strings.Cut(w, ";")
	if !ok {
		return w, 0, -1, false
	}
	spec, ok := strings.CutPrefix(strings.ToLower(opt), "range=")
	if !ok {
		return name, 0, -1, false
	}
	lo, hi, _ := strings.Cut(spec, "-")
	low, err := strconv.Atoi(lo)
	if err != nil || low < 0 {
		return name, 0, -1, false
	}
	high = -1
	if hi != "*" {
		if high, err = strconv.Atoi(hi); err != nil || high < low {
			return name, 0, -1, false
		}
	}
	return name, low, high, true
}

// dcRootDSE adds what the rootDSE says about the answering DC: its
// dnsHostName, dsServiceName (the DN of its NTDS Settings object, which
// holds its invocationId) and highestCommittedUSN. Caller holds d.mu.
func (d *Directory) dcRootDSE(e *Entry) {
	e.set("dnsHostName", d.dcHostName())
	e.set("dsServiceName", d.dsServiceName())
	e.set("serverName", strings.TrimPrefix(d.dsServiceName(), "CN=NTDS Settings,"))
	e.set("highestCommittedUSN", strconv.Itoa(d.usn))
}

// dcEntry answers a base search of the answering DC's NTDS Settings
// object, which carries its invocationId; nil for any other search.
func (s *Server) dcEntry(m *gldap.SearchMessage) *Entry {
	d := s.dir
	d.mu.RLock()
	defer d.mu.RUnlock()
	if m.Scope != gldap.BaseObject || !strings.EqualFold(m.BaseDN, d.dsServiceName()) {
		return nil
	}
	e := &Entry{DN: d.dsServiceName(), attrs: map[string]*Attribute{}}
	e.set("objectClass", "top", "applicationSettings", "nTDSDSA")
	e.set("invocationId", d.dc.invocation)
	e.set("distinguishedName", e.DN)
	return e
}

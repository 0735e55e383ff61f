package ad

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// The Extended DN control (LDAP_SERVER_EXTENDED_DN_OID) makes a DC name
// every object, in the entry's DN and in DN-valued attributes (member,
// objectCategory), as <GUID=...>;<SID=...>;dn. Sent without a value, as
// here, the GUID and SID come as the hexadecimal of their bytes; Samba
// writes some (objectCategory) in text form. Incremental reads key the
// local copy by that GUID: a member value then names its object whatever
// its DN has become.
const controlExtendedDN = "1.2.840.113556.1.4.529"

// extendedDN is a DN in the Extended DN form.
type extendedDN struct {
	// guid holds the 16 bytes of the objectGUID, nil when absent.
	guid []byte
	// sid holds the binary objectSid, nil when absent.
	sid []byte
	// dn is the plain DN.
	dn string
}

// parseExtendedDN reads <GUID=...>;<SID=...>;dn. A value without the
// <...>; prefixes is a plain DN.
func parseExtendedDN(s string) (extendedDN, error) {
	var x extendedDN
	for strings.HasPrefix(s, "<") {
		end := strings.Index(s, ">")
		if end < 0 {
			return extendedDN{}, fmt.Errorf("extended DN %q: unterminated <...>", s)
		}
		part := s[1:end]
		s = s[end+1:]
		if !strings.HasPrefix(s, ";") {
			if s != "" {
				return extendedDN{}, fmt.Errorf("extended DN: %q does not end its <%s> with ';'", s, part)
			}
		} else {
			s = s[1:]
		}
		kind, val, ok := strings.Cut(part, "=")
		if !ok {
			return extendedDN{}, fmt.Errorf("extended DN component <%s> has no '='", part)
		}
		switch strings.ToUpper(kind) {
		case "GUID":
			b, err := guidValue(val)
			if err != nil {
				return extendedDN{}, err
			}
			x.guid = b
		case "SID":
			b, err := sidValue(val)
			if err != nil {
				return extendedDN{}, err
			}
			x.sid = b
		}
	}
	x.dn = s
	return x, nil
}

// guidValue reads an extended DN's GUID: 32 hex digits (the bytes as
// stored) or the 36-character text form.
func guidValue(v string) ([]byte, error) {
	if len(v) == 32 {
		b, err := hex.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("extended DN GUID %q: %w", v, err)
		}
		return b, nil
	}
	b, err := GUIDBytes(v)
	if err != nil {
		return nil, fmt.Errorf("extended DN GUID: %w", err)
	}
	return b, nil
}

// sidValue reads an extended DN's SID: hex of the binary SID, or S-1-....
func sidValue(v string) ([]byte, error) {
	if strings.HasPrefix(v, "S-") || strings.HasPrefix(v, "s-") {
		sid, err := ParseSID(v)
		if err != nil {
			return nil, fmt.Errorf("extended DN SID: %w", err)
		}
		return sid.Bytes(), nil
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("extended DN SID %q: %w", v, err)
	}
	if _, err := ParseSIDBytes(b); err != nil {
		return nil, fmt.Errorf("extended DN SID: %w", err)
	}
	return b, nil
}

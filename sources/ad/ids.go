package ad

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// GUIDString decodes a raw 16-byte objectGUID into its canonical text form.
// AD stores the first three fields little-endian: the bytes
// 33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff print as
// 00112233-4455-6677-8899-aabbccddeeff.
func GUIDString(raw []byte) (string, error) {
	if len(raw) != 16 {
		return "", fmt.Errorf("objectGUID is %d bytes, want 16", len(raw))
	}
	var b [16]byte
	b[0], b[1], b[2], b[3] = raw[3], raw[2], raw[1], raw[0]
	b[4], b[5] = raw[5], raw[4]
	b[6], b[7] = raw[7], raw[6]
	copy(b[8:], raw[8:])
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:]), nil
}

// GUIDBytes is the inverse of GUIDString: it turns the canonical text form
// (case-insensitive, optionally in braces) into the 16 bytes AD stores.
func GUIDBytes(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, fmt.Errorf("GUID %q is not in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("GUID %q: %w", s, err)
	}
	raw := make([]byte, 16)
	raw[0], raw[1], raw[2], raw[3] = b[3], b[2], b[1], b[0]
	raw[4], raw[5] = b[5], b[4]
	raw[6], raw[7] = b[7], b[6]
	copy(raw[8:], b[8:])
	return raw, nil
}

// SID is a Windows security identifier.
type SID struct {
	// Revision is always 1 in practice.
	Revision byte
	// Authority is the 48-bit identifier authority (5 for NT AUTHORITY).
	Authority uint64
	// Sub holds the sub-authorities; the last one of a domain account or
	// group is its relative identifier (RID).
	Sub []uint32
}

// maxSubAuthorities is the limit Windows places on a SID.
const maxSubAuthorities = 15

// ParseSIDBytes decodes the binary form of objectSid: byte 0 revision, byte 1
// the number of sub-authorities, bytes 2-7 the identifier authority
// big-endian, then each sub-authority as 4 bytes little-endian.
func ParseSIDBytes(raw []byte) (SID, error) {
	if len(raw) < 8 {
		return SID{}, fmt.Errorf("SID is %d bytes, want at least 8", len(raw))
	}
	if raw[0] != 1 {
		return SID{}, fmt.Errorf("SID revision %d, want 1", raw[0])
	}
	n := int(raw[1])
	if n > maxSubAuthorities {
		return SID{}, fmt.Errorf("SID claims %d sub-authorities, at most %d allowed", n, maxSubAuthorities)
	}
	if len(raw) != 8+4*n {
		return SID{}, fmt.Errorf("SID with %d sub-authorities is %d bytes, want %d", n, len(raw), 8+4*n)
	}
	var auth uint64
	for _, c := range raw[2:8] {
		auth = auth<<8 | uint64(c)
	}
	s := SID{Revision: raw[0], Authority: auth, Sub: make([]uint32, n)}
	for i := range n {
		s.Sub[i] = binary.LittleEndian.Uint32(raw[8+4*i:])
	}
	return s, nil
}

// ParseSID parses the text form S-1-5-21-a-b-c-RID.
func ParseSID(text string) (SID, error) {
	parts := strings.Split(text, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") {
		return SID{}, fmt.Errorf("SID %q is not of the form S-1-<authority>-...", text)
	}
	rev, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil || rev != 1 {
		return SID{}, fmt.Errorf("SID %q: revision must be 1", text)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return SID{}, fmt.Errorf("SID %q: bad identifier authority", text)
	}
	subs := parts[3:]
	if len(subs) > maxSubAuthorities {
		return SID{}, fmt.Errorf("SID %q has more than %d sub-authorities", text, maxSubAuthorities)
	}
	s := SID{Revision: 1, Authority: auth, Sub: make([]uint32, len(subs))}
	for i, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return SID{}, fmt.Errorf("SID %q: bad sub-authority %q", text, p)
		}
		s.Sub[i] = uint32(v)
	}
	return s, nil
}

// String renders the SID in its S-1-5-... text form.
func (s SID) String() string {
	var b strings.Builder
	b.WriteString("S-")
	b.WriteString(strconv.FormatUint(uint64(s.Revision), 10))
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(s.Authority, 10))
	for _, v := range s.Sub {
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// Bytes renders the SID in the binary form AD stores in objectSid.
func (s SID) Bytes() []byte {
	out := make([]byte, 8+4*len(s.Sub))
	out[0] = s.Revision
	out[1] = byte(len(s.Sub))
	for i := range 6 {
		out[7-i] = byte(s.Authority >> (8 * i))
	}
	for i, v := range s.Sub {
		binary.LittleEndian.PutUint32(out[8+4*i:], v)
	}
	return out
}

// RID returns the last sub-authority, the relative identifier of a domain
// object. It reports false for a SID without sub-authorities.
func (s SID) RID() (uint32, bool) {
	if len(s.Sub) == 0 {
		return 0, false
	}
	return s.Sub[len(s.Sub)-1], true
}

// Domain returns the SID without its RID: for a domain account that is the
// domain SID.
func (s SID) Domain() SID {
	if len(s.Sub) == 0 {
		return s
	}
	return SID{Revision: s.Revision, Authority: s.Authority, Sub: s.Sub[:len(s.Sub)-1]}
}

// WithRID returns the SID of the object with that RID in this domain.
func (s SID) WithRID(rid uint32) SID {
	sub := make([]uint32, len(s.Sub)+1)
	copy(sub, s.Sub)
	sub[len(s.Sub)] = rid
	return SID{Revision: s.Revision, Authority: s.Authority, Sub: sub}
}

// Equal reports whether two SIDs are the same.
func (s SID) Equal(o SID) bool {
	if s.Revision != o.Revision || s.Authority != o.Authority || len(s.Sub) != len(o.Sub) {
		return false
	}
	for i := range s.Sub {
		if s.Sub[i] != o.Sub[i] {
			return false
		}
	}
	return true
}

// errNotInteger is returned by parseUAC for a value that is not a decimal
// 32-bit integer.
var errNotInteger = errors.New("not a decimal integer")

// parseUAC parses userAccountControl. AD sends it as a signed decimal
// 32-bit integer (flags above bit 31 show up negative on some tools).
func parseUAC(v string) (uint32, error) {
	if v == "" {
		return 0, errNotInteger
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -(1<<31) || n > (1<<32)-1 {
		return 0, errNotInteger
	}
	return uint32(n), nil
}

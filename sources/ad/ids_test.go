package ad

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestGUIDString(t *testing.T) {
	tests := []struct {
		name    string
		raw     string // hex
		want    string
		wantErr bool
	}{
		{name: "mixed-endian example from the spec", raw: "33221100554477668899aabbccddeeff", want: "00112233-4455-6677-8899-aabbccddeeff"},
		{name: "all zero", raw: "00000000000000000000000000000000", want: "00000000-0000-0000-0000-000000000000"},
		{name: "all ff", raw: "ffffffffffffffffffffffffffffffff", want: "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{name: "15 bytes", raw: "33221100554477668899aabbccddee", wantErr: true},
		{name: "17 bytes", raw: "33221100554477668899aabbccddeeff00", wantErr: true},
		{name: "empty", raw: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := hex.DecodeString(tc.raw)
			got, err := GUIDString(raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("GUIDString = %q, want %q", got, tc.want)
			}
			if tc.wantErr {
				return
			}
			back, err := GUIDBytes(got)
			if err != nil || !bytes.Equal(back, raw) {
				t.Errorf("GUIDBytes(%q) = %x, %v; want %x", got, back, err, raw)
			}
		})
	}
}

func TestImmutableIDOfSpecExample(t *testing.T) {
	raw, err := GUIDBytes("00112233-4455-6677-8899-aabbccddeeff")
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(raw); got != "MyIRAFVEd2aImaq7zN3u/w==" {
		t.Errorf("immutable id %q, want MyIRAFVEd2aImaq7zN3u/w==", got)
	}
}

func TestGUIDBytesRejects(t *testing.T) {
	for _, s := range []string{"", "00112233-4455-6677-8899-aabbccddeef", "0011223344556677-8899-aabbccddeeff-", "zz112233-4455-6677-8899-aabbccddeeff", "00112233_4455_6677_8899_aabbccddeeff"} {
		if _, err := GUIDBytes(s); err == nil {
			t.Errorf("GUIDBytes(%q) accepted", s)
		}
	}
	if _, err := GUIDBytes("{00112233-4455-6677-8899-AABBCCDDEEFF}"); err != nil {
		t.Errorf("braces and upper case refused: %v", err)
	}
}

func TestSID(t *testing.T) {
	tests := []struct {
		name string
		text string
		raw  string // hex
		rid  uint32
	}{
		{name: "domain admins", text: "S-1-5-21-1004336348-1177238915-682003330-512",
			raw: "010500000000000515000000dcf4dc3b833d2b46828ba62800020000", rid: 512},
		{name: "builtin administrators", text: "S-1-5-32-544", raw: "01020000000000052000000020020000", rid: 544},
		{name: "everyone", text: "S-1-1-0", raw: "0101000000000001" + "00000000", rid: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := hex.DecodeString(tc.raw)
			sid, err := ParseSIDBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			if sid.String() != tc.text {
				t.Errorf("String = %q, want %q", sid.String(), tc.text)
			}
			if !bytes.Equal(sid.Bytes(), raw) {
				t.Errorf("Bytes = %x, want %x", sid.Bytes(), raw)
			}
			parsed, err := ParseSID(tc.text)
			if err != nil || !parsed.Equal(sid) {
				t.Errorf("ParseSID = %v, %v", parsed, err)
			}
			if rid, ok := sid.RID(); !ok || rid != tc.rid {
				t.Errorf("RID = %d %v, want %d", rid, ok, tc.rid)
			}
			if !sid.Domain().WithRID(tc.rid).Equal(sid) {
				t.Errorf("Domain().WithRID() does not give the SID back")
			}
		})
	}
}

func TestSIDRejects(t *testing.T) {
	for _, h := range []string{"", "01", "0105000000000005150000", "02010000000000050000000000", "01ff000000000005", "0101000000000005000000000000"} {
		raw, _ := hex.DecodeString(h)
		if _, err := ParseSIDBytes(raw); err == nil {
			t.Errorf("ParseSIDBytes(%s) accepted", h)
		}
	}
	for _, s := range []string{"", "S-1", "X-1-5-32", "S-2-5-32-544", "S-1-5-x", "S-1-5-32-4294967296", "S-1-281474976710656-1"} {
		if _, err := ParseSID(s); err == nil {
			t.Errorf("ParseSID(%q) accepted", s)
		}
	}
}

func TestParseUAC(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"512", 512, true}, {"514", 514, true}, {"66048", 66048, true}, {"4096", 4096, true},
		{"-2147483648", 0x80000000, true}, {"4294967295", 0xffffffff, true},
		{"", 0, false}, {"abc", 0, false}, {"5 12", 0, false}, {"0x200", 0, false}, {"4294967296", 0, false},
	}
	for _, tc := range tests {
		got, err := parseUAC(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseUAC(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzGUID(f *testing.F) {
	f.Add([]byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := GUIDString(raw)
		if err != nil {
			if len(raw) == 16 {
				t.Fatalf("16 bytes refused: %v", err)
			}
			return
		}
		back, err := GUIDBytes(s)
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("round trip %x -> %q -> %x, %v", raw, s, back, err)
		}
	})
}

func FuzzGUIDText(f *testing.F) {
	f.Add("00112233-4455-6677-8899-aabbccddeeff")
	f.Add("{00112233-4455-6677-8899-AABBCCDDEEFF}")
	f.Add("not a guid")
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := GUIDBytes(s)
		if err != nil {
			return
		}
		if len(raw) != 16 {
			t.Fatalf("GUIDBytes(%q) gave %d bytes", s, len(raw))
		}
		if _, err := GUIDString(raw); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzSIDBytes(f *testing.F) {
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0, 5, 0x20, 0, 0, 0, 0x20, 2, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 5})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, raw []byte) {
		sid, err := ParseSIDBytes(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(sid.Bytes(), raw) {
			t.Fatalf("Bytes() = %x, want %x", sid.Bytes(), raw)
		}
		again, err := ParseSID(sid.String())
		if err != nil || !again.Equal(sid) {
			t.Fatalf("text round trip of %s: %v %v", sid, again, err)
		}
	})
}

func FuzzSIDText(f *testing.F) {
	f.Add("S-1-5-21-1-2-3-512")
	f.Add("S-1-5-32-544")
	f.Add("S-1-")
	f.Fuzz(func(t *testing.T, s string) {
		sid, err := ParseSID(s)
		if err != nil {
			return
		}
		back, err := ParseSIDBytes(sid.Bytes())
		if err != nil || !back.Equal(sid) {
			t.Fatalf("binary round trip of %q: %v %v", s, back, err)
		}
	})
}

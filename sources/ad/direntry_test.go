package ad

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// Values as Samba sends them (taken from a DirSync answer of the test
// domain): the entry's DN and member values in the Extended DN form with
// hexadecimal GUID and SID, objectCategory with the GUID in text form.
const (
	sambaUserDN   = "<GUID=0b7dc36009f2234fb9f3710ae2f6088a>;<SID=010500000000000515000000d2358675894a9b68f2bec66a58040000>;CN=Erin Evans,OU=Sales,OU=Staff,OU=Corp,DC=corp,DC=example,DC=test"
	sambaGroupDN  = "<GUID=544738d370493744831cc32916efb1a7>;<SID=010500000000000515000000d2358675894a9b68f2bec66a52040000>;CN=Tier3 Ops,OU=Groups,OU=Corp,DC=corp,DC=example,DC=test"
	sambaCategory = "<GUID=53dceb88-a65b-4695-9b54-a7faa55d21bc>;CN=Person,CN=Schema,CN=Configuration,DC=corp,DC=example,DC=test"
	sambaTomb     = `<GUID=4d38f21699be0042abbd6ab0b1befcc9>;<SID=010500000000000515000000d2358675894a9b68f2bec66a340c0000>;CN=Probe User\0ADEL:16f2384d-be99-4200-abbd-6ab0b1befcc9,CN=Deleted Objects,DC=corp,DC=example,DC=test`
)

func rawEntry(dn string, attrs ...*ldap.EntryAttribute) *ldap.Entry {
	return &ldap.Entry{DN: dn, Attributes: attrs}
}

func attribute(name string, values ...string) *ldap.EntryAttribute {
	return ldap.NewEntryAttribute(name, values)
}

func TestDecodeDirSyncEntries(t *testing.T) {
	erinID, _ := objectIDHex("0b7dc36009f2234fb9f3710ae2f6088a")
	groupID, _ := objectIDHex("544738d370493744831cc32916efb1a7")
	tests := []struct {
		name    string
		entry   *ldap.Entry
		dirSync bool
		check   func(t *testing.T, d dirEntry)
		err     string
	}{
		{name: "changed user", dirSync: true, entry: rawEntry(sambaUserDN, attribute("objectCategory", sambaCategory), attribute("mail"), attribute("instanceType", "4"), attribute("name", "Erin Evans")),
			check: func(t *testing.T, d dirEntry) {
				if d.id != erinID || d.dn != "CN=Erin Evans,OU=Sales,OU=Staff,OU=Corp,DC=corp,DC=example,DC=test" || d.deleted {
					t.Errorf("id %s dn %s", d.id, d.dn)
				}
				if v, ok := d.attrs["mail"]; !ok || len(v) != 0 {
					t.Errorf("removed mail: %v %v", v, ok)
				}
				if string(d.attrs["objectCategory"][0]) != "CN=Person,CN=Schema,CN=Configuration,DC=corp,DC=example,DC=test" {
					t.Errorf("objectCategory %q", d.attrs["objectCategory"][0])
				}
				if _, ok := d.attrs["name"]; ok {
					t.Error("name is not kept")
				}
			}},
		{name: "incremental member values", dirSync: true, entry: rawEntry(sambaGroupDN, attribute("member;range=1-1", sambaUserDN), attribute("member;range=0-0", sambaTomb)),
			check: func(t *testing.T, d dirEntry) {
				tomb, _ := objectIDHex("4d38f21699be0042abbd6ab0b1befcc9")
				if d.id != groupID || !slices.Equal(d.members.added, []string{erinID}) || !slices.Equal(d.members.removed, []string{tomb}) || d.members.whole {
					t.Errorf("%+v", d.members)
				}
			}},
		{name: "tombstone", dirSync: true, entry: rawEntry(sambaTomb, attribute("isDeleted", "TRUE"), attribute("objectCategory"), attribute("primaryGroupID")),
			check: func(t *testing.T, d dirEntry) {
				if !d.deleted {
					t.Error("not deleted")
				}
			}},
		{name: "tombstone under an empty DN", dirSync: true, entry: rawEntry("", attribute("objectGUID", string(mustHex("4d38f21699be0042abbd6ab0b1befcc9"))), attribute("isDeleted", "TRUE")),
			check: func(t *testing.T, d dirEntry) {
				if id, _ := objectIDHex("4d38f21699be0042abbd6ab0b1befcc9"); !d.deleted || d.id != id {
					t.Errorf("%+v", d)
				}
			}},
		{name: "restored (isDeleted removed)", dirSync: true, entry: rawEntry(sambaUserDN, attribute("isDeleted")),
			check: func(t *testing.T, d dirEntry) {
				if d.deleted {
					t.Error("deleted")
				}
			}},
		{name: "ranged member list", entry: rawEntry(sambaGroupDN, attribute("member;range=0-1", sambaUserDN, sambaTomb)),
			check: func(t *testing.T, d dirEntry) {
				if !d.members.whole || len(d.members.all) != 2 || d.members.next != 2 {
					t.Errorf("%+v", d.members)
				}
			}},
		{name: "last range", entry: rawEntry(sambaGroupDN, attribute("member;range=0-*", sambaUserDN)),
			check: func(t *testing.T, d dirEntry) {
				if d.members.next != 0 || len(d.members.all) != 1 {
					t.Errorf("%+v", d.members)
				}
			}},
		{name: "plain DN keeps the objectGUID", entry: rawEntry("CN=x,DC=y", attribute("objectGUID", string(mustHex("0b7dc36009f2234fb9f3710ae2f6088a")))),
			check: func(t *testing.T, d dirEntry) {
				if d.id != erinID {
					t.Errorf("id %s", d.id)
				}
			}},
		{name: "bad GUID is kept under its own key", entry: rawEntry("CN=x,DC=y", attribute("objectGUID", "12345")),
			check: func(t *testing.T, d dirEntry) {
				if !strings.HasPrefix(d.id, "guid:") || string(d.attrs["objectGUID"][0]) != "12345" {
					t.Errorf("%+v", d)
				}
			}},
		{name: "unreadable member value", dirSync: true, entry: rawEntry(sambaGroupDN, attribute("member;range=1-1", "<GUID=zz>;CN=x", "CN=plain,DC=y", sambaUserDN)),
			check: func(t *testing.T, d dirEntry) {
				if len(d.problems) != 2 || !slices.Equal(d.members.added, []string{erinID}) {
					t.Errorf("problems %v added %v", d.problems, d.members.added)
				}
			}},
		{name: "ranged copy attribute", entry: rawEntry(sambaUserDN, attribute("objectClass;range=0-1", "top", "person")),
			check: func(t *testing.T, d dirEntry) {
				if len(d.problems) != 1 || d.attrs["objectClass"] != nil {
					t.Errorf("%+v", d)
				}
			}},
		{name: "no identity", dirSync: true, entry: rawEntry("", attribute("isDeleted", "TRUE")), err: "no objectGUID and no DN"},
		{name: "unterminated extended DN", entry: rawEntry("<GUID=0b7dc360", attribute("mail", "x")), err: "unterminated"},
		{name: "short GUID", entry: rawEntry("<GUID=0b7d>;CN=x", attribute("mail", "x")), err: "GUID"},
		{name: "DirSync member range of a search", dirSync: true, entry: rawEntry(sambaGroupDN, attribute("member;range=0-1499", sambaUserDN)), err: "range=0-1499"},
		{name: "range that does not follow", entry: rawEntry(sambaGroupDN, attribute("member;range=5-*", sambaUserDN)), err: "after 0 values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, eerr := decodeEntry(tc.entry, tc.dirSync)
			if tc.err != "" {
				if eerr == nil || !strings.Contains(eerr.Reason, tc.err) || eerr.Source != sources.KindAD {
					t.Fatalf("EntryError %v, want one with %q", eerr, tc.err)
				}
				return
			}
			if eerr != nil {
				t.Fatal(eerr)
			}
			tc.check(t, d)
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func objectIDHex(s string) (string, error) { return objectID(mustHex(s), "") }

func TestCookieInvocation(t *testing.T) {
	// A cookie from Samba: "MSDS", version 3, time, reserved, vector size
	// 40, the USN vector, the invocationId, then the vector.
	c := mustHex("4d5344530300000080ede1cf9e85dd01000000000000000028000000cf170000000000000000000000000000cf170000000000002e686ba8348c8440bb1ef446c0a7bb51010000000000000001000000000000002e686ba8348c8440bb1ef446c0a7bb51cf17000000000000")
	inv, ok := cookieInvocation(c)
	want, _ := GUIDString(mustHex("2e686ba8348c8440bb1ef446c0a7bb51"))
	if !ok || inv != want {
		t.Errorf("invocation %s %v, want %s", inv, ok, want)
	}
	for _, bad := range [][]byte{nil, []byte("MSDS"), append([]byte("XXXX"), c[4:]...)} {
		if _, ok := cookieInvocation(bad); ok {
			t.Errorf("read an invocationId from %x", bad)
		}
	}
}

func TestParseExtendedDN(t *testing.T) {
	x, err := parseExtendedDN(sambaUserDN)
	if err != nil || hex.EncodeToString(x.guid) != "0b7dc36009f2234fb9f3710ae2f6088a" || len(x.sid) != 28 || !strings.HasPrefix(x.dn, "CN=Erin Evans,") {
		t.Fatalf("%+v %v", x, err)
	}
	x, err = parseExtendedDN("<GUID=53dceb88-a65b-4695-9b54-a7faa55d21bc>;<SID=S-1-5-21-1-2-3-1104>;CN=Person")
	if err != nil || len(x.guid) != 16 || x.dn != "CN=Person" {
		t.Fatalf("text forms: %+v %v", x, err)
	}
	if x, err := parseExtendedDN(`CN=a\>b,DC=x`); err != nil || x.dn != `CN=a\>b,DC=x` || x.guid != nil {
		t.Errorf("plain DN: %+v %v", x, err)
	}
	for _, bad := range []string{"<GUID=xyz>;CN=x", "<SID=0102>;CN=x", "<GUID>;CN=x", "<GUID=0b7dc36009f2234fb9f3710ae2f6088a>CN=x"} {
		if _, err := parseExtendedDN(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCopyObjectRoundTrip(t *testing.T) {
	o := newCopyObject("CN=Jane \xff,DC=x")
	o.set("objectGUID", [][]byte{[]byte(goodGUID)})
	o.set("objectClass", [][]byte{[]byte("top"), []byte("user")})
	o.set("displayName", [][]byte{{0xfe, 0xff}})
	o.set("mail", [][]byte{{}})
	back, err := decodeCopyObject(o.encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.dn != o.dn || len(back.attrs) != 4 || string(back.attrs["displayName"][0]) != "\xfe\xff" || len(back.attrs["mail"][0]) != 0 || back.kind() != kindAccount {
		t.Errorf("round trip: %+v", back)
	}
	enc := o.encode()
	for i := range enc {
		if _, err := decodeCopyObject(enc[:i]); !errors.Is(err, errBadDoc) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
}

// A copy written before version 2 still reads; a version 2 object names
// the attributes it does not know in full, and holds no spare capacity.
func TestCopyObjectVersions(t *testing.T) {
	v1 := []byte{copyDocV1}
	v1 = appendString(v1, "CN=Old,DC=x")
	v1 = binary.AppendUvarint(v1, 1)
	v1 = appendString(v1, "sAMAccountName")
	v1 = binary.AppendUvarint(v1, 1)
	v1 = appendString(v1, "old")
	o, err := decodeCopyObject(v1)
	if err != nil || o.dn != "CN=Old,DC=x" || o.first("sAMAccountName") != "old" {
		t.Fatalf("version 1: %+v, %v", o, err)
	}

	o = newCopyObject("CN=Problem,DC=x")
	o.set("reason", [][]byte{[]byte("bad GUID")})
	o.set("sAMAccountName", [][]byte{[]byte("p")})
	enc := o.encode()
	if enc[0] != copyDocVersion || len(enc) != cap(enc) {
		t.Errorf("version %d, %d bytes in a capacity of %d", enc[0], len(enc), cap(enc))
	}
	back, err := decodeCopyObject(enc)
	if err != nil || back.first("reason") != "bad GUID" || back.first("sAMAccountName") != "p" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if len(enc) >= len(v1)+len("bad GUID")+len("reason")+4 {
		t.Errorf("a known attribute is named in full: %d bytes", len(enc))
	}
	bad := append([]byte{}, enc...)
	bad[1+1+len(o.dn)+1] = byte(len(copyAttrs) + 1) // the first attribute's code
	if _, err := decodeCopyObject(bad); !errors.Is(err, errBadDoc) {
		t.Errorf("unknown code: %v", err)
	}
}

func TestMovedDN(t *testing.T) {
	renames := map[string]string{
		"ou=staff,ou=corp,dc=x":          "OU=People,OU=Corp,DC=x",
		"ou=sales,ou=staff,ou=corp,dc=x": "OU=Vertrieb,OU=People,OU=Corp,DC=x",
	}
	for dn, want := range map[string]string{
		"CN=Erin,OU=Sales,OU=Staff,OU=Corp,DC=x": "CN=Erin,OU=Vertrieb,OU=People,OU=Corp,DC=x",
		"CN=Bob,OU=Eng,OU=Staff,OU=Corp,DC=x":    "CN=Bob,OU=Eng,OU=People,OU=Corp,DC=x",
		"CN=Dave,OU=Admins,OU=Corp,DC=x":         "",
		"OU=Staff,OU=Corp,DC=x":                  "",
	} {
		got, ok := movedDN(dn, renames)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", dn, got, ok, want)
		}
	}
}

// FuzzDecodeDirSyncEntry feeds arbitrary DNs, attribute names and values
// through the decoding of DirSync and search entries, the copy they make
// and the classification of the copy: a broken value gives an EntryError
// or a problem, never a crash.
func FuzzDecodeDirSyncEntry(f *testing.F) {
	f.Add(sambaUserDN, "member;range=1-1", sambaGroupDN, "objectCategory", sambaCategory, true)
	f.Add(sambaTomb, "isDeleted", "TRUE", "primaryGroupID", "", true)
	f.Add("CN=x,DC=y", "member;range=0-2", sambaUserDN, "userAccountControl", "512", false)
	f.Add("<GUID=0b7dc36009f2234fb9f3710ae2f6088a>;", "objectClass", "user", "objectGUID", "\x00\x01", false)
	f.Fuzz(func(t *testing.T, dn, name, value, name2, value2 string, dirSync bool) {
		e := rawEntry(dn, attribute(name, value), attribute(name2, value2), attribute("objectClass", "top", "user"))
		d, eerr := decodeEntry(e, dirSync)
		if eerr != nil {
			if eerr.Reason == "" || eerr.Source != sources.KindAD {
				t.Fatalf("empty EntryError %+v", eerr)
			}
			return
		}
		if d.id == "" {
			t.Fatal("decoded without an id")
		}
		for _, full := range []bool{true, false} {
			cs := newChangeSet(full)
			cs.add(d, !dirSync)
			delta, err := cs.fullDelta()
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range delta.Upserts {
				obj, err := decodeCopyObject(o.Doc)
				if err != nil {
					t.Fatalf("the copy's own object does not decode: %v", err)
				}
				_, _ = testPlan().account(obj.entry([]string{value}))
			}
		}
	})
}

// FuzzCopyObject decodes arbitrary stored objects: an error, never a
// crash; what decodes encodes back to the same bytes.
func FuzzCopyObject(f *testing.F) {
	o := newCopyObject("CN=a,DC=b")
	o.set("mail", [][]byte{[]byte("a@b")})
	f.Add(o.encode())
	f.Add([]byte{1, 0xff, 0xff, 0xff})
	f.Add(docOf(1, "CN=a", "mail", "b", "cn", "a", "mail", "c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := decodeCopyObject(b)
		e, eerr := copyEntry(b, []string{"CN=g"})
		if (err == nil) != (eerr == nil) {
			t.Fatalf("decodeCopyObject says %v, copyEntry %v", err, eerr)
		}
		if err != nil {
			return
		}
		if want := obj.entry([]string{"CN=g"}); !reflect.DeepEqual(e, want) {
			t.Fatalf("copyEntry gives %+v, decodeCopyObject and entry %+v", e, want)
		}
		again, err := decodeCopyObject(obj.encode())
		if err != nil || again.dn != obj.dn || len(again.attrs) != len(obj.attrs) {
			t.Fatalf("re-encoding changed the object: %v", err)
		}
	})
}

// docOf encodes, in version 1 (names in full), a DN and name/value pairs
// in the order given, repeated names included: what encode never writes.
func docOf(version byte, dn string, pairs ...string) []byte {
	b := appendString([]byte{version}, dn)
	b = binary.AppendUvarint(b, uint64(len(pairs)/2))
	for i := 0; i < len(pairs); i += 2 {
		b = appendString(b, pairs[i])
		b = binary.AppendUvarint(b, 1)
		b = appendString(b, pairs[i+1])
	}
	return b
}

// copyEntry reads a stored object as decodeCopyObject and entry do, for
// what encode writes and for documents out of order or naming an
// attribute twice (the last one wins, as in decodeCopyObject's map).
func TestCopyEntryReadsAsTheObjectDoes(t *testing.T) {
	o := newCopyObject("CN=Ann,OU=Staff,DC=corp")
	o.set("objectClass", [][]byte{[]byte("top"), []byte("person"), []byte("user")})
	o.set("sAMAccountName", [][]byte{[]byte("ann")})
	o.set("objectGUID", [][]byte{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}})
	o.set("custom", [][]byte{[]byte("x")})
	for name, doc := range map[string][]byte{
		"encoded":      o.encode(),
		"out of order": docOf(1, "CN=a", "sn", "b", "cn", "a", "mail", "m"),
		"named twice":  docOf(1, "CN=a", "mail", "first", "cn", "a", "mail", "last"),
	} {
		t.Run(name, func(t *testing.T) {
			obj, err := decodeCopyObject(doc)
			if err != nil {
				t.Fatal(err)
			}
			want := obj.entry([]string{"CN=G1,DC=corp", "CN=G2,DC=corp"})
			got, err := copyEntry(doc, []string{"CN=G1,DC=corp", "CN=G2,DC=corp"})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("copyEntry = %+v, %v; want %+v", got, err, want)
			}
			if name == "named twice" && got.GetAttributeValue("mail") != "last" {
				t.Fatalf("mail = %q, want the last one", got.GetAttributeValue("mail"))
			}
		})
	}
	if _, err := copyEntry(docOf(1, "CN=a", "cn", "a")[:5], nil); !errors.Is(err, errBadDoc) {
		t.Fatalf("a truncated document: %v", err)
	}
}

// dnUnder compares DNs case-insensitively without copying ASCII ones, and
// answers as lower-casing both did.
func TestDNUnder(t *testing.T) {
	for _, c := range []struct {
		dn, base string
		want     bool
	}{
		{"CN=Ann,OU=Staff,DC=corp", "ou=staff,dc=corp", true},
		{"CN=Ann,OU=Staff,DC=corp", "OU=Staff,DC=corp ", true},
		{"OU=Staff,DC=corp", "ou=STAFF,dc=CORP", true},
		{"CN=Ann,OU=BigStaff,DC=corp", "OU=Staff,DC=corp", false},
		{"DC=corp", "OU=Staff,DC=corp", false},
		{"CN=Änne,OU=Büro,DC=corp", "ou=büro,dc=corp", true},
		{"CN=Änne,OU=BÜRO,DC=corp", "ou=büro,dc=corp", true},
		{"CN=a,OU=ſtaff,DC=corp", "OU=staff,DC=corp", false},
	} {
		if got := dnUnder(c.dn, c.base); got != c.want {
			t.Errorf("dnUnder(%q, %q) = %v, want %v", c.dn, c.base, got, c.want)
		}
	}
}

func FuzzDNUnder(f *testing.F) {
	f.Add("CN=Ann,OU=Staff,DC=corp", "ou=staff,dc=corp")
	f.Add("CN=Änne,OU=BÜRO,DC=corp", "ou=büro,dc=corp")
	f.Fuzz(func(t *testing.T, dn, base string) {
		d, b := dnKey(dn), dnKey(base)
		if want := d == b || strings.HasSuffix(d, ","+b); dnUnder(dn, base) != want {
			t.Fatalf("dnUnder(%q, %q) = %v, lower-casing says %v", dn, base, !want, want)
		}
	})
}

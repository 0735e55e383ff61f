package password

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckADComplexity(t *testing.T) {
	cases := []struct {
		name, pw, sam, display string
		ok                     bool
		why                    string // substring of the error
	}{
		{"four categories", "Abcdef12!xyz", "jdoe", "John Doe", true, ""},
		{"three categories, no symbol", "Abcdef12xyzq", "", "", true, ""},
		{"three categories, no digit", "Abcdef!!xyzq", "", "", true, ""},
		{"three categories, no upper", "abcdef12!xyz", "", "", true, ""},
		{"two categories", "abcdefgh1234", "", "", false, "uses 2 of the character categories"},
		{"one category", "abcdefghijkl", "", "", false, "uses 1 of"},
		{"empty", "", "", "", false, "uses 0 of"},
		{"currency signs are no symbol", "abcdef€£¥123", "", "", false, "uses 2 of"},
		{"space is no symbol", "abc def 123x", "", "", false, "uses 2 of"},
		{"every AD symbol counts", "abc123`|\\", "", "", true, ""},
		{"quote counts", "abc123\"", "", "", true, ""},
		{"caseless letters are a fifth category", "abc123日本", "", "", true, ""},
		{"non-Latin upper and lower", "ΑΒΓδεζ123", "", "", true, ""},
		{"contains sAMAccountName", "xxJDoe-2024!", "jdoe", "", false, "contains the account name"},
		{"sAMAccountName case-insensitive", "Q1!JDOEqq", "JDoe", "", false, "account name"},
		{"short sAMAccountName ignored", "Ab1!ab-jd", "ab", "", true, ""},
		{"three-letter sAMAccountName checked", "Xx1!bobxx", "bob", "", false, "account name"},
		{"display token", "Q1!smithqq", "jdoe", "John Smith", false, "part of the display name"},
		{"display token case-insensitive", "Q1!SMITHqq", "jdoe", "John Smith", false, "display name"},
		{"display token after comma", "Q1!Johnqqq", "", "Smith,John", false, "display name"},
		{"display token after dot", "Q1!Johnqqq", "", "j.John", false, "display name"},
		{"display token after underscore", "Q1!adminqq", "", "svc_admin", false, "display name"},
		{"display token after hash", "Q1!tier0qq", "", "admin#tier0", false, "display name"},
		{"display token after tab", "Q1!tier0qq", "", "admin\ttier0", false, "display name"},
		{"display token after hyphen", "Q1!Annaqqq", "", "Mary-Anna Lee", false, "display name"},
		{"short display tokens ignored", "Q1!Lee-Jo", "", "Jo Li", true, ""},
		{"whole display name with delimiter is not a token", "Q1!zzzz", "", "J Li", true, ""},
		{"hyphenated name is two tokens", "Q1!MaryX", "", "Mary-Anna", false, "display name"},
		{"empty names", "Q1!zzzzzz", "", "", true, ""},
		{"sam check before categories", "jdoe", "jdoe", "", false, "account name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckADComplexity(c.pw, c.sam, c.display)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrComplexity) {
				t.Errorf("%v does not wrap ErrComplexity", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q lacks %q", err, c.why)
			}
			if c.pw != "" && strings.Contains(err.Error(), c.pw) {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

func TestDisplayNameTokens(t *testing.T) {
	cases := []struct {
		display string
		want    []string
	}{
		{"", nil},
		{"John Smith", []string{"John", "Smith"}},
		{"Smith, John (IT)", []string{"Smith", "John", "(IT)"}},
		{"a.b-c_d#e\tf g", nil},
		{"Jean-Luc O'Neil", []string{"Jean", "Luc", "O'Neil"}},
		{"Åsa Öberg", []string{"Åsa", "Öberg"}},
	}
	for _, c := range cases {
		got := DisplayNameTokens(c.display)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("DisplayNameTokens(%q) = %q, want %q", c.display, got, c.want)
		}
	}
}

func TestGenerateLength(t *testing.T) {
	cases := []struct {
		length int
		ok     bool
	}{
		{-1, false}, {0, false}, {7, false}, {13, false},
		{14, true}, {24, true}, {99, true}, {128, true},
		{129, false}, {1 << 20, false},
	}
	for _, c := range cases {
		pw, err := Generate(c.length, "jdoe", "John Doe")
		switch {
		case c.ok && err != nil:
			t.Errorf("Generate(%d): %v", c.length, err)
		case c.ok && len(pw) != c.length:
			t.Errorf("Generate(%d) gave %d characters", c.length, len(pw))
		case !c.ok && err == nil:
			t.Errorf("Generate(%d) accepted the length", c.length)
		case !c.ok && !strings.Contains(err.Error(), "out of range 14-128"):
			t.Errorf("Generate(%d): %v", c.length, err)
		}
	}
}

// classes reports which of the generator's classes pw holds.
func classes(pw string) (upper, lower, digit, symbol bool) {
	return strings.ContainsAny(pw, upperChars), strings.ContainsAny(pw, lowerChars),
		strings.ContainsAny(pw, digitChars), strings.ContainsAny(pw, symbolChars)
}

// TestGenerateProperties draws many passwords and checks what every one
// must have, that none repeats, and that characters are spread evenly.
func TestGenerateProperties(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	seen := make(map[string]bool, n)
	counts := map[rune]int{}
	total := 0
	for i := range n {
		length := MinLength + i%(MaxLength-MinLength+1)
		pw, err := Generate(length, "administrator", "Domain Admin, Tier-0")
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != length || !utf8.ValidString(pw) {
			t.Fatalf("length %d, want %d", len(pw), length)
		}
		if u, l, d, s := classes(pw); !u || !l || !d || !s {
			t.Fatalf("a password lacks a class (upper %v lower %v digit %v symbol %v)", u, l, d, s)
		}
		if err := CheckADComplexity(pw, "administrator", "Domain Admin, Tier-0"); err != nil {
			t.Fatal(err)
		}
		for _, r := range pw {
			if !strings.ContainsRune(allChars, r) {
				t.Fatalf("character %q outside the alphabet", r)
			}
			counts[r]++
			total++
		}
		if seen[pw] {
			t.Fatal("a password repeated")
		}
		seen[pw] = true
	}
	if len(counts) != len(allChars) {
		t.Errorf("%d distinct characters used, want %d", len(counts), len(allChars))
	}
	// Each character is about 1/72 of all drawn, a little more for the
	// classes forced into every password; allow a wide margin.
	mean := float64(total) / float64(len(allChars))
	for r, c := range counts {
		if f := float64(c) / mean; f < 0.7 || f > 1.6 {
			t.Errorf("character %q drawn %d times, %.2f of the mean", r, c, f)
		}
	}
}

func TestGenerateAvoidsNames(t *testing.T) {
	// Short names that many draws would contain sooner or later.
	sam := "bob"
	for range 50 {
		pw, err := Generate(MinLength, sam, "Bob Builder")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(pw), sam) || strings.Contains(strings.ToLower(pw), "builder") {
			t.Fatal("password contains a name")
		}
	}
}

// fixedReader returns its bytes, then fails.
type fixedReader struct{ b []byte }

func (f *fixedReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, errors.New("entropy source exhausted")
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func TestGenerateRetriesWhenANameAppears(t *testing.T) {
	// Bytes chosen so the first draw is "Ka2!kimzzzzzzz": the class
	// characters, the fill, then a shuffle that leaves everything in place
	// (each j equal to i).
	idx := func(set string, c byte) byte { return byte(strings.IndexByte(set, c)) }
	var first []byte
	first = append(first, idx(upperChars, 'K'), idx(lowerChars, 'a'), idx(digitChars, '2'), idx(symbolChars, '!'))
	first = append(first, idx(allChars, 'k'), idx(allChars, 'i'), idx(allChars, 'm'))
	for range MinLength - 7 {
		first = append(first, idx(allChars, 'z'))
	}
	for i := MinLength - 1; i > 0; i-- {
		first = append(first, byte(i)) // uniform(i+1) == i: no swap
	}
	old := random
	t.Cleanup(func() { random = old })
	random = &fixedReader{b: first}
	if _, err := Generate(MinLength, "kim", ""); err == nil || !strings.Contains(err.Error(), "entropy source exhausted") {
		t.Fatalf("Generate drew once from a source that spelled the name: %v", err)
	}
	random = &fixedReader{b: bytes.Clone(first)}
	pw, err := Generate(MinLength, "nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	if pw != "Ka2!kimzzzzzzz" {
		t.Errorf("the controlled draw gave %q", pw)
	}
}

func TestGenerateFailsWithoutRandomness(t *testing.T) {
	old := random
	t.Cleanup(func() { random = old })
	random = &fixedReader{}
	if _, err := Generate(24, "", ""); err == nil || !strings.Contains(err.Error(), "read random bytes") {
		t.Fatalf("err %v", err)
	}
}

func FuzzGenerate(f *testing.F) {
	f.Add(14, "jdoe", "John Doe")
	f.Add(128, "administrator", "Admin, Domain")
	f.Add(24, "a", "")
	f.Add(20, "abc", "abc def ghi jkl mno pqr stu vwx yz")
	f.Add(0, "", "")
	f.Fuzz(func(t *testing.T, length int, sam, display string) {
		pw, err := Generate(length, sam, display)
		if length < MinLength || length > MaxLength {
			if err == nil {
				t.Fatalf("length %d accepted", length)
			}
			return
		}
		if err != nil {
			// Only names that no password can avoid may fail: a name part
			// made of every alphabet character cannot occur, so any error
			// here is a bug unless the names are pathological.
			if strings.Contains(err.Error(), "avoids the names") {
				t.Skip("names no password can avoid")
			}
			t.Fatal(err)
		}
		if len(pw) != length {
			t.Fatalf("length %d, want %d", len(pw), length)
		}
		if err := CheckADComplexity(pw, sam, display); err != nil {
			t.Fatal(err)
		}
		if u, l, d, s := classes(pw); !u || !l || !d || !s {
			t.Fatal("a class is missing")
		}
	})
}

func FuzzCheckADComplexity(f *testing.F) {
	f.Add("Abcdef12!xyz", "jdoe", "John Doe")
	f.Add("", "", "")
	f.Add("日本語abc", "ab", "a,b.c-d_e#f\tg h")
	f.Fuzz(func(t *testing.T, pw, sam, display string) {
		err := CheckADComplexity(pw, sam, display)
		if err != nil && !errors.Is(err, ErrComplexity) {
			t.Fatalf("%v does not wrap ErrComplexity", err)
		}
		if err != nil && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
			t.Fatal("the error quotes the password")
		}
		// Fewer than three categories always fails; a password holding a
		// 3+ character sAMAccountName always fails.
		if Categories(pw) < 3 && err == nil {
			t.Fatal("accepted with fewer than three categories")
		}
		if utf8.RuneCountInString(sam) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(sam)) && err == nil {
			t.Fatal("accepted a password holding the account name")
		}
	})
}

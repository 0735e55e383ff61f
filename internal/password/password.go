// Package password makes the random passwords autoimport sets when it
// rotates an administrator's password, and checks a password against Active
// Directory's complexity rule.
//
// AD's rule ("Password must meet complexity requirements", on by default in
// every domain) has two parts:
//
//   - the password must not contain the account's sAMAccountName, when that
//     is at least three characters long, nor any token of at least three
//     characters of its displayName, tokens being split on the delimiters
//     , . - _ # tab and space; both comparisons ignore case;
//   - the password must hold characters of three of these five categories:
//     upper-case letters, lower-case letters, the digits 0-9, the symbols
//     ~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/ and letters that are neither upper
//     nor lower case (as in many Asian scripts). Other characters, such as
//     currency signs, belong to no category.
//
// Length, history and minimum age are separate policy settings, not part of
// the complexity rule.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Length limits of Generate.
const (
	MinLength     = 14
	MaxLength     = 128
	DefaultLength = 24
)

// The alphabet of generated passwords. Letters and digits that are easily
// mistaken for one another when a technician reads a password aloud or off a
// screen (I l 1 O 0) are left out. The symbols are all in AD's symbol
// category and survive shells, CSV, JSON, URLs and vault forms without
// quoting: no quotes, backslash, backtick, angle brackets, ampersand,
// comma, semicolon, slash or space.
const (
	upperChars  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	lowerChars  = "abcdefghijkmnopqrstuvwxyz"
	digitChars  = "23456789"
	symbolChars = "!#$%*+-.:=?@^_~"
	allChars    = upperChars + lowerChars + digitChars + symbolChars
)

// adSymbols is the symbol category of AD's complexity rule.
const adSymbols = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"

// nameDelimiters split a displayName into tokens for the complexity rule.
const nameDelimiters = ",.-_#\t "

// maxAttempts bounds how often Generate draws again because a password
// contained a part of the account's names. With 14 or more characters drawn
// from 72, one draw in millions needs a second try.
const maxAttempts = 1000

// random is where Generate reads its randomness; tests replace it.
var random io.Reader = rand.Reader

// Generate returns a random password of length characters (MinLength to
// MaxLength) drawn with crypto/rand. It holds at least one upper-case
// letter, one lower-case letter, one digit and one symbol, and meets AD's
// complexity rule for the account named samAccountName and displayName
// (either may be empty).
func Generate(length int, samAccountName, displayName string) (string, error) {
	if length < MinLength || length > MaxLength {
		return "", fmt.Errorf("password: length %d out of range %d-%d", length, MinLength, MaxLength)
	}
	buf := make([]byte, length)
	for range maxAttempts {
		if err := fill(buf); err != nil {
			return "", fmt.Errorf("password: read random bytes: %w", err)
		}
		pw := string(buf)
		if CheckADComplexity(pw, samAccountName, displayName) == nil {
			clear(buf)
			return pw, nil
		}
	}
	return "", fmt.Errorf("password: no password of length %d avoids the names of %q after %d tries", length, samAccountName, maxAttempts)
}

// fill writes one character of each class into buf, fills the rest from the
// whole alphabet and shuffles it all.
func fill(buf []byte) error {
	for i, set := range []string{upperChars, lowerChars, digitChars, symbolChars} {
		n, err := uniform(len(set))
		if err != nil {
			return err
		}
		buf[i] = set[n]
	}
	for i := 4; i < len(buf); i++ {
		n, err := uniform(len(allChars))
		if err != nil {
			return err
		}
		buf[i] = allChars[n]
	}
	// Fisher-Yates, so the class characters are not always in front.
	for i := len(buf) - 1; i > 0; i-- {
		j, err := uniform(i + 1)
		if err != nil {
			return err
		}
		buf[i], buf[j] = buf[j], buf[i]
	}
	return nil
}

// uniform returns a uniformly distributed integer in [0, n), n <= 256, by
// rejection sampling of random bytes.
func uniform(n int) (int, error) {
	limit := 256 - 256%n
	var b [1]byte
	for {
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return 0, err
		}
		if int(b[0]) < limit {
			return int(b[0]) % n, nil
		}
	}
}

// ErrComplexity marks a password that fails AD's complexity rule.
var ErrComplexity = errors.New("password does not meet the complexity requirements")

// CheckADComplexity reports whether pw meets Active Directory's complexity
// rule for the account with sAMAccountName sam and displayName display. The
// error wraps ErrComplexity and says which part failed; it never quotes the
// password or the part of a name found in it.
func CheckADComplexity(pw, sam, display string) error {
	lower := strings.ToLower(pw)
	if len([]rune(sam)) >= 3 && strings.Contains(lower, strings.ToLower(sam)) {
		return fmt.Errorf("%w: it contains the account name", ErrComplexity)
	}
	for _, tok := range DisplayNameTokens(display) {
		if strings.Contains(lower, strings.ToLower(tok)) {
			return fmt.Errorf("%w: it contains a part of the display name", ErrComplexity)
		}
	}
	if n := Categories(pw); n < 3 {
		return fmt.Errorf("%w: it uses %d of the character categories, at least 3 are needed (upper-case letters, lower-case letters, digits, symbols, other letters)", ErrComplexity, n)
	}
	return nil
}

// DisplayNameTokens splits a displayName on AD's delimiters and returns the
// tokens of three or more characters, the parts a password must not contain.
func DisplayNameTokens(display string) []string {
	var out []string
	for _, tok := range strings.FieldsFunc(display, func(r rune) bool { return strings.ContainsRune(nameDelimiters, r) }) {
		if len([]rune(tok)) >= 3 {
			out = append(out, tok)
		}
	}
	return out
}

// Categories counts the character categories of AD's complexity rule that
// pw uses (0 to 5).
func Categories(pw string) int {
	var upper, lower, digit, symbol, other bool
	for _, r := range pw {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune(adSymbols, r):
			symbol = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsLetter(r):
			other = true
		}
	}
	n := 0
	for _, b := range []bool{upper, lower, digit, symbol, other} {
		if b {
			n++
		}
	}
	return n
}

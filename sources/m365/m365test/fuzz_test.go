package m365test

import (
	"strings"
	"testing"
)

// FuzzParseFilter feeds the fake's $filter parser outside input: it must
// answer with clauses or an error, never panic, and flag the operators that
// need advanced query capabilities.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"displayName eq 'Finance'",
		"displayName eq 'O''Brien team'",
		"accountEnabled eq true and userType eq 'Member'",
		"userType ne 'Guest'",
		"startsWith(displayName,'Fin')",
		"endsWith(mail,'@contoso.example')",
		"not(userType eq 'Guest')",
		"displayName eq 'a and b' and mail eq null",
		"eq eq eq", "(", "'", "startsWith(", "x eq 'unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		clauses, adv, err := parseFilter(filter)
		if err != nil {
			return
		}
		for _, c := range clauses {
			if c.fn == "" && c.op != "eq" && c.op != "ne" {
				t.Fatalf("clause %+v has no operator", c)
			}
			if (c.op == "ne" || c.fn == "endswith") && !adv {
				t.Fatalf("%q needs advanced queries but was not flagged", filter)
			}
		}
		if len(clauses) == 0 && strings.TrimSpace(filter) != "" {
			t.Fatalf("%q parsed to nothing", filter)
		}
	})
}

// FuzzDecodeState feeds skip and delta tokens from outside: a token either
// decodes to a non-negative position or is refused.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(state{P: 40, S: "id"}))
	f.Add(encodeState(state{T1: 9, At: 1}))
	f.Add("garbage")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		st, ok := decodeState(tok)
		if ok && st.P < 0 {
			t.Fatalf("negative position from %q", tok)
		}
		if ok {
			if back, ok2 := decodeState(encodeState(st)); !ok2 || back != st {
				t.Fatalf("state %+v does not round-trip", st)
			}
		}
	})
}

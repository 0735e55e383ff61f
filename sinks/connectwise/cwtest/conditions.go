package cwtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// A condition is a parsed ConnectWise conditions expression. The grammar
// handled is the subset autoimport and common clients send: comparisons
// `field op value` with op one of = != < <= > >= contains like, `in (a,b)`,
// `not`, `and` / `or` (and binding tighter) and parentheses; values are
// "double-quoted strings", numbers, true/false/null or [dates].
type condition func(get func(field string) (any, bool)) bool

type token struct {
	kind string // "word", "string", "op", "(", ")", ",", "date"
	text string
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',':
			out = append(out, token{kind: string(c), text: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == '"' {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{kind: "string", text: b.String()})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated date at %d", i)
			}
			out = append(out, token{kind: "date", text: s[i+1 : i+j]})
			i += j + 1
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, fmt.Errorf("bad operator at %d", i)
			}
			out = append(out, token{kind: "op", text: op})
			i = j
		default:
			j := i
			for j < len(s) {
				r := rune(s[j])
				if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '/' || r == '_' || r == '.' || r == '-' || r == '+') {
					break
				}
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			out = append(out, token{kind: "word", text: s[i:j]})
			i = j
		}
	}
	return out, nil
}

type parser struct {
	toks   []token
	pos    int
	fields map[string]bool
}

// parseConditions parses an expression over the given fields (case-
// insensitive names).
func parseConditions(s string, fields map[string]bool) (condition, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return func(func(string) (any, bool)) bool { return true }, nil
	}
	p := &parser{toks: toks, fields: fields}
	c, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return c, nil
}

func (p *parser) peekWord(w string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == "word" && strings.EqualFold(p.toks[p.pos].text, w)
}

func (p *parser) or(depth int) (condition, error) {
	if depth > 50 {
		return nil, fmt.Errorf("expression nested too deeply")
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.peekWord("or") {
		p.pos++
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(g func(string) (any, bool)) bool { return a(g) || b(g) }
	}
	return l, nil
}

func (p *parser) and(depth int) (condition, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.peekWord("and") {
		p.pos++
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(g func(string) (any, bool)) bool { return a(g) && b(g) }
	}
	return l, nil
}

func (p *parser) unary(depth int) (condition, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("unexpected end of conditions")
	}
	if p.peekWord("not") {
		p.pos++
		c, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return func(g func(string) (any, bool)) bool { return !c(g) }, nil
	}
	if p.toks[p.pos].kind == "(" {
		p.pos++
		c, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return c, nil
	}
	return p.comparison()
}

func (p *parser) value() (any, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("missing value")
	}
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case "string", "date":
		return t.text, nil
	case "word":
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("value %s must be quoted", t.text)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unexpected %q where a value belongs", t.text)
}

func (p *parser) comparison() (condition, error) {
	t := p.toks[p.pos]
	if t.kind != "word" {
		return nil, fmt.Errorf("unexpected %q where a field belongs", t.text)
	}
	field := strings.ToLower(t.text)
	if !p.fields[field] {
		return nil, fmt.Errorf("unknown field %s", t.text)
	}
	p.pos++
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("missing operator after %s", t.text)
	}
	op := p.toks[p.pos]
	p.pos++
	var opText string
	switch {
	case op.kind == "op":
		opText = op.text
	case op.kind == "word" && (strings.EqualFold(op.text, "contains") || strings.EqualFold(op.text, "like") || strings.EqualFold(op.text, "in")):
		opText = strings.ToLower(op.text)
	case op.kind == "word" && strings.EqualFold(op.text, "not") && p.peekWord("in"):
		p.pos++
		opText = "not in"
	default:
		return nil, fmt.Errorf("unknown operator %q", op.text)
	}
	if opText == "in" || opText == "not in" {
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != "(" {
			return nil, fmt.Errorf("in needs a list")
		}
		p.pos++
		var vals []any
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
			if p.pos < len(p.toks) && p.toks[p.pos].kind == "," {
				p.pos++
				continue
			}
			break
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != ")" {
			return nil, fmt.Errorf("missing ) after in list")
		}
		p.pos++
		neg := opText == "not in"
		return func(g func(string) (any, bool)) bool {
			got, _ := g(field)
			for _, v := range vals {
				if compare(got, v) == 0 {
					return !neg
				}
			}
			return neg
		}, nil
	}
	want, err := p.value()
	if err != nil {
		return nil, err
	}
	return func(g func(string) (any, bool)) bool {
		got, ok := g(field)
		if !ok {
			return false
		}
		switch opText {
		case "contains":
			return strings.Contains(strings.ToLower(fmt.Sprint(got)), strings.ToLower(fmt.Sprint(want)))
		case "like":
			return like(strings.ToLower(fmt.Sprint(got)), strings.ToLower(fmt.Sprint(want)))
		}
		c := compare(got, want)
		switch opText {
		case "=":
			return c == 0
		case "!=":
			return c != 0
		case "<":
			return c == -1
		case "<=":
			return c == -1 || c == 0
		case ">":
			return c == 1
		case ">=":
			return c == 1 || c == 0
		}
		return false
	}, nil
}

// compare returns -1, 0, 1, or 2 when the values do not compare. Strings
// compare case-insensitively, as ConnectWise's SQL collation does.
func compare(a, b any) int {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 0
		}
		return 2
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 2
		}
		if x == y {
			return 0
		}
		return 2
	case int:
		y, ok := b.(float64)
		if !ok {
			return 2
		}
		return cmp3(float64(x), y)
	case string:
		y, ok := b.(string)
		if !ok {
			return 2
		}
		return strings.Compare(strings.ToLower(x), strings.ToLower(y))
	}
	return 2
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// like matches SQL LIKE with % wildcards.
func like(s, pat string) bool {
	parts := strings.Split(pat, "%")
	if len(parts) == 1 {
		return s == pat
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

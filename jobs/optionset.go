package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Numbers holds numeric option values; a key that is absent is not set.
type Numbers map[Option]int

// OptionSet is one options mapping as a policy holds it, as a customer
// holds it for an account type, or as a change sets it: the on/off options
// and the numeric ones side by side. A tenant file and the stored JSON
// documents write it as one mapping, {rotation: true, rotation_days: 14};
// a document of booleans only reads as it always did.
type OptionSet struct {
	Values  Values
	Numbers Numbers
}

// IsZero reports whether nothing is set.
func (o OptionSet) IsZero() bool { return len(o.Values) == 0 && len(o.Numbers) == 0 }

// merged is the set as one mapping of key to bool or int.
func (o OptionSet) merged() map[Option]any {
	m := make(map[Option]any, len(o.Values)+len(o.Numbers))
	for k, b := range o.Values {
		m[k] = b
	}
	for k, n := range o.Numbers {
		m[k] = n
	}
	return m
}

// String renders the set as sorted key=value pairs.
func (o OptionSet) String() string {
	m := o.merged()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s=%v", k, m[Option(k)])
	}
	return strings.Join(keys, " ")
}

// MarshalJSON writes the set as one object with sorted keys; an empty set
// is {}.
func (o OptionSet) MarshalJSON() ([]byte, error) { return json.Marshal(o.merged()) }

// UnmarshalJSON reads one object: a numeric option must be a whole number,
// any other key true or false. Values is never nil after a non-null
// document, as it was when options were booleans only.
func (o *OptionSet) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*o = OptionSet{}
		return nil
	}
	var raw map[Option]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := OptionSet{Values: Values{}}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		r := strings.TrimSpace(string(raw[k]))
		n, isInt := wholeNumber(r)
		var flag bool
		isBool := json.Unmarshal(raw[k], &flag) == nil
		if err := out.set(k, flag, isBool, n, isInt, r); err != nil {
			return err
		}
	}
	*o = out
	return nil
}

// MarshalYAML writes the set as one mapping (sorted keys, as yaml writes
// maps).
func (o OptionSet) MarshalYAML() (any, error) { return o.merged(), nil }

// UnmarshalYAML reads one mapping: a numeric option must be a whole number,
// any other key true or false (yes/no and on/off included, as for every
// boolean of a tenant file). Errors carry the line of the value; several
// are reported together.
func (o *OptionSet) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: options: want a mapping of option: value (e.g. {paused: false}), not %s", n.Line, describeNode(n))}}
	}
	// Decoding into a map finds duplicated keys and resolves merge keys.
	var raw map[Option]yaml.Node
	if err := n.Decode(&raw); err != nil {
		return err
	}
	keys := slices.Collect(maps.Keys(raw))
	sort.Slice(keys, func(i, j int) bool {
		a, b := raw[keys[i]], raw[keys[j]]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return keys[i] < keys[j]
	})
	out := OptionSet{Values: Values{}}
	var errs []string
	for _, k := range keys {
		v := raw[k]
		vn := &v
		for vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		var num int
		isInt := vn.Kind == yaml.ScalarNode && vn.ShortTag() == "!!int"
		if isInt {
			num, isInt = wholeNumber(vn.Value)
		}
		var flag bool
		isBool := vn.Kind == yaml.ScalarNode && vn.Decode(&flag) == nil
		if err := out.set(k, flag, isBool, num, isInt, describeNode(vn)); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", vn.Line, err))
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	*o = out
	return nil
}

// set records one key read from a document. A numeric option takes a
// whole number only, an on/off option true or false only. A key that is no
// option at all is kept as what it looks like, so that validation names it
// as an unknown option of the account type.
func (o *OptionSet) set(k Option, flag, isBool bool, num int, isInt bool, written string) error {
	switch {
	case isNumberKey(k) && isInt:
		if o.Numbers == nil {
			o.Numbers = Numbers{}
		}
		o.Numbers[k] = num
	case isNumberKey(k):
		return fmt.Errorf("option %s: want %s, not %s", k, numberWant(k), written)
	case isBool:
		o.Values[k] = flag
	case isInt && !isFlagKey(k):
		if o.Numbers == nil {
			o.Numbers = Numbers{}
		}
		o.Numbers[k] = num
	default:
		return fmt.Errorf("option %s: want true or false, not %s", k, written)
	}
	return nil
}

// decimal is how a whole number is written: no sign but minus, no leading
// zero (YAML would read 030 as octal 24), no exponent or fraction.
var decimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// wholeNumber reads a whole number written in decimal.
func wholeNumber(s string) (int, bool) {
	if !decimal.MatchString(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// describeNode says what a YAML value is, for an error message.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return n.ShortTag()
}

// isNumberKey reports whether k is a numeric option of some account type.
func isNumberKey(k Option) bool {
	_, ok := numberRanges[k]
	return ok
}

// isFlagKey reports whether k is an on/off option of some account type.
func isFlagKey(k Option) bool {
	for _, keys := range optionKeys {
		if slices.Contains(keys, k) {
			return true
		}
	}
	return false
}

// numberWant says what a numeric option accepts.
func numberWant(k Option) string {
	r := numberRanges[k]
	return fmt.Sprintf("a whole number from %d to %d", r.Min, r.Max)
}

// OptionSet returns the policy's options, on/off and numeric.
func (p Policy) OptionSet() OptionSet { return OptionSet{Values: p.Options, Numbers: p.Numbers} }

// OptionSet returns the customer's own options for an account type.
func (c Customer) OptionSet(t AccountType) OptionSet {
	return OptionSet{Values: c.Options[t], Numbers: c.Numbers[t]}
}

// optionTypes lists the account types the customer has options of, on/off
// or numeric, in display order first.
func (c Customer) optionTypes() []AccountType {
	var out []AccountType
	for t := range c.Options {
		out = append(out, t)
	}
	for t := range c.Numbers {
		if _, ok := c.Options[t]; !ok {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := slices.Index(AccountTypes, out[i]), slices.Index(AccountTypes, out[j])
		if ri != rj {
			return uint(ri) < uint(rj) // unknown types (-1) last
		}
		return out[i] < out[j]
	})
	return out
}

func (c Customer) optionSets() map[AccountType]OptionSet {
	if len(c.Options) == 0 && len(c.Numbers) == 0 {
		return nil
	}
	out := map[AccountType]OptionSet{}
	for _, t := range c.optionTypes() {
		out[t] = c.OptionSet(t)
	}
	return out
}

func (c *Customer) setOptionSets(sets map[AccountType]OptionSet) {
	c.Options, c.Numbers = nil, nil
	for t, o := range sets {
		if c.Options == nil {
			c.Options = map[AccountType]Values{}
		}
		v := o.Values
		if v == nil {
			v = Values{}
		}
		c.Options[t] = v
		if len(o.Numbers) > 0 {
			if c.Numbers == nil {
				c.Numbers = map[AccountType]Numbers{}
			}
			c.Numbers[t] = o.Numbers
		}
	}
}

// policyFields and customerFields are Policy and Customer without their
// methods; policyDoc and customerDoc add the options mapping that holds
// Options and Numbers together.
type (
	policyFields Policy
	policyDoc    struct {
		policyFields `yaml:",inline"`
		Options      OptionSet `yaml:"options" json:"options"`
	}
	customerFields Customer
	customerDoc    struct {
		customerFields `yaml:",inline"`
		Options        map[AccountType]OptionSet `yaml:"options,omitempty" json:"options,omitempty"`
	}
)

// MarshalJSON writes the policy with one options object.
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyDoc{policyFields(p), p.OptionSet()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var d policyDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*p = Policy(d.policyFields)
	p.Options, p.Numbers = d.Options.Values, d.Options.Numbers
	return nil
}

// MarshalYAML writes the policy with one options mapping.
func (p Policy) MarshalYAML() (any, error) {
	return policyDoc{policyFields(p), p.OptionSet()}, nil
}

// UnmarshalYAML reads a policy of a tenant file. It has the form that
// decodes with the caller's decoder, so that unknown fields stay errors
// and errors keep their lines.
func (p *Policy) UnmarshalYAML(unmarshal func(any) error) error {
	var d policyDoc
	if err := unmarshal(&d); err != nil {
		return err
	}
	*p = Policy(d.policyFields)
	p.Options, p.Numbers = d.Options.Values, d.Options.Numbers
	return nil
}

// MarshalJSON writes the customer with one options object per type.
func (c Customer) MarshalJSON() ([]byte, error) {
	return json.Marshal(customerDoc{customerFields(c), c.optionSets()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Customer) UnmarshalJSON(b []byte) error {
	var d customerDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*c = Customer(d.customerFields)
	c.setOptionSets(d.Options)
	return nil
}

// MarshalYAML writes the customer with one options mapping per type,
// where options have always been written: after the policy assignments.
func (c Customer) MarshalYAML() (any, error) {
	var n yaml.Node
	if err := n.Encode(customerFields(c)); err != nil {
		return nil, err
	}
	sets := c.optionSets()
	if len(sets) == 0 || n.Kind != yaml.MappingNode {
		return &n, nil
	}
	var k, v yaml.Node
	k.SetString("options")
	if err := v.Encode(sets); err != nil {
		return nil, err
	}
	at := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "id", "name", "policies":
			at = i + 2
		}
	}
	n.Content = slices.Insert(n.Content, at, &k, &v)
	return &n, nil
}

// UnmarshalYAML reads a customer of a tenant file with the caller's
// decoder (see Policy.UnmarshalYAML).
func (c *Customer) UnmarshalYAML(unmarshal func(any) error) error {
	var d customerDoc
	if err := unmarshal(&d); err != nil {
		return err
	}
	*c = Customer(d.customerFields)
	c.setOptionSets(d.Options)
	return nil
}

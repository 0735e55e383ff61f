package jobs

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Option is the key of an Automatic Import Option.
type Option string

// The option keys.
const (
	Paused       Option = "paused"
	VaultMatch   Option = "vault_match"
	VaultCreate  Option = "vault_create"
	WelcomeEmail Option = "welcome_email"
	PSAMatch     Option = "psa_match"
	PSACreate    Option = "psa_create"
	SelfServe    Option = "self_serve"
	M365Sync     Option = "m365_sync"
	Rotation     Option = "rotation"
)

var optionKeys = map[AccountType][]Option{
	EndUser: {Paused, VaultMatch, VaultCreate, WelcomeEmail, PSAMatch, PSACreate, SelfServe, M365Sync},
	Admin:   {Paused, Rotation, VaultMatch, VaultCreate},
}

// OptionKeys lists the options of an account type in display order.
func OptionKeys(t AccountType) []Option { return optionKeys[t] }

// Values holds option values; a key that is absent is not set.
type Values map[Option]bool

// Clone copies v.
func (v Values) Clone() Values {
	if v == nil {
		return nil
	}
	out := make(Values, len(v))
	for k, b := range v {
		out[k] = b
	}
	return out
}

// Equal reports whether both hold the same settings.
func (v Values) Equal(o Values) bool {
	if len(v) != len(o) {
		return false
	}
	for k, b := range v {
		if ob, ok := o[k]; !ok || ob != b {
			return false
		}
	}
	return true
}

// String renders the values as sorted key=value pairs.
func (v Values) String() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + strconv.FormatBool(v[Option(k)])
	}
	return strings.Join(keys, " ")
}

// CheckKeys refuses option names that the account type does not have.
func (v Values) CheckKeys(t AccountType) error {
	for k := range v {
		if !slices.Contains(optionKeys[t], k) {
			return unknownOption(t, string(k))
		}
	}
	return nil
}

func unknownOption(t AccountType, k string) error {
	var names []string
	for _, o := range slices.Concat(optionKeys[t], numberKeys[t]) {
		names = append(names, string(o))
	}
	other := ""
	for _, ot := range AccountTypes {
		if ot != t && (slices.Contains(optionKeys[ot], Option(k)) || slices.Contains(numberKeys[ot], Option(k))) {
			other = fmt.Sprintf(" (it is an %s option)", ot)
		}
	}
	return &UsageError{Msg: fmt.Sprintf("unknown %s option %q%s: the %s options are %s", t, k, other, t, strings.Join(names, ", "))}
}

// ParseAssignments reads "key=value" words for an account type, e.g.
// ["welcome_email=off", "self_serve=true"] or ["rotation_days=14"]: an
// on/off option takes true/false (on/off, yes/no, 1/0), a numeric option a
// whole number in its range.
func ParseAssignments(t AccountType, words []string) (OptionSet, error) {
	if len(words) == 0 {
		return OptionSet{}, &UsageError{Msg: "no option given: write key=value, e.g. welcome_email=false"}
	}
	o := OptionSet{Values: Values{}}
	for _, w := range words {
		k, val, ok := strings.Cut(w, "=")
		if !ok {
			return OptionSet{}, &UsageError{Msg: fmt.Sprintf("%q: write key=value, e.g. welcome_email=false", w)}
		}
		key := Option(strings.TrimSpace(k))
		switch {
		case slices.Contains(numberKeys[t], key):
			n, ok := wholeNumber(strings.TrimSpace(val))
			if !ok {
				return OptionSet{}, &UsageError{Msg: fmt.Sprintf("option %s: want %s, not %q", key, numberWant(key), val)}
			}
			if err := CheckNumber(key, n); err != nil {
				return OptionSet{}, err
			}
			if o.Numbers == nil {
				o.Numbers = Numbers{}
			}
			o.Numbers[key] = n
		case slices.Contains(optionKeys[t], key):
			b, err := parseBool(val)
			if err != nil {
				return OptionSet{}, &UsageError{Msg: fmt.Sprintf("option %s: %v", key, err)}
			}
			o.Values[key] = b
		default:
			return OptionSet{}, unknownOption(t, string(key))
		}
	}
	return o, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("want true or false (or on/off), not %q", s)
}

// BuiltinDefaults are the options in force when nothing is set: end users
// all off except self_serve; administrators stored in the vault, not rotated.
func BuiltinDefaults(t AccountType) Values {
	if t == Admin {
		return Values{Paused: false, Rotation: false, VaultMatch: true, VaultCreate: true}
	}
	return Values{Paused: false, VaultMatch: false, VaultCreate: false, WelcomeEmail: false, PSAMatch: false, PSACreate: false, SelfServe: true, M365Sync: false}
}

// Origin says where a resolved option value comes from.
type Origin string

// The origins of a value.
const (
	FromPolicy          Origin = "policy"           // the customer's assigned policy
	FromDefaultPolicy   Origin = "default-policy"   // the type's default policy
	FromCustomer        Origin = "customer"         // customer-specific options
	FromBuiltin         Origin = "built-in"         // nothing set
	FromTechnicianVault Origin = "technician-vault" // forced on by the Technician Vault
)

// Setting is one option as resolved for a customer.
type Setting struct {
	Key    Option `json:"key"`
	Value  bool   `json:"value"`
	Origin Origin `json:"origin"`
	// Policy names the policy for the policy origins.
	Policy string `json:"policy,omitempty"`
	// Available is false when an integration or mapping it needs is
	// missing; Reason then says which.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// Locked is true when the value cannot be changed (admin vault storage
	// with the Technician Vault).
	Locked bool `json:"locked,omitempty"`
	// Effective is what an import does: the value, when available and when
	// the options it depends on are effective.
	Effective bool `json:"effective"`
}

// The numeric options of administrators: the days between two rotations
// of a password and the length of a new one.
const (
	RotationDays   Option = "rotation_days"
	RotationLength Option = "rotation_length"
)

// NumberRange is what a numeric option accepts, and its built-in default.
type NumberRange struct{ Min, Max, Default int }

var numberRanges = map[Option]NumberRange{
	RotationDays:   {Min: 1, Max: 365, Default: 30},
	RotationLength: {Min: 14, Max: 128, Default: 24},
}

var numberKeys = map[AccountType][]Option{Admin: {RotationDays, RotationLength}}

// NumberKeys lists the numeric options of an account type.
func NumberKeys(t AccountType) []Option { return numberKeys[t] }

// RangeOf is what a numeric option accepts.
func RangeOf(k Option) NumberRange { return numberRanges[k] }

// CheckNumber refuses a value out of a numeric option's range.
func CheckNumber(k Option, n int) error {
	if msg := outOfRange(k, n); msg != "" {
		return &UsageError{Msg: fmt.Sprintf("option %s: %s", k, msg)}
	}
	return nil
}

// outOfRange says why n is out of k's range; "" when it is in it.
func outOfRange(k Option, n int) string {
	if r := numberRanges[k]; n < r.Min || n > r.Max {
		return fmt.Sprintf("%d is out of range: want %s", n, numberWant(k))
	}
	return ""
}

// CheckNumbers refuses numeric options the account type does not have and
// values out of their range.
func CheckNumbers(t AccountType, n Numbers) error {
	for _, k := range slices.Sorted(maps.Keys(n)) {
		if !slices.Contains(numberKeys[t], k) {
			return unknownOption(t, string(k))
		}
		if err := CheckNumber(k, n[k]); err != nil {
			return err
		}
	}
	return nil
}

// NumberSetting is one numeric option as resolved for a customer.
type NumberSetting struct {
	Key    Option `json:"key"`
	Value  int    `json:"value"`
	Origin Origin `json:"origin"`
	Policy string `json:"policy,omitempty"`
	// Available is true: a numeric option needs no integration. Effective
	// is the value future rotations use, which is Value.
	Available bool `json:"available"`
	Effective int  `json:"effective"`
}

// Resolved are the options in force for a customer and account type.
type Resolved struct {
	Customer string      `json:"customer"`
	Type     AccountType `json:"type"`
	// Origin is where the options come from as a whole; Policy names the
	// policy when it is one.
	Origin   Origin    `json:"origin"`
	Policy   string    `json:"policy,omitempty"`
	Settings []Setting `json:"options"`
	// Numbers are the numeric options of the type (administrators'
	// rotation_days and rotation_length).
	Numbers  []NumberSetting `json:"numbers,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

// Number returns the resolved numeric option k; its built-in default
// when the type has no such option.
func (r Resolved) Number(k Option) NumberSetting {
	for _, n := range r.Numbers {
		if n.Key == k {
			return n
		}
	}
	return NumberSetting{Key: k, Value: numberRanges[k].Default, Origin: FromBuiltin}
}

// Setting returns the resolved setting of one key.
func (r Resolved) Setting(k Option) Setting {
	for _, s := range r.Settings {
		if s.Key == k {
			return s
		}
	}
	return Setting{Key: k}
}

// On reports whether an option takes effect on imports.
func (r Resolved) On(k Option) bool { return r.Setting(k).Effective }

// Snapshot returns the effective values, as recorded with each import.
func (r Resolved) Snapshot() Values {
	v := Values{}
	for _, s := range r.Settings {
		v[s.Key] = s.Effective
	}
	return v
}

// Capabilities are the integrations and mappings a customer has, which
// decide what options are available.
type Capabilities struct {
	// Vaults names the documentation vaults the customer is mapped to
	// ("IT Glue", "Hudu").
	Vaults    []string
	TechVault bool
	PSA       string // the PSA's name when the customer is mapped to a company in it
	SMTP      bool
	M365      bool
	// missing explains what is missing, by need.
	noVault, noPSA, noSMTP, noM365 string
}

// CapabilitiesOf works out what a customer can use.
func CapabilitiesOf(in Integrations, c Customer) Capabilities {
	var cp Capabilities
	var why []string
	if in.ITGlue != nil && c.Vault.ITGlueOrganizationID != "" {
		cp.Vaults = append(cp.Vaults, "IT Glue")
	}
	if in.Hudu != nil && c.Vault.HuduCompanyID != "" {
		cp.Vaults = append(cp.Vaults, "Hudu")
	}
	cp.TechVault = in.TechVaultEnabled()
	if len(cp.Vaults) == 0 {
		switch {
		case in.ITGlue == nil && in.Hudu == nil:
			why = append(why, "no IT Glue or Hudu integration is configured")
		case c.Vault.ITGlueOrganizationID == "" && c.Vault.HuduCompanyID == "":
			why = append(why, "customer "+c.ID+" is not mapped to an IT Glue organization or Hudu company (set vault.itglue_organization_id or vault.hudu_company_id)")
		default:
			why = append(why, "customer "+c.ID+" is mapped to a vault whose integration is not configured")
		}
		if !cp.TechVault {
			why = append(why, "the Technician Vault is not enabled")
		}
		cp.noVault = strings.Join(why, "; ")
	}
	switch psa, kinds := in.PSAKindOf(c), in.PSAKinds(); {
	case len(kinds) == 0:
		cp.noPSA = "no PSA integration (ConnectWise, Autotask or HaloPSA) is configured"
	case c.PSA.CompanyID == "" && len(kinds) == 1:
		cp.noPSA = "customer " + c.ID + " is not mapped to a " + psaName(kinds[0]) + " company (set psa.company_id)"
	case c.PSA.CompanyID == "":
		cp.noPSA = "customer " + c.ID + " is not mapped to a PSA company (set psa.kind and psa.company_id)"
	case psa == "" && c.PSA.Kind != "":
		cp.noPSA = "customer " + c.ID + " is mapped to " + c.PSA.Kind + ", which is not configured"
	case psa == "":
		cp.noPSA = "customer " + c.ID + " does not say which PSA its company is in (set psa.kind: connectwise, autotask or halopsa)"
	default:
		cp.PSA = psaName(psa)
	}
	if in.SMTP != nil {
		cp.SMTP = true
	} else {
		cp.noSMTP = "no SMTP relay is configured for welcome emails (integrations.smtp)"
	}
	switch {
	case in.M365 == nil:
		cp.noM365 = "no Microsoft 365 app registration is configured (integrations.m365)"
	case c.Sources.M365 == nil || c.Sources.M365.TenantID == "":
		cp.noM365 = "customer " + c.ID + " has no Microsoft 365 tenant connected (sources.m365.tenant_id)"
	default:
		cp.M365 = true
	}
	return cp
}

func psaName(kind string) string {
	switch kind {
	case "connectwise":
		return "ConnectWise PSA"
	case "autotask":
		return "Autotask"
	case "halopsa":
		return "HaloPSA"
	}
	return kind
}

// Resolve works out the options in force for a customer and account type:
// the assigned policy; else, for a customer taken out of policies, its own
// options; else the default policy; else the built-in defaults. Each value
// says where it comes from and whether it is available.
func Resolve(t *Tenant, c Customer, typ AccountType) Resolved {
	r := Resolved{Customer: c.ID, Type: typ}
	var set Values
	var nums Numbers
	switch a := c.PolicyAssignment(typ); {
	case a == NoPolicy:
		r.Origin, set, nums = FromCustomer, c.Options[typ], c.Numbers[typ]
	case a != "":
		if p, ok := t.Policy(typ, a); ok {
			r.Origin, r.Policy, set, nums = FromPolicy, p.Name, p.Options, p.Numbers
		} else {
			// An assignment to a policy that no longer exists: fall back
			// to the built-in defaults and say so.
			r.Origin = FromBuiltin
			r.Warnings = append(r.Warnings, fmt.Sprintf("assigned %s policy %q does not exist; built-in defaults apply", typ, a))
		}
	default:
		if p, ok := t.DefaultPolicy(typ); ok {
			r.Origin, r.Policy, set, nums = FromDefaultPolicy, p.Name, p.Options, p.Numbers
		} else {
			r.Origin = FromBuiltin
		}
	}
	builtin := BuiltinDefaults(typ)
	cp := CapabilitiesOf(t.Integrations, c)
	for _, k := range optionKeys[typ] {
		s := Setting{Key: k, Value: builtin[k], Origin: FromBuiltin}
		if v, ok := set[k]; ok {
			s.Value, s.Origin, s.Policy = v, r.Origin, r.Policy
		}
		r.Settings = append(r.Settings, s)
	}
	for _, k := range numberKeys[typ] {
		n := NumberSetting{Key: k, Value: numberRanges[k].Default, Origin: FromBuiltin, Available: true}
		if v, ok := nums[k]; ok {
			if err := CheckNumber(k, v); err != nil {
				// Only a store changed outside autoimport holds such a
				// value: the rotation job must not use it.
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s (%s); built-in %d applies", err, originWords(r.Origin, r.Policy), n.Value))
			} else {
				n.Value, n.Origin, n.Policy = v, r.Origin, r.Policy
			}
		}
		n.Effective = n.Value
		r.Numbers = append(r.Numbers, n)
	}
	applyAvailability(&r, cp)
	r.Warnings = append(r.Warnings, rolloutWarnings(r)...)
	return r
}

func originWords(o Origin, policy string) string {
	switch o {
	case FromPolicy:
		return "policy " + quote(policy)
	case FromDefaultPolicy:
		return "default policy " + quote(policy)
	case FromCustomer:
		return "customer-specific"
	}
	return string(o)
}

// applyAvailability marks each setting available or not, with the reason,
// and computes what takes effect.
func applyAvailability(r *Resolved, cp Capabilities) {
	idx := map[Option]int{}
	for i, s := range r.Settings {
		idx[s.Key] = i
	}
	set := func(k Option, avail bool, reason string) {
		i := idx[k]
		r.Settings[i].Available = avail
		if !avail {
			r.Settings[i].Reason = reason
		}
	}
	get := func(k Option) *Setting { return &r.Settings[idx[k]] }
	effective := func(k Option) bool { s := get(k); return s.Available && s.Value }

	set(Paused, true, "")
	if r.Type == Admin {
		docVault := len(cp.Vaults) > 0
		for _, k := range []Option{VaultMatch, VaultCreate} {
			switch {
			case cp.TechVault:
				s := get(k)
				s.Available, s.Locked, s.Value = true, true, true
				s.Origin, s.Policy = FromTechnicianVault, ""
				s.Reason = "always on with the Technician Vault: rotation and change monitoring rely on it"
			case docVault:
				set(k, true, "")
			default:
				set(k, false, cp.noVault)
			}
		}
		if !effective(VaultMatch) && get(VaultMatch).Available {
			set(VaultCreate, false, "vault_create needs vault_match on")
		}
		if effective(VaultMatch) {
			set(Rotation, true, "")
		} else if get(VaultMatch).Available {
			set(Rotation, false, "rotation needs vault storage: turn vault_match on")
		} else {
			set(Rotation, false, "rotation needs vault storage: "+cp.noVault)
		}
	} else {
		if len(cp.Vaults) > 0 || cp.TechVault {
			set(VaultMatch, true, "")
			if effective(VaultMatch) {
				set(VaultCreate, true, "")
			} else {
				set(VaultCreate, false, "vault_create needs vault_match on")
			}
		} else {
			set(VaultMatch, false, cp.noVault)
			set(VaultCreate, false, cp.noVault)
		}
		set(WelcomeEmail, cp.SMTP, cp.noSMTP)
		if cp.PSA != "" {
			set(PSAMatch, true, "")
			if effective(PSAMatch) {
				set(PSACreate, true, "")
			} else {
				set(PSACreate, false, "psa_create needs psa_match on")
			}
		} else {
			set(PSAMatch, false, cp.noPSA)
			set(PSACreate, false, cp.noPSA)
		}
		set(SelfServe, true, "")
		set(M365Sync, cp.M365, cp.noM365)
	}
	for i := range r.Settings {
		s := &r.Settings[i]
		s.Effective = s.Available && s.Value
	}
}

func rolloutWarnings(r Resolved) []string {
	if r.Type != EndUser {
		return nil
	}
	var w []string
	if r.Setting(WelcomeEmail).Effective {
		w = append(w, "recommended roll-out: keep welcome_email off for the first import until the customer has been told and a few users have tested")
	}
	if !r.Setting(SelfServe).Value {
		w = append(w, "recommended roll-out: keep self_serve on so imported users can reset their own passwords")
	}
	return w
}

// CheckValues applies the option rules to a set of values for an account
// type, as a policy or customer-specific options would hold them:
// *_create needs its *_match, and rotation needs vault storage (which the
// Technician Vault, when enabled, always provides). Values not given are
// taken from the built-in defaults.
func CheckValues(typ AccountType, v Values, techVault bool) error {
	if err := v.CheckKeys(typ); err != nil {
		return err
	}
	eff := BuiltinDefaults(typ)
	for k, b := range v {
		eff[k] = b
	}
	if typ == Admin && techVault {
		eff[VaultMatch], eff[VaultCreate] = true, true
	}
	if eff[VaultCreate] && !eff[VaultMatch] {
		return &RuleError{Msg: "vault_create needs vault_match: set vault_match=true as well, or vault_create=false"}
	}
	if typ == EndUser && eff[PSACreate] && !eff[PSAMatch] {
		return &RuleError{Msg: "psa_create needs psa_match: set psa_match=true as well, or psa_create=false"}
	}
	if typ == Admin && eff[Rotation] && !eff[VaultMatch] {
		return &RuleError{Msg: "rotation needs vault storage: set vault_match=true (rotation only works when the password is stored), or rotation=false"}
	}
	if typ == Admin && techVault {
		if b, ok := v[VaultMatch]; ok && !b {
			return &RuleError{Msg: "admin vault_match cannot be turned off while the Technician Vault is enabled: rotation and change monitoring rely on it"}
		}
		if b, ok := v[VaultCreate]; ok && !b {
			return &RuleError{Msg: "admin vault_create cannot be turned off while the Technician Vault is enabled: rotation and change monitoring rely on it"}
		}
	}
	return nil
}

// CheckCustomerOptions applies the rules for setting customer-specific
// options: the customer must follow no policy for the type, every option
// turned on must be available to it, and the values must pass CheckValues.
func CheckCustomerOptions(t *Tenant, c Customer, typ AccountType, v Values) error {
	if err := v.CheckKeys(typ); err != nil {
		return err
	}
	switch a := c.PolicyAssignment(typ); {
	case a == NoPolicy:
	case a != "":
		return &RuleError{Msg: fmt.Sprintf("customer %s follows %s policy %q: edit that policy (autoimport policy set %q ...), or take the customer out of it first (autoimport policy unassign --customer %s --type %s)", c.ID, typ, a, a, c.ID, typ)}
	default:
		if p, ok := t.DefaultPolicy(typ); ok {
			return &RuleError{Msg: fmt.Sprintf("customer %s follows the default %s policy %q: edit that policy, or take the customer out of policies first (autoimport policy unassign --customer %s --type %s)", c.ID, typ, p.Name, c.ID, typ)}
		}
	}
	// What the customer would hold after the change.
	merged := c.Options[typ].Clone()
	if merged == nil {
		merged = Values{}
	}
	for k, b := range v {
		merged[k] = b
	}
	cc := c
	cc.Policies = map[AccountType]string{typ: NoPolicy}
	cc.Options = map[AccountType]Values{typ: merged}
	r := Resolve(t, cc, typ)
	for k, b := range v {
		s := r.Setting(k)
		if b && !s.Available {
			return &RuleError{Msg: fmt.Sprintf("%s option %s is not available for customer %s: %s", typ, k, c.ID, s.Reason)}
		}
	}
	return CheckValues(typ, merged, t.Integrations.TechVaultEnabled())
}

// UsageError is bad input from the person at the keyboard (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// RuleError is a change the option rules refuse (exit status 1).
type RuleError struct{ Msg string }

func (e *RuleError) Error() string { return e.Msg }

func quote(s string) string { return strconv.Quote(s) }

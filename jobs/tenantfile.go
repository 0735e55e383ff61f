package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/loopback"
	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/secret"
	"go.yaml.in/yaml/v3"
)

// tenantFile is the shape of the declarative tenant file.
type tenantFile struct {
	Integrations Integrations `yaml:"integrations"`
	Policies     []Policy     `yaml:"policies"`
	Customers    []Customer   `yaml:"customers"`
}

// FileError is an error in a tenant file, with its line.
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// maxTenantFile bounds a tenant file: thousands of customers fit well
// under it.
const maxTenantFile = 8 << 20

// ParseTenantFile reads and validates a tenant file. Unknown keys, wrong
// types, plain-text secrets, unknown options and references to missing
// policies are errors that carry the file's line numbers. Secret
// references and template paths are checked by their form only; a file
// about to be applied gets ParseTenantFileToApply.
func ParseTenantFile(name string, data []byte) (*Tenant, error) {
	return parseTenantFile(name, data, nil)
}

// ParseTenantFileToApply is ParseTenantFile for a file about to be
// applied: each secret reference and template path is also checked
// against the secrets of this process (secrets): file: references and
// templates must lie in AUTOIMPORT_SECRETS_DIR, and whatever this machine
// can read of them (a set variable, an existing file, a sealed value its
// key opens) must not hold autoimport's own secrets. A run checks them
// again where it runs.
func ParseTenantFileToApply(name string, data []byte, secrets *secret.Resolver) (*Tenant, error) {
	if secrets == nil {
		secrets = &secret.Resolver{}
	}
	return parseTenantFile(name, data, secrets)
}

func parseTenantFile(name string, data []byte, secrets *secret.Resolver) (*Tenant, error) {
	if len(data) > maxTenantFile {
		return nil, &FileError{File: name, Msg: fmt.Sprintf("the file is %d bytes; a tenant file is at most %d", len(data), maxTenantFile)}
	}
	if !utf8.Valid(data) {
		return nil, &FileError{File: name, Msg: "the file is not valid UTF-8"}
	}
	var f tenantFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FileError{File: name, Msg: "the file is empty"}
		}
		return nil, yamlError(name, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	t := &Tenant{Integrations: f.Integrations, Policies: f.Policies, Customers: f.Customers}
	lines := nodeLines(&root)
	if err := validateTenant(t, func(path string) int { return lineOf(lines, path) }, secrets); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			var errs []error
			for _, p := range ve.Problems {
				errs = append(errs, &FileError{File: name, Line: p.Line, Msg: p.Path + ": " + p.Msg})
			}
			return nil, errors.Join(errs...)
		}
		return nil, err
	}
	return t, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, m := range te.Errors {
			errs = append(errs, lineError(name, m))
		}
		return errors.Join(errs...)
	}
	return lineError(name, strings.TrimPrefix(err.Error(), "yaml: "))
}

// docTypes names the types a tenant file's policies and customers are
// decoded through (options and numbers in one mapping) as the types they
// fill, for messages such as "field colour not found in type
// jobs.Customer".
var docTypes = strings.NewReplacer("jobs.policyDoc", "jobs.Policy", "jobs.customerDoc", "jobs.Customer")

func lineError(name, msg string) error {
	msg = docTypes.Replace(strings.TrimPrefix(msg, "yaml: "))
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FileError{File: name, Line: n, Msg: msg[len(m[0]):]}
	}
	return &FileError{File: name, Msg: msg}
}

// nodeLines maps dotted paths ("customers[1].policies.admin") to lines.
func nodeLines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				out[p] = n.Content[i].Line
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				out[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return out
}

// lineOf finds the line of a path, or of its nearest ancestor.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Problem is one thing wrong with a tenant.
type Problem struct {
	Path string
	Line int
	Msg  string
}

// ValidationError lists what is wrong with a tenant.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.Path + ": " + p.Msg
	}
	return strings.Join(s, "\n")
}

var customerID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateTenant checks a whole tenant: integrations' URLs and secret
// references, at most one default policy per type, option names and rules,
// customer ids, policy assignments and customer-specific options. line maps
// a path to its file line (or returns 0).
func ValidateTenant(t *Tenant, line func(path string) int) error {
	return validateTenant(t, line, nil)
}

// validateTenant is ValidateTenant; with secrets, references and
// templates are checked as ParseTenantFileToApply says.
func validateTenant(t *Tenant, line func(path string) int, secrets *secret.Resolver) error {
	if line == nil {
		line = func(string) int { return 0 }
	}
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Line: line(path), Msg: fmt.Sprintf(format, args...)})
	}
	checkRef := func(path string, r secret.Ref, required bool) {
		if r.IsZero() {
			if required {
				add(path, "is required (a secret reference such as env:NAME or file:PATH)")
			}
			return
		}
		check := r.Validate
		if secrets != nil {
			check = func() error { return secrets.Check(r) }
		}
		if err := check(); err != nil {
			add(path, "%v", err)
		}
	}
	checkURL := func(path, u string, required bool) {
		if u == "" {
			if required {
				add(path, "is required")
			}
			return
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
			add(path, "%q is not an http(s) URL", u)
		}
	}
	// checkAPIURL checks a URL credentials are sent to: https, or http
	// only to this machine or with the integration's allow_insecure_http.
	checkAPIURL := func(path, u string, required, allowInsecure bool) {
		if u == "" {
			if required {
				add(path, "is required")
			}
			return
		}
		if err := restclient.CheckURL(u, allowInsecure); err != nil {
			add(path, "%v", err)
		}
	}
	// checkTemplate checks a template path like a file: reference: its
	// contents are mailed to every new user.
	checkTemplate := func(path, file string) {
		if file == "" {
			return
		}
		if err := secret.CheckPath(file); err != nil {
			add(path, "%v", err)
			return
		}
		if secrets != nil {
			if err := secrets.CheckTemplate(file); err != nil {
				add(path, "%v", err)
			}
		}
	}
	// checkNumbers refuses numeric options the account type does not
	// have and values out of range, each at its key's line.
	checkNumbers := func(path string, typ AccountType, n Numbers) {
		for _, k := range slices.Sorted(maps.Keys(n)) {
			kp := path + "." + string(k)
			if !slices.Contains(numberKeys[typ], k) {
				add(kp, "%v", unknownOption(typ, string(k)))
			} else if msg := outOfRange(k, n[k]); msg != "" {
				add(kp, "%s", msg)
			}
		}
	}
	checkRate := func(path, r string) {
		if r == "" {
			return
		}
		if _, err := restclient.ParseRate(r); err != nil {
			add(path, "%v", err)
		}
	}
	in := t.Integrations
	if g := in.ITGlue; g != nil {
		checkAPIURL("integrations.itglue.url", g.URL, true, g.AllowInsecureHTTP)
		checkRef("integrations.itglue.api_key", g.APIKey, true)
		checkRate("integrations.itglue.rate_limit", g.RateLimit)
	}
	if h := in.Hudu; h != nil {
		checkAPIURL("integrations.hudu.url", h.URL, true, h.AllowInsecureHTTP)
		checkRef("integrations.hudu.api_key", h.APIKey, true)
		checkRate("integrations.hudu.rate_limit", h.RateLimit)
	}
	psas := 0
	if c := in.ConnectWise; c != nil {
		psas++
		checkAPIURL("integrations.connectwise.url", c.URL, true, c.AllowInsecureHTTP)
		if c.CompanyID == "" {
			add("integrations.connectwise.company_id", "is required")
		}
		checkRef("integrations.connectwise.public_key", c.PublicKey, true)
		checkRef("integrations.connectwise.private_key", c.PrivateKey, true)
		checkRef("integrations.connectwise.client_id", c.ClientID, true)
		checkRate("integrations.connectwise.rate_limit", c.RateLimit)
	}
	if a := in.Autotask; a != nil {
		psas++
		checkAPIURL("integrations.autotask.url", a.URL, false, a.AllowInsecureHTTP)
		checkRef("integrations.autotask.username", a.Username, true)
		checkRef("integrations.autotask.secret", a.Secret, true)
		checkRef("integrations.autotask.integration_code", a.IntegrationCode, true)
		checkRate("integrations.autotask.rate_limit", a.RateLimit)
	}
	if h := in.HaloPSA; h != nil {
		psas++
		checkAPIURL("integrations.halopsa.url", h.URL, true, h.AllowInsecureHTTP)
		checkRef("integrations.halopsa.client_id", h.ClientID, true)
		checkRef("integrations.halopsa.client_secret", h.ClientSecret, true)
		checkRate("integrations.halopsa.rate_limit", h.RateLimit)
	}
	if m := in.M365; m != nil {
		checkRef("integrations.m365.client_id", m.ClientID, true)
		checkRef("integrations.m365.client_secret", m.ClientSecret, true)
		checkAPIURL("integrations.m365.login_url", m.LoginURL, false, m.AllowInsecureHTTP)
		checkAPIURL("integrations.m365.graph_url", m.GraphURL, false, m.AllowInsecureHTTP)
		checkRate("integrations.m365.rate_limit", m.RateLimit)
	}
	if s := in.SMTP; s != nil {
		if s.Host == "" {
			add("integrations.smtp.host", "is required")
		}
		if s.Port < 0 || s.Port > 65535 {
			add("integrations.smtp.port", "%d is not a TCP port", s.Port)
		}
		switch s.TLS {
		case "", "starttls", "implicit":
		case "none":
			if !loopback.IsLoopbackName(s.Host) {
				add("integrations.smtp.tls", "none sends the SMTP password and every welcome email in clear: it is allowed only to a relay on this machine (localhost, 127.0.0.1, ::1; the address it resolves to is checked again when a run connects), not %q; use starttls (port 587) or implicit (port 465)", s.Host)
			}
		default:
			add("integrations.smtp.tls", "%q: want starttls, implicit or none", s.TLS)
		}
		checkTemplate("integrations.smtp.text_template", s.TextTemplate)
		checkTemplate("integrations.smtp.html_template", s.HTMLTemplate)
		checkRef("integrations.smtp.username", s.Username, false)
		checkRef("integrations.smtp.password", s.Password, false)
		if s.From == "" {
			add("integrations.smtp.from", "is required")
		}
		checkURL("integrations.smtp.enrollment_url", s.EnrollmentURL, true)
	}

	names := map[string]int{}
	defaults := map[AccountType]string{}
	for i, p := range t.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		if strings.TrimSpace(p.Name) == "" {
			add(path+".name", "is required")
		} else if j, dup := names[p.Name]; dup {
			add(path+".name", "policy %q is defined twice (also policies[%d])", p.Name, j)
		} else {
			names[p.Name] = i
		}
		if p.Name == NoPolicy {
			add(path+".name", "%q is reserved: it takes a customer out of policies", NoPolicy)
		}
		if p.Type != EndUser && p.Type != Admin {
			add(path+".type", "%q: want end-user or admin", p.Type)
			continue
		}
		if p.Default {
			if other, ok := defaults[p.Type]; ok {
				add(path+".default", "%q and %q are both default %s policies: at most one default per account type", other, p.Name, p.Type)
			}
			defaults[p.Type] = p.Name
		}
		for k := range p.Options {
			if err := (Values{k: true}).CheckKeys(p.Type); err != nil {
				add(path+".options."+string(k), "%v", err)
			}
		}
		if err := p.Options.CheckKeys(p.Type); err == nil {
			if err := CheckValues(p.Type, p.Options, in.TechVaultEnabled()); err != nil {
				add(path+".options", "%v", err)
			}
		}
		checkNumbers(path+".options", p.Type, p.Numbers)
	}

	ids := map[string]int{}
	for i, c := range t.Customers {
		path := fmt.Sprintf("customers[%d]", i)
		if !customerID.MatchString(c.ID) {
			add(path+".id", "%q: a customer id is 1-64 lower-case letters, digits, '.', '_' or '-'", c.ID)
		} else if j, dup := ids[c.ID]; dup {
			add(path+".id", "customer %q is defined twice (also customers[%d])", c.ID, j)
		} else {
			ids[c.ID] = i
		}
		if strings.TrimSpace(c.Name) == "" {
			add(path+".name", "is required")
		}
		for typ, name := range c.Policies {
			pp := path + ".policies." + string(typ)
			if typ != EndUser && typ != Admin {
				add(pp, "%q is not an account type: want end-user or admin", typ)
				continue
			}
			if name == NoPolicy || name == "" {
				continue
			}
			p, ok := t.Policy(typ, name)
			if !ok {
				if j, exists := names[name]; exists {
					add(pp, "policy %q is a %s policy, not %s", name, t.Policies[j].Type, typ)
				} else {
					add(pp, "no %s policy named %q (define it under policies, or write none to use customer-specific options)", typ, name)
				}
				continue
			}
			_ = p
		}
		for _, typ := range c.optionTypes() {
			v := c.Options[typ]
			op := path + ".options." + string(typ)
			if typ != EndUser && typ != Admin {
				add(op, "%q is not an account type: want end-user or admin", typ)
				continue
			}
			if c.PolicyAssignment(typ) != NoPolicy {
				add(op, "customer-specific %s options are used only for a customer taken out of policies: add `policies: {%s: none}`", typ, typ)
				continue
			}
			checkNumbers(op, typ, c.Numbers[typ])
			if err := v.CheckKeys(typ); err != nil {
				add(op, "%v", err)
				continue
			}
			if err := CheckCustomerOptions(t, c, typ, v); err != nil {
				add(op, "%v", err)
			}
		}
		if ad := c.Sources.AD; ad != nil {
			sp := path + ".sources.ad"
			u, err := url.Parse(ad.URL)
			switch {
			case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
				add(sp+".url", "%q is not an ldap:// or ldaps:// URL", ad.URL)
			case u.Scheme == "ldap" && !ad.StartTLS && !ad.AllowPlaintext:
				add(sp+".url", "plain ldap:// sends the bind password in clear: use ldaps://, set start_tls: true, or allow_plaintext: true")
			}
			if ad.BindDN == "" {
				add(sp+".bind_dn", "is required")
			}
			checkRef(sp+".bind_password", ad.BindPassword, true)
			if ad.BaseDN == "" {
				add(sp+".base_dn", "is required")
			}
			for j, b := range ad.Select.Builtin {
				if !knownBuiltin(b) {
					add(fmt.Sprintf("%s.select.builtin[%d]", sp, j), "%q is not a built-in group autoimport can select (Domain Users)", b)
				}
			}
		}
		if m := c.Sources.M365; m != nil {
			if m.TenantID == "" {
				add(path+".sources.m365.tenant_id", "is required")
			}
			if in.M365 == nil {
				add(path+".sources.m365", "the customer has a Microsoft 365 tenant but integrations.m365 (the app registration) is not configured")
			}
		}
		switch c.PSA.Kind {
		case "", "connectwise", "autotask", "halopsa":
			if c.PSA.Kind != "" && in.PSAKindOf(c) == "" {
				add(path+".psa.kind", "%s is not configured under integrations", c.PSA.Kind)
			} else if c.PSA.Kind == "" && c.PSA.CompanyID != "" && psas > 1 {
				add(path+".psa", "several PSAs are configured: say which one the company is in (kind: connectwise, autotask or halopsa)")
			}
		default:
			add(path+".psa.kind", "%q: want connectwise, autotask or halopsa", c.PSA.Kind)
		}
		if c.Surge != nil && (c.Surge.Max < 0 || c.Surge.Percent < 0) {
			add(path+".surge", "max and percent must not be negative")
		}
	}
	if len(probs) == 0 {
		return nil
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
	return &ValidationError{Problems: probs}
}

func knownBuiltin(name string) bool { return strings.EqualFold(name, "Domain Users") }

// EncodeTenantFile writes a tenant in the tenant file format. Secrets are
// written as the references or sealed values they are stored as.
func EncodeTenantFile(t *Tenant) ([]byte, error) {
	f := tenantFile{Integrations: t.Integrations, Policies: t.Policies, Customers: t.Customers}
	var b bytes.Buffer
	b.WriteString("# autoimport tenant, written by `autoimport export`; apply with `autoimport apply -f FILE`.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

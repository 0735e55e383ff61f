package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"time"
)

// TenantAdmin carries out a technician's changes to integrations, policies,
// customers and options: each change is validated against the whole
// tenant, written, and audited in one transaction.
type TenantAdmin struct {
	Store Store
	// Actor is who makes the changes (recorded in the audit log).
	Actor string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (a *TenantAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func doc(v any) string {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(b)
}

// change applies fn to the tenant in a transaction; fn edits the tenant in
// place and returns the audit events of what it changed. The edited tenant
// must validate; then the changed parts are written. The tenant chain is
// locked before the tenant is read, so that two changes never validate
// against the same old tenant.
func (a *TenantAdmin) change(ctx context.Context, fn func(t *Tenant) ([]AuditEvent, error)) error {
	return a.Store.Update(ctx, func(tx Tx) error {
		if err := tx.LockChain(ctx, ""); err != nil {
			return err
		}
		t, err := tx.LoadTenant(ctx)
		if err != nil {
			return err
		}
		before := cloneTenant(t)
		events, err := fn(t)
		if err != nil {
			return err
		}
		if err := ValidateTenant(t, nil); err != nil {
			return &RuleError{Msg: err.Error()}
		}
		if err := writeDiff(ctx, tx, before, t); err != nil {
			return err
		}
		for _, e := range events {
			e.At, e.Actor = a.now(), a.Actor
			if _, err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func cloneTenant(t *Tenant) *Tenant {
	b, _ := json.Marshal(t)
	var c Tenant
	_ = json.Unmarshal(b, &c)
	return &c
}

// writeDiff writes what differs between two tenants.
func writeDiff(ctx context.Context, tx Tx, old, cur *Tenant) error {
	if doc(old.Integrations) != doc(cur.Integrations) {
		if err := tx.PutIntegrations(ctx, cur.Integrations); err != nil {
			return err
		}
	}
	for _, p := range cur.Policies {
		if op, ok := findPolicy(old, p.Name); !ok || doc(op) != doc(p) {
			if err := tx.PutPolicy(ctx, p); err != nil {
				return err
			}
		}
	}
	for _, c := range cur.Customers {
		if oc, ok := old.Customer(c.ID); !ok || doc(oc) != doc(c) {
			if err := tx.PutCustomer(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func findPolicy(t *Tenant, name string) (Policy, bool) {
	for _, p := range t.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

func policyIndex(t *Tenant, name string) (int, error) {
	for i, p := range t.Policies {
		if p.Name == name {
			return i, nil
		}
	}
	return -1, &RuleError{Msg: fmt.Sprintf("no policy named %q (autoimport policy list shows them)", name)}
}

func customerIndex(t *Tenant, id string) (int, error) {
	for i, c := range t.Customers {
		if c.ID == id {
			return i, nil
		}
	}
	return -1, &RuleError{Msg: fmt.Sprintf("no customer %q (autoimport customer list shows them)", id)}
}

// CreatePolicy adds a policy; making it the default replaces the type's
// previous default.
func (a *TenantAdmin) CreatePolicy(ctx context.Context, p Policy) error {
	if p.Options == nil {
		p.Options = Values{}
	}
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		if _, ok := findPolicy(t, p.Name); ok {
			return nil, &RuleError{Msg: fmt.Sprintf("policy %q exists already: change it with autoimport policy set", p.Name)}
		}
		if err := CheckValues(p.Type, p.Options, t.Integrations.TechVaultEnabled()); err != nil {
			return nil, err
		}
		if err := CheckNumbers(p.Type, p.Numbers); err != nil {
			return nil, fmt.Errorf("policy %q: %w", p.Name, err)
		}
		var events []AuditEvent
		if p.Default {
			events = append(events, clearDefault(t, p.Type)...)
		}
		t.Policies = append(t.Policies, p)
		return append(events, AuditEvent{Action: "policy.create", Subject: p.Name, After: doc(p)}), nil
	})
}

func clearDefault(t *Tenant, typ AccountType) []AuditEvent {
	var events []AuditEvent
	for i, q := range t.Policies {
		if q.Type == typ && q.Default {
			before := q
			t.Policies[i].Default = false
			events = append(events, AuditEvent{Action: "policy.update", Subject: q.Name, Before: doc(before), After: doc(t.Policies[i])})
		}
	}
	return events
}

// SetPolicy changes a policy's on/off options (and description, when
// given): SetPolicyOptions without numeric options.
func (a *TenantAdmin) SetPolicy(ctx context.Context, name string, v Values, description *string) error {
	return a.SetPolicyOptions(ctx, name, OptionSet{Values: v}, description)
}

// SetPolicyOptions changes a policy's options, on/off and numeric (and
// description, when given), in one audited change. It changes the options
// of every customer that follows it, for future imports and, for the
// numeric ones, future rotations.
func (a *TenantAdmin) SetPolicyOptions(ctx context.Context, name string, o OptionSet, description *string) error {
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		i, err := policyIndex(t, name)
		if err != nil {
			return nil, err
		}
		p := &t.Policies[i]
		before := *p
		before.Options = p.Options.Clone()
		before.Numbers = maps.Clone(p.Numbers)
		if err := o.Values.CheckKeys(p.Type); err != nil {
			return nil, err
		}
		if err := CheckNumbers(p.Type, o.Numbers); err != nil {
			return nil, fmt.Errorf("policy %q: %w", name, err)
		}
		if p.Options == nil {
			p.Options = Values{}
		}
		for k, b := range o.Values {
			p.Options[k] = b
		}
		for k, n := range o.Numbers {
			if p.Numbers == nil {
				p.Numbers = Numbers{}
			}
			p.Numbers[k] = n
		}
		if description != nil {
			p.Description = *description
		}
		if err := CheckValues(p.Type, p.Options, t.Integrations.TechVaultEnabled()); err != nil {
			return nil, err
		}
		if doc(before) == doc(*p) {
			return nil, nil
		}
		return []AuditEvent{{Action: "policy.update", Subject: name, Before: doc(before), After: doc(*p)}}, nil
	})
}

// SetDefaultPolicy makes a policy the default of its type.
func (a *TenantAdmin) SetDefaultPolicy(ctx context.Context, name string) error {
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		i, err := policyIndex(t, name)
		if err != nil {
			return nil, err
		}
		if t.Policies[i].Default {
			return nil, nil
		}
		events := clearDefault(t, t.Policies[i].Type)
		before := t.Policies[i]
		t.Policies[i].Default = true
		return append(events, AuditEvent{Action: "policy.update", Subject: name, Before: doc(before), After: doc(t.Policies[i])}), nil
	})
}

// AssignPolicy makes a customer follow a policy for the policy's type.
func (a *TenantAdmin) AssignPolicy(ctx context.Context, customer, name string) error {
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		ci, err := customerIndex(t, customer)
		if err != nil {
			return nil, err
		}
		pi, err := policyIndex(t, name)
		if err != nil {
			return nil, err
		}
		c := &t.Customers[ci]
		typ := t.Policies[pi].Type
		before := c.PolicyAssignment(typ)
		if before == name {
			return nil, nil
		}
		if c.Policies == nil {
			c.Policies = map[AccountType]string{}
		}
		c.Policies[typ] = name
		// Customer-specific options apply only outside policies.
		delete(c.Options, typ)
		delete(c.Numbers, typ)
		return []AuditEvent{{Action: "customer.policy.assign", Customer: customer, Subject: string(typ), Before: doc(map[string]string{"policy": before}), After: doc(map[string]string{"policy": name})}}, nil
	})
}

// UnassignPolicy takes a customer out of policies for a type. Its
// customer-specific options start as the values it followed until now, so
// nothing changes until a technician edits them.
func (a *TenantAdmin) UnassignPolicy(ctx context.Context, customer string, typ AccountType) error {
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		ci, err := customerIndex(t, customer)
		if err != nil {
			return nil, err
		}
		c := &t.Customers[ci]
		if c.PolicyAssignment(typ) == NoPolicy {
			return nil, nil
		}
		r := Resolve(t, *c, typ)
		v := Values{}
		for _, s := range r.Settings {
			if s.Origin != FromBuiltin && s.Origin != FromTechnicianVault {
				v[s.Key] = s.Value
			}
		}
		var n Numbers
		for _, s := range r.Numbers {
			if s.Origin != FromBuiltin {
				if n == nil {
					n = Numbers{}
				}
				n[s.Key] = s.Value
			}
		}
		before := c.PolicyAssignment(typ)
		if c.Policies == nil {
			c.Policies = map[AccountType]string{}
		}
		if c.Options == nil {
			c.Options = map[AccountType]Values{}
		}
		c.Policies[typ] = NoPolicy
		c.Options[typ] = v
		delete(c.Numbers, typ)
		if n != nil {
			if c.Numbers == nil {
				c.Numbers = map[AccountType]Numbers{}
			}
			c.Numbers[typ] = n
		}
		return []AuditEvent{{Action: "customer.policy.unassign", Customer: customer, Subject: string(typ), Before: doc(map[string]string{"policy": before}), After: doc(map[string]any{"policy": NoPolicy, "options": OptionSet{Values: v, Numbers: n}})}}, nil
	})
}

// SetCustomerOptions sets customer-specific on/off options:
// SetCustomerOptionSet without numeric options.
func (a *TenantAdmin) SetCustomerOptions(ctx context.Context, customer string, typ AccountType, v Values) error {
	return a.SetCustomerOptionSet(ctx, customer, typ, OptionSet{Values: v})
}

// SetCustomerOptionSet sets customer-specific options, on/off and numeric,
// for a customer that follows no policy for the type, in one audited
// change. Unavailable options are refused with the reason; numeric ones
// out of range with what they accept.
func (a *TenantAdmin) SetCustomerOptionSet(ctx context.Context, customer string, typ AccountType, o OptionSet) error {
	return a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		ci, err := customerIndex(t, customer)
		if err != nil {
			return nil, err
		}
		c := &t.Customers[ci]
		if err := CheckCustomerOptions(t, *c, typ, o.Values); err != nil {
			return nil, err
		}
		if err := CheckNumbers(typ, o.Numbers); err != nil {
			return nil, fmt.Errorf("customer %s: %w", customer, err)
		}
		before := c.OptionSet(typ)
		merged := before.Values.Clone()
		if merged == nil {
			merged = Values{}
		}
		for k, b := range o.Values {
			merged[k] = b
		}
		mergedN := maps.Clone(before.Numbers)
		for k, n := range o.Numbers {
			if mergedN == nil {
				mergedN = Numbers{}
			}
			mergedN[k] = n
		}
		if merged.Equal(before.Values) && maps.Equal(mergedN, before.Numbers) {
			return nil, nil
		}
		if c.Options == nil {
			c.Options = map[AccountType]Values{}
		}
		if c.Policies == nil {
			c.Policies = map[AccountType]string{}
		}
		c.Policies[typ] = NoPolicy
		c.Options[typ] = merged
		if mergedN != nil {
			if c.Numbers == nil {
				c.Numbers = map[AccountType]Numbers{}
			}
			c.Numbers[typ] = mergedN
		}
		after := OptionSet{Values: merged, Numbers: mergedN}
		return []AuditEvent{{Action: "customer.options.set", Customer: customer, Subject: string(typ), Before: doc(before), After: doc(after)}}, nil
	})
}

// ApplyResult says what an apply changed.
type ApplyResult struct {
	Changes []string `json:"changes"`
	// Untouched lists customers and policies in the store that the file
	// does not mention; apply never deletes them.
	Untouched []string `json:"untouched,omitempty"`
}

// Apply makes the store hold what a tenant file describes: integrations are
// replaced, policies and customers in the file are created or updated.
// Applying the same file twice changes nothing and audits nothing the
// second time. Nothing is deleted.
func (a *TenantAdmin) Apply(ctx context.Context, want *Tenant) (ApplyResult, error) {
	var res ApplyResult
	err := a.change(ctx, func(t *Tenant) ([]AuditEvent, error) {
		res = ApplyResult{}
		var events []AuditEvent
		if doc(t.Integrations) != doc(want.Integrations) {
			for _, kind := range IntegrationKinds {
				b, w := integrationDoc(t.Integrations, kind), integrationDoc(want.Integrations, kind)
				if b != w {
					action := "integration.update"
					switch {
					case b == "":
						action = "integration.create"
					case w == "":
						action = "integration.delete"
					}
					events = append(events, AuditEvent{Action: action, Subject: kind, Before: b, After: w})
					res.Changes = append(res.Changes, action+" "+kind)
				}
			}
			t.Integrations = want.Integrations
		}
		for _, p := range want.Policies {
			if p.Options == nil {
				p.Options = Values{}
			}
			i, err := policyIndex(t, p.Name)
			if err != nil {
				t.Policies = append(t.Policies, p)
				events = append(events, AuditEvent{Action: "policy.create", Subject: p.Name, After: doc(p)})
				res.Changes = append(res.Changes, "policy.create "+p.Name)
				continue
			}
			if doc(t.Policies[i]) != doc(p) {
				events = append(events, AuditEvent{Action: "policy.update", Subject: p.Name, Before: doc(t.Policies[i]), After: doc(p)})
				res.Changes = append(res.Changes, "policy.update "+p.Name)
				t.Policies[i] = p
			}
		}
		// A default moved to another policy in the file: the old default
		// (not in the file) loses it, so that at most one default remains.
		for _, p := range want.Policies {
			if !p.Default {
				continue
			}
			for i, q := range t.Policies {
				if q.Type == p.Type && q.Default && q.Name != p.Name {
					if _, inFile := findPolicy(want, q.Name); !inFile {
						before := q
						t.Policies[i].Default = false
						events = append(events, AuditEvent{Action: "policy.update", Subject: q.Name, Before: doc(before), After: doc(t.Policies[i])})
						res.Changes = append(res.Changes, "policy.update "+q.Name)
					}
				}
			}
		}
		for _, c := range want.Customers {
			i, err := customerIndex(t, c.ID)
			if err != nil {
				t.Customers = append(t.Customers, c)
				events = append(events, AuditEvent{Action: "customer.create", Customer: c.ID, Subject: c.ID, After: doc(c)})
				res.Changes = append(res.Changes, "customer.create "+c.ID)
				continue
			}
			if doc(t.Customers[i]) != doc(c) {
				events = append(events, AuditEvent{Action: "customer.update", Customer: c.ID, Subject: c.ID, Before: doc(t.Customers[i]), After: doc(c)})
				res.Changes = append(res.Changes, "customer.update "+c.ID)
				t.Customers[i] = c
			}
		}
		for _, p := range t.Policies {
			if _, ok := findPolicy(want, p.Name); !ok {
				res.Untouched = append(res.Untouched, "policy "+p.Name)
			}
		}
		for _, c := range t.Customers {
			if _, ok := want.Customer(c.ID); !ok {
				res.Untouched = append(res.Untouched, "customer "+c.ID)
			}
		}
		return events, nil
	})
	return res, err
}

func integrationDoc(in Integrations, kind string) string {
	switch kind {
	case "itglue":
		return doc(in.ITGlue)
	case "hudu":
		return doc(in.Hudu)
	case "techvault":
		return doc(in.TechVault)
	case "connectwise":
		return doc(in.ConnectWise)
	case "autotask":
		return doc(in.Autotask)
	case "halopsa":
		return doc(in.HaloPSA)
	case "m365":
		return doc(in.M365)
	case "smtp":
		return doc(in.SMTP)
	}
	return ""
}

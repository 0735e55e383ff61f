package sandbox

import (
	"context"
	"fmt"
	"strings"
)

// Entry is one vault entry of a simulated customer, as a technician would
// find it in the vault's own interface.
type Entry struct {
	Ref, Name, Username string
}

// VaultEntries lists the entries of a customer's end-user vault (IT Glue,
// Hudu or the Technician Vault) whose username is username.
func (e *Env) VaultEntries(ctx context.Context, customerID, username string) ([]Entry, error) {
	var c *customer
	for _, x := range e.customers {
		if x.id == customerID {
			c = x
		}
	}
	if c == nil {
		return nil, fmt.Errorf("sandbox: no customer %q", customerID)
	}
	var out []Entry
	add := func(ref, name, user string) {
		if strings.EqualFold(user, username) {
			out = append(out, Entry{Ref: ref, Name: name, Username: user})
		}
	}
	switch {
	case c.itglueOrg != 0:
		for _, p := range e.ITGlue.Passwords(c.itglueOrg) {
			add(fmt.Sprint(p.ID), p.Name, p.Username)
		}
	case c.huduCompany != 0:
		for _, p := range e.Hudu.Passwords(c.huduCompany) {
			add(fmt.Sprint(p.ID), p.Name, p.Username)
		}
	default:
		entries, err := e.Store.TechVaultEntries(ctx, c.id)
		if err != nil {
			return nil, err
		}
		for _, p := range entries {
			add(p.ID, p.Name, p.Username)
		}
	}
	return out, nil
}

package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sinks"
)

// The Technician Vault, read by a technician: a vault is only as good as
// its reading. A technician lists a customer's entries, shows one (with
// the account whose password it holds and when that was last rotated)
// and reveals its password; each reveal is audited with the declared
// actor and the operating-system user, never with the password.

// TechVaultEntry is what a technician sees of a Technician Vault entry
// without revealing it.
type TechVaultEntry struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Username string    `json:"username"`
	Category string    `json:"category,omitempty"`
	Notes    string    `json:"notes,omitempty"`
	Created  time.Time `json:"created_at"`
	// HasPassword is false while the entry holds no password yet (the
	// import stores an administrator's entry without one; its first
	// rotation writes it).
	HasPassword bool `json:"has_password"`
}

// TechVaultReader reads a customer's Technician Vault entries
// (cmd/internal/connect adapts sinks/techvault). A missing entry, or another
// customer's, is an error wrapping sinks.ErrNotFound or
// sinks.ErrWrongCustomer.
type TechVaultReader interface {
	// Name is the vault's name as the ledger records links to it.
	Name() string
	Entries(ctx context.Context, customer string) ([]TechVaultEntry, error)
	Entry(ctx context.Context, customer, id string) (TechVaultEntry, error)
	// Password opens an entry's password; "" when it holds none.
	Password(ctx context.Context, customer, id string) (string, error)
}

// VaultEntryView is one Technician Vault entry with the account linked
// to it.
type VaultEntryView struct {
	TechVaultEntry
	// Account, AccountUsername and AccountType name the imported account
	// whose password the entry holds, when one is linked to it.
	Account         string      `json:"account,omitempty"`
	AccountUsername string      `json:"account_username,omitempty"`
	AccountType     AccountType `json:"account_type,omitempty"`
	// LastRotated is when autoimport last rotated that account's
	// password (zero: never).
	LastRotated time.Time `json:"last_rotated,omitzero"`
	// Pending says that a rotation of the account is open: the directory
	// may hold a newer password than the entry.
	Pending string `json:"pending,omitempty"`
}

// subject is how audit events name what the entry holds: its account, or
// the entry itself when no account is linked.
func (v *VaultEntryView) subject() string {
	if v.Account != "" {
		return v.Account
	}
	return "techvault:" + v.ID
}

// VaultListing is a customer's Technician Vault.
type VaultListing struct {
	Customer string `json:"customer"`
	// Enabled is whether the Technician Vault is on; entries stored while
	// it was stay readable after it is turned off.
	Enabled bool             `json:"enabled"`
	Entries []VaultEntryView `json:"entries"`
}

// RevealedPassword is an entry's password, revealed to a technician.
type RevealedPassword struct {
	Entry    VaultEntryView `json:"entry"`
	Password string         `json:"password"`
}

func (a *Accounts) techVault() (TechVaultReader, error) {
	if a.TechVault == nil {
		return nil, errors.New("no Technician Vault store is configured")
	}
	return a.TechVault, nil
}

// vaultLinks returns the customer's accounts by the Technician Vault entry
// they are linked to, and the open rotations by account.
func (a *Accounts) vaultLinks(ctx context.Context, vault string, rows []AccountRow, customer string) (map[string]*AccountRow, map[string]PasswordRotation, error) {
	links := map[string]*AccountRow{}
	for i := range rows {
		r := &rows[i]
		if r.imported != nil && r.VaultRef != "" && r.VaultIntegration == vault {
			links[strings.ToLower(r.VaultRef)] = r
		}
	}
	rots, err := a.Store.Rotations(ctx, customer)
	if err != nil {
		return nil, nil, err
	}
	open := map[string]PasswordRotation{}
	for _, x := range rots {
		if x.Open() {
			open[x.Source+":"+x.SourceID] = x
		}
	}
	return links, open, nil
}

// view joins an entry with its account.
func view(e TechVaultEntry, links map[string]*AccountRow, open map[string]PasswordRotation, customer string) VaultEntryView {
	v := VaultEntryView{TechVaultEntry: e}
	r := links[strings.ToLower(e.ID)]
	if r == nil {
		return v
	}
	v.Account, v.AccountUsername, v.AccountType, v.LastRotated = r.Subject(), r.Username, r.Type, r.LastRotated
	if x, ok := open[r.Subject()]; ok {
		v.Pending = fmt.Sprintf("a rotation of %s is open (%s since %s): %s may hold a newer password than this entry; autoimport accounts password --customer %s %s reads it",
			r.Username, x.State, x.StartedAt.Format(time.DateTime), x.Target, customer, r.Subject())
	}
	return v
}

// VaultEntries lists a customer's Technician Vault entries, without their
// passwords, each with the account linked to it.
func (a *Accounts) VaultEntries(ctx context.Context, customer string) (*VaultListing, error) {
	tv, err := a.techVault()
	if err != nil {
		return nil, err
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	rows, err := a.rows(ctx, t, c)
	if err != nil {
		return nil, err
	}
	links, open, err := a.vaultLinks(ctx, tv.Name(), rows, customer)
	if err != nil {
		return nil, err
	}
	entries, err := tv.Entries(ctx, customer)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", customer, err)
	}
	out := &VaultListing{Customer: customer, Enabled: t.Integrations.TechVaultEnabled(), Entries: make([]VaultEntryView, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, view(e, links, open, customer))
	}
	return out, nil
}

// VaultEntry shows one Technician Vault entry, named by its id or by the
// account linked to it (a username, a UPN, ad:<id> or m365:<id>).
func (a *Accounts) VaultEntry(ctx context.Context, customer, name string) (*VaultEntryView, error) {
	tv, err := a.techVault()
	if err != nil {
		return nil, err
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	rows, err := a.rows(ctx, t, c)
	if err != nil {
		return nil, err
	}
	links, open, err := a.vaultLinks(ctx, tv.Name(), rows, customer)
	if err != nil {
		return nil, err
	}
	id, err := entryNamed(ctx, tv, rows, customer, strings.TrimSpace(name))
	if err != nil {
		return nil, err
	}
	e, err := tv.Entry(ctx, customer, id)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", customer, err)
	}
	v := view(e, links, open, customer)
	return &v, nil
}

// entryNamed finds the entry a technician named: an entry id of the
// customer's, else an account whose entry is in the Technician Vault.
func entryNamed(ctx context.Context, tv TechVaultReader, rows []AccountRow, customer, name string) (string, error) {
	if name == "" {
		return "", &UsageError{Msg: "name the entry: its id, or its account (username, UPN, ad:<id> or m365:<id>)"}
	}
	if _, err := tv.Entry(ctx, customer, name); err == nil {
		return name, nil
	} else if !errors.Is(err, sinks.ErrNotFound) {
		return "", fmt.Errorf("customer %s: %w", customer, err)
	}
	r, err := find(rows, customer, name)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("customer %s: %q is neither a Technician Vault entry nor an account autoimport knows (autoimport vault list --customer %s): %w", customer, name, customer, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	switch {
	case r.VaultRef == "":
		return "", fmt.Errorf("customer %s: %s (%s) is linked to no vault entry: %w", customer, r.Subject(), r.Username, ErrNotFound)
	case r.VaultIntegration != tv.Name():
		return "", fmt.Errorf("customer %s: %s (%s) is linked to %s entry %s, not to the Technician Vault: read it there: %w", customer, r.Subject(), r.Username, r.VaultIntegration, r.VaultRef, ErrNotFound)
	}
	return r.VaultRef, nil
}

// RevealVaultPassword opens the password of one Technician Vault entry,
// named as for VaultEntry, for a technician. The reveal is audited first
// (its actor names the declared actor and the operating-system user; the
// event never holds the password): no audit, no password.
func (a *Accounts) RevealVaultPassword(ctx context.Context, customer, name string) (*RevealedPassword, error) {
	v, err := a.VaultEntry(ctx, customer, name)
	if err != nil {
		return nil, err
	}
	if !v.HasPassword {
		return nil, fmt.Errorf("customer %s: Technician Vault entry %s %q holds no password yet (an administrator's entry gets one at its first rotation): %w", customer, v.ID, v.Name, ErrNotFound)
	}
	after := map[string]string{"vault": a.TechVault.Name(), "entry": v.ID}
	if v.Pending != "" {
		after["pending"] = "a rotation of the account is open"
	}
	err = a.Store.Update(ctx, func(tx Tx) error {
		return a.audit(ctx, tx, customer, "vault.reveal", v.subject(), nil, after)
	})
	if err != nil {
		return nil, err
	}
	pw, err := a.TechVault.Password(ctx, customer, v.ID)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", customer, err)
	}
	if pw == "" {
		return nil, fmt.Errorf("customer %s: Technician Vault entry %s holds no password: %w", customer, v.ID, ErrNotFound)
	}
	return &RevealedPassword{Entry: *v, Password: pw}, nil
}

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

// TechVaultReader reads a customer's Technician Vault entries, as
// sinks/techvault's Vault does. A missing entry, or another customer's,
// is an error wrapping sinks.ErrNotFound or sinks.ErrWrongCustomer.
type TechVaultReader interface {
	// Name is the vault's name as the ledger records links to it.
	Name() string
	List(ctx context.Context, customer string) ([]sinks.EntryInfo, error)
	Info(ctx context.Context, customer, id string) (sinks.EntryInfo, error)
	// Reveal opens an entry's password; "" when it holds none.
	Reveal(ctx context.Context, customer, id string) (string, error)
}

// VaultEntryView is one Technician Vault entry with the account linked
// to it.
type VaultEntryView struct {
	sinks.EntryInfo
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

// vaultReading is what showing a customer's Technician Vault entries
// reads first: the vault, the customer's accounts, the accounts by the
// entry they are linked to, and the open rotations by account.
type vaultReading struct {
	tv       TechVaultReader
	t        *Tenant
	customer string
	rows     []AccountRow
	links    map[string]*AccountRow
	open     map[string]PasswordRotation
}

func (a *Accounts) readVault(ctx context.Context, customer string) (*vaultReading, error) {
	if a.TechVault == nil {
		return nil, errors.New("no Technician Vault store is configured")
	}
	t, rows, err := a.customerRows(ctx, customer)
	if err != nil {
		return nil, err
	}
	vr := &vaultReading{tv: a.TechVault, t: t, customer: customer, rows: rows, links: map[string]*AccountRow{}, open: map[string]PasswordRotation{}}
	for i := range rows {
		r := &rows[i]
		if r.imported != nil && r.VaultRef != "" && r.VaultIntegration == vr.tv.Name() {
			vr.links[strings.ToLower(r.VaultRef)] = r
		}
	}
	rots, err := a.Store.Rotations(ctx, customer)
	if err != nil {
		return nil, err
	}
	for _, x := range rots {
		if x.Open() {
			vr.open[x.Source+":"+x.SourceID] = x
		}
	}
	return vr, nil
}

// view joins an entry with its account.
func (vr *vaultReading) view(e sinks.EntryInfo) VaultEntryView {
	v := VaultEntryView{EntryInfo: e}
	customer := vr.customer
	r := vr.links[strings.ToLower(e.ID)]
	if r == nil {
		return v
	}
	v.Account, v.AccountUsername, v.AccountType, v.LastRotated = r.Subject(), r.Username, r.Type, r.LastRotated
	if x, ok := vr.open[r.Subject()]; ok {
		v.Pending = fmt.Sprintf("a rotation of %s is open (%s since %s): %s may hold a newer password than this entry; autoimport accounts password --customer %s %s reads it",
			r.Username, x.State, x.StartedAt.Format(time.DateTime), x.Target, customer, r.Subject())
	}
	return v
}

// VaultEntries lists a customer's Technician Vault entries, without their
// passwords, each with the account linked to it.
func (a *Accounts) VaultEntries(ctx context.Context, customer string) (*VaultListing, error) {
	vr, err := a.readVault(ctx, customer)
	if err != nil {
		return nil, err
	}
	entries, err := vr.tv.List(ctx, customer)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", customer, err)
	}
	out := &VaultListing{Customer: customer, Enabled: vr.t.Integrations.TechVaultEnabled(), Entries: make([]VaultEntryView, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, vr.view(e))
	}
	return out, nil
}

// VaultEntry shows one Technician Vault entry, named by its id or by the
// account linked to it (a username, a UPN, ad:<id> or m365:<id>).
func (a *Accounts) VaultEntry(ctx context.Context, customer, name string) (*VaultEntryView, error) {
	vr, err := a.readVault(ctx, customer)
	if err != nil {
		return nil, err
	}
	e, err := vr.entryNamed(ctx, strings.TrimSpace(name))
	if err != nil {
		return nil, err
	}
	v := vr.view(e)
	return &v, nil
}

// entryNamed reads the entry a technician named: an entry id of the
// customer's, else an account whose entry is in the Technician Vault.
func (vr *vaultReading) entryNamed(ctx context.Context, name string) (sinks.EntryInfo, error) {
	tv, customer := vr.tv, vr.customer
	if name == "" {
		return sinks.EntryInfo{}, &UsageError{Msg: "name the entry: its id, or its account (username, UPN, ad:<id> or m365:<id>)"}
	}
	if e, err := tv.Info(ctx, customer, name); err == nil {
		return e, nil
	} else if !errors.Is(err, sinks.ErrNotFound) {
		return sinks.EntryInfo{}, fmt.Errorf("customer %s: %w", customer, err)
	}
	r, err := find(vr.rows, customer, name)
	if errors.Is(err, ErrNotFound) {
		return sinks.EntryInfo{}, fmt.Errorf("customer %s: %q is neither a Technician Vault entry nor an account autoimport knows (autoimport vault list --customer %s): %w", customer, name, customer, ErrNotFound)
	}
	if err != nil {
		return sinks.EntryInfo{}, err
	}
	switch {
	case r.VaultRef == "":
		return sinks.EntryInfo{}, fmt.Errorf("customer %s: %s (%s) is linked to no vault entry: %w", customer, r.Subject(), r.Username, ErrNotFound)
	case r.VaultIntegration != tv.Name():
		return sinks.EntryInfo{}, fmt.Errorf("customer %s: %s (%s) is linked to %s entry %s, not to the Technician Vault: read it there: %w", customer, r.Subject(), r.Username, r.VaultIntegration, r.VaultRef, ErrNotFound)
	}
	e, err := tv.Info(ctx, customer, r.VaultRef)
	if err != nil {
		return sinks.EntryInfo{}, fmt.Errorf("customer %s: %w", customer, err)
	}
	return e, nil
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
	pw, err := a.TechVault.Reveal(ctx, customer, v.ID)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", customer, err)
	}
	if pw == "" {
		return nil, fmt.Errorf("customer %s: Technician Vault entry %s holds no password: %w", customer, v.ID, ErrNotFound)
	}
	return &RevealedPassword{Entry: *v, Password: pw}, nil
}

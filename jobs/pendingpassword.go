package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
)

// PendingPassword is the password of an open rotation, beside what the
// account's vault entry holds now.
type PendingPassword struct {
	Account          string    `json:"account"`
	Username         string    `json:"username"`
	State            string    `json:"state"`
	Attempt          int       `json:"attempt"`
	Since            time.Time `json:"since"`
	Target           string    `json:"target"`
	VaultIntegration string    `json:"vault_integration"`
	VaultRef         string    `json:"vault_ref"`
	Password         string    `json:"password"`
	// VaultPassword is what the account's vault entry holds now (the
	// password before the rotation, until the rotation writes it);
	// VaultError says why it could not be read.
	VaultPassword string `json:"vault_password,omitempty"`
	VaultError    string `json:"vault_error,omitempty"`
}

// PendingPassword opens the password of an account's open rotation (set
// in the directory, or perhaps set, and not yet confirmed in the vault)
// for a technician, with what the vault entry holds beside it; the read is
// audited, the password never.
func (a *Accounts) PendingPassword(ctx context.Context, customer, name string, key *secret.Key) (*PendingPassword, error) {
	r, err := a.account(ctx, customer, name)
	if err != nil {
		return nil, err
	}
	rots, err := a.Store.Rotations(ctx, customer)
	if err != nil {
		return nil, err
	}
	var x *PasswordRotation
	for i := range rots {
		if rots[i].Source == r.Source && rots[i].SourceID == r.ID && rots[i].Open() {
			x = &rots[i]
		}
	}
	if x == nil {
		return nil, fmt.Errorf("customer %s: %s has no rotation waiting for the vault: its password is in its vault entry %s %s (autoimport vault reveal reads a Technician Vault entry): %w",
			customer, r.Subject(), r.VaultIntegration, r.VaultRef, ErrNotFound)
	}
	pw, err := key.OpenFor(x.Sealed, sealedPlace(*x))
	if err != nil {
		return nil, fmt.Errorf("customer %s: %s: %w", customer, r.Subject(), err)
	}
	out := &PendingPassword{Account: r.Subject(), Username: r.Username, State: x.State, Attempt: x.Attempt, Since: x.StartedAt, Target: x.Target,
		VaultIntegration: r.VaultIntegration, VaultRef: r.VaultRef, Password: string(pw)}
	out.VaultPassword, err = a.vaultPassword(ctx, customer, r)
	if err != nil {
		out.VaultError = err.Error()
	}
	err = a.Store.Update(ctx, func(tx Tx) error {
		return a.audit(ctx, tx, customer, "rotation.password-read", r.Subject(), nil, map[string]string{"state": x.State, "rotation": x.ID, "vault_ref": r.VaultRef})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// vaultPassword reads what an account's vault entry holds now.
func (a *Accounts) vaultPassword(ctx context.Context, customer string, r *AccountRow) (string, error) {
	if a.Connector == nil || r.VaultRef == "" {
		return "", fmt.Errorf("no vault entry to read")
	}
	t, c, err := a.customer(ctx, customer)
	if err != nil {
		return "", err
	}
	conn, err := a.Connector.Connect(ctx, t, c)
	if err != nil {
		return "", err
	}
	v, scope := vaultOf(conn, r.Type)
	w, ok := v.(passwordWriter)
	if v == nil || !ok {
		return "", fmt.Errorf("the customer's vault cannot read passwords")
	}
	return w.Password(ctx, scope, r.VaultRef)
}

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/msp-tools/autoimport/internal/secret"
)

// Accounts autoimport signs in as.
//
// The account a customer's Active Directory source binds as is, in any
// real set-up, a Domain Admin (resetting administrators' passwords needs
// it), so it is imported as an administrator. Rotating it would lock
// autoimport out of the directory, and everything else that uses it. The
// same holds for any account the tenant file names as a credential: the
// SMTP relay's username, the Autotask API user. Such an account is never
// rotated, and is shown with rotation off and the reason, whatever its
// ledger flag says (the flag is the technician's wish and applies again
// once autoimport no longer signs in as the account).

// ReasonBindAccount says why the account autoimport binds to a
// customer's Active Directory as is not rotated.
const ReasonBindAccount = "autoimport binds as this account"

// stateBindAccount names the per-customer state that holds the bind
// account as the directory resolved it at the last import (BindAccount,
// JSON).
const stateBindAccount = "ad.bind_account"

// BindAccount is the account a customer's Active Directory source binds
// as, found in the directory from bind_dn whatever its form.
type BindAccount struct {
	// BindDN is the bind_dn it was resolved from: a record made under
	// another bind_dn says nothing of the current one.
	BindDN     string `json:"bind_dn"`
	ObjectGUID string `json:"object_guid"`
	DN         string `json:"dn,omitempty"`
	// Username is the sAMAccountName; UPN is empty when the account binds
	// by its implicit UPN.
	Username string `json:"username,omitempty"`
	UPN      string `json:"upn,omitempty"`
}

// bindAccountReader is a directory source that can find the account it
// binds as (Active Directory; cmd/internal/connect adapts sources/ad). An
// account the directory does not hold is an error wrapping ErrNotFound.
type bindAccountReader interface {
	BindAccount(ctx context.Context) (BindAccount, error)
}

// recordBindAccount asks the customer's Active Directory which account
// autoimport binds as and keeps it for the offline commands and the
// rotation, audited when it changes. A bind account the directory does
// not hold clears the record (the bind_dn's names then stand for it); any
// other failure leaves the record as it is and is noted in the report.
func (ps *pass) recordBindAccount(ctx context.Context, conn *Connections) {
	cfg := ps.c.Sources.AD
	if ps.opt.DryRun || conn.AD == nil || cfg == nil {
		return
	}
	r, ok := conn.AD.(bindAccountReader)
	if !ok {
		return
	}
	b, err := r.BindAccount(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		b = BindAccount{}
	case err != nil:
		ps.rep.Notices = append(ps.rep.Notices, fmt.Sprintf("could not tell which account autoimport binds as (%v): until a run can, rotation knows it by the names in bind_dn only", err))
		ps.passingFailure = true
		return
	default:
		b.BindDN = cfg.BindDN
	}
	value := ""
	if b.ObjectGUID != "" {
		v, _ := json.Marshal(b) // strings only: cannot fail
		value = string(v)
	}
	im := ps.im
	if old, err := im.Store.State(ctx, ps.c.ID, stateBindAccount); err == nil && old == value {
		return // as recorded: no write
	}
	err = ps.update(ctx, func(tx Tx) error {
		old, err := tx.State(ctx, ps.c.ID, stateBindAccount)
		if err != nil || old == value {
			return err
		}
		if err := ps.opt.leaseLost(); err != nil {
			return err
		}
		if err := tx.PutState(ctx, ps.c.ID, stateBindAccount, value); err != nil {
			return err
		}
		var before, after any
		if old != "" {
			before = json.RawMessage(old)
		}
		if value != "" {
			after = b
		}
		_, err = tx.AppendAudit(ctx, AuditEvent{At: im.now(), Actor: im.actor(), Action: "import.bind-account", Customer: ps.c.ID, Before: doc(before), After: doc(after)})
		return err
	})
	if err != nil {
		im.Log.WithField("customer", ps.c.ID).WithError(err).Warn("could not record the account autoimport binds as; the next run does")
	}
}

// credentialAccount is what telling an account autoimport signs in as
// needs of it.
type credentialAccount struct {
	source, id, username, upn, displayName, email string
}

func credentialAccountOf(a ImportedAccount) credentialAccount {
	return credentialAccount{source: a.Source, id: a.SourceID, username: a.Username, upn: a.UPN, displayName: a.DisplayName, email: a.Email}
}

// credentialUses are the accounts one customer's tenant configuration
// makes autoimport sign in as.
type credentialUses struct {
	// bindDN is the customer's AD bind_dn ("" without an AD source) and
	// bound the account it was resolved to, when a run recorded it for
	// this bind_dn.
	bindDN string
	bound  *BindAccount
	// domainDNS is the DNS name of the customer's base DN, for implicit
	// UPNs ("" when unknown); netbios its configured NetBIOS name.
	domainDNS, netbios string
	// named are the other credentials' user names and why each account
	// that bears one is not rotated.
	named []namedCredential
	// err, when set, is why the uses could not be read: then every
	// account counts as possibly one of them.
	err error
}

type namedCredential struct{ name, reason string }

// loadCredentialUses reads what tells the accounts autoimport signs in as
// for customer c: its bind_dn, the bind account a run recorded, and the
// user names of the MSP's integrations (SMTP, Autotask), whose secret
// references secrets resolves as a run does (nil: env: references only;
// one that cannot be resolved here names no account).
func loadCredentialUses(ctx context.Context, s StoreReader, t *Tenant, c Customer, secrets *secret.Resolver) *credentialUses {
	if secrets == nil {
		secrets = &secret.Resolver{}
	}
	u := &credentialUses{}
	if ad := c.Sources.AD; ad != nil {
		u.bindDN, u.netbios, u.domainDNS = strings.TrimSpace(ad.BindDN), ad.Domain, dnsNameOf(ad.BaseDN)
		v, err := s.State(ctx, c.ID, stateBindAccount)
		if err != nil {
			u.err = fmt.Errorf("read the account autoimport binds as: %w", err)
			return u
		}
		var b BindAccount
		if v != "" && json.Unmarshal([]byte(v), &b) == nil && b.ObjectGUID != "" && strings.EqualFold(strings.TrimSpace(b.BindDN), u.bindDN) {
			u.bound = &b
		}
	}
	in := t.Integrations
	add := func(ref secret.Ref, reason string) {
		if ref.IsZero() {
			return
		}
		if name, err := secrets.Resolve(ref); err == nil && strings.TrimSpace(name) != "" {
			u.named = append(u.named, namedCredential{strings.TrimSpace(name), reason})
		}
	}
	if in.SMTP != nil {
		add(in.SMTP.Username, "autoimport signs in to the SMTP relay as this account")
	}
	if in.Autotask != nil {
		add(in.Autotask.Username, "autoimport signs in to Autotask as this account")
	}
	return u
}

// use says why autoimport must never rotate account a, "" when nothing
// makes it sign in as a.
func (u *credentialUses) use(a credentialAccount) string {
	if u.err != nil {
		return fmt.Sprintf("cannot tell whether autoimport signs in as this account: %v", u.err)
	}
	if u.bindsAs(a) {
		return ReasonBindAccount
	}
	for _, n := range u.named {
		if sameName(n.name, a.username, a.upn, a.email) {
			return n.reason
		}
	}
	return ""
}

// bindsAs tells the AD bind account: by objectGUID once a run has
// resolved bind_dn, until then by the names bind_dn holds (a DN's first
// RDN, a UPN, DOMAIN\name or a bare sAMAccountName). A Microsoft 365 user
// with the bind account's UPN is its synced twin, whose password is the
// same.
func (u *credentialUses) bindsAs(a credentialAccount) bool {
	if u.bindDN == "" {
		return false
	}
	if b := u.bound; b != nil {
		switch a.source {
		case "ad":
			return strings.EqualFold(a.id, b.ObjectGUID)
		case "m365":
			return b.UPN != "" && strings.EqualFold(a.upn, b.UPN)
		}
		return false
	}
	name := u.bindDN
	switch {
	case strings.Contains(name, "="):
		dn, err := ldap.ParseDN(name)
		if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) == 0 {
			return false
		}
		rdn := dn.RDNs[0].Attributes[0].Value
		return a.source == "ad" && (strings.EqualFold(a.username, rdn) || strings.EqualFold(a.displayName, rdn))
	case strings.Contains(name, `\`):
		dom, acc, _ := strings.Cut(name, `\`)
		if u.netbios != "" && !strings.EqualFold(dom, u.netbios) {
			return false
		}
		return a.source == "ad" && strings.EqualFold(a.username, acc)
	case strings.Contains(name, "@"):
		if strings.EqualFold(a.upn, name) {
			return true
		}
		at := strings.LastIndexByte(name, '@')
		implicit := u.domainDNS == "" || strings.EqualFold(name[at+1:], u.domainDNS)
		return a.source == "ad" && implicit && strings.EqualFold(a.username, name[:at])
	}
	return a.source == "ad" && strings.EqualFold(a.username, name)
}

// sameName reports whether name is one of the account's names.
func sameName(name string, names ...string) bool {
	for _, n := range names {
		if n != "" && strings.EqualFold(strings.TrimSpace(n), name) {
			return true
		}
	}
	return false
}

// dnsNameOf is the DNS name of a domain's naming context: DC=corp,DC=example
// is corp.example; "" when the DN holds anything else.
func dnsNameOf(baseDN string) string {
	dn, err := ldap.ParseDN(baseDN)
	if err != nil || len(dn.RDNs) == 0 {
		return ""
	}
	labels := make([]string, 0, len(dn.RDNs))
	for _, rdn := range dn.RDNs {
		if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "DC") {
			return ""
		}
		labels = append(labels, rdn.Attributes[0].Value)
	}
	return strings.Join(labels, ".")
}

// forAccount says why an imported account must never be rotated: it is
// one autoimport signs in as ("" when it may be rotated).
func (u *credentialUses) forAccount(a ImportedAccount) string {
	return u.use(credentialAccountOf(a))
}

// credentialUses are the accounts the rotation pass must leave alone,
// read once per pass.
func (p *rotationPass) credentialUses(ctx context.Context) *credentialUses {
	secrets := secretsOf(p.r.Connector)
	if secrets == nil {
		secrets = &secret.Resolver{Key: p.r.Key}
	}
	return loadCredentialUses(ctx, p.r.Store, p.t, p.c, secrets)
}

// secretsOf is how a Connector opens the tenant's secret references, when
// it says (cmd/internal/connect does); nil otherwise.
func secretsOf(c Connector) *secret.Resolver {
	if s, ok := c.(interface{ Secrets() *secret.Resolver }); ok {
		return s.Secrets()
	}
	return nil
}

// signsInOpen reports a pending rotation of an account autoimport signs
// in as (one started before it was known as such): setting its sealed
// password again would lock autoimport out if the directory never took
// it, so it is not rolled forward; it stays open, the sealed password
// kept, for a person.
func (p *rotationPass) signsInOpen(a ImportedAccount, x PasswordRotation, why string) AccountRotation {
	return AccountRotation{Subject: a.Source + ":" + a.SourceID, Username: a.Username, Target: x.Target, VaultIntegration: x.VaultIntegration, VaultRef: x.VaultRef,
		Outcome: OutcomeSkipped, Reason: fmt.Sprintf("not rotated: %s; the rotation left pending on %s is not rolled forward and stays open, its password kept (autoimport accounts password --customer %s %s shows it: if autoimport no longer binds, the directory took it and it is the bind password now)",
			why, x.StartedAt.Format(time.DateTime), p.c.ID, a.Username)}
}

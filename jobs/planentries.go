package jobs

import (
	"fmt"
	"strings"

	"github.com/msp-tools/autoimport/sinks"
)

// One vault entry, one account. Two accounts linked to one entry would
// both be rotated into it, and one password lost; so an import never
// matches an entry that an imported account is linked to, and never gives
// one entry to two new accounts of a pass. Such an account is ambiguous,
// and the reason names the other account: a person decides, as for two
// entries that fit one account (product §4: "a technician decides"). When
// two new accounts fit one entry, neither gets it — which one the entry
// belongs to is the same kind of question — unless a technician chose it
// for one of them: that one gets it, and the other is ambiguous.

// EntryUses knows the vault entries a plan must not give to a new account
// (the plan's input; nil checks nothing): those linked to an imported
// account, and those several new accounts of the pass would get.
type EntryUses struct {
	contested map[entryKey]*entryClaims
}

// entryKey is one entry of one vault.
type entryKey struct{ vault, ref string }

// entryClaims is who has, or would get, one entry.
type entryClaims struct {
	// linked names the imported account linked to the entry.
	linked string
	// fresh are the new accounts of the pass that would get it.
	fresh []entryClaim
}

type entryClaim struct {
	key, name string
	// chosen: a technician chose the entry for this account.
	chosen bool
}

// accountName names an account in a reason: "ad:<id> (username)".
func accountName(source, id, username string) string {
	return fmt.Sprintf("%s:%s (%s)", source, id, username)
}

// entryUses works out, before the pass plans its new accounts, which
// entries they contend for: each new account's match (or chosen entry)
// is compared with the others' and with the ledger's links. It holds only
// the contested entries once built.
func (ps *pass) entryUses(in PlanInput, fresh *newAccounts) *EntryUses {
	claims := map[entryKey]*entryClaims{}
	for i := range fresh.len() {
		c := fresh.get(i)
		opts := in.Options[c.Type]
		ix := in.Vaults[c.Type]
		if ix == nil || opts.On(Paused) || !opts.On(VaultMatch) {
			continue
		}
		k := string(c.Source) + ":" + c.ID
		ch := ps.choices[k]
		claim := entryClaim{key: k, name: accountName(string(c.Source), c.ID, c.Username), chosen: ch.VaultRef != ""}
		ref := ch.VaultRef
		if ref == "" {
			if m := ix.Match(identityOf(&c)); m.Outcome == sinks.Matched {
				ref = m.Entry.Ref
			}
		}
		if ref == "" {
			continue
		}
		ek := entryKey{in.VaultName[c.Type], ref}
		cl := claims[ek]
		if cl == nil {
			cl = &entryClaims{}
			claims[ek] = cl
		}
		cl.fresh = append(cl.fresh, claim)
	}
	if len(claims) == 0 {
		return nil
	}
	strs := ps.ledger.shared.strs
	for k, i := range ps.ledger.at {
		e := &ps.ledger.entries[i]
		ref := e.data[e.usernameEnd:e.vaultRefEnd]
		if ref == "" {
			continue
		}
		if cl := claims[entryKey{strs[e.vaultIntegration], ref}]; cl != nil {
			cl.linked = accountName(k.source, k.id, e.data[:e.usernameEnd])
		}
	}
	for k, cl := range claims {
		if cl.linked == "" && len(cl.fresh) < 2 {
			delete(claims, k)
		}
	}
	return &EntryUses{contested: claims}
}

// conflict says why the account under key may not get entry ref of vault,
// "" when it may.
func (u *EntryUses) conflict(vault, ref, key string) string {
	if u == nil {
		return ""
	}
	cl := u.contested[entryKey{vault, ref}]
	if cl == nil {
		return ""
	}
	if cl.linked != "" {
		return fmt.Sprintf("entry %s is linked to %s already, and one vault entry holds one account's password: a technician must choose another entry or have one created (autoimport accounts match --vault-entry ID | --vault-create)", ref, cl.linked)
	}
	var me entryClaim
	var chosenFor, others []string
	for _, c := range cl.fresh {
		switch {
		case c.key == key:
			me = c
		case c.chosen:
			chosenFor = append(chosenFor, c.name)
			others = append(others, c.name)
		default:
			others = append(others, c.name)
		}
	}
	switch {
	case me.chosen && len(chosenFor) == 0:
		return "" // a technician's choice wins
	case !me.chosen && len(chosenFor) > 0:
		return fmt.Sprintf("entry %s was chosen for %s by a technician, and one vault entry holds one account's password: a technician must choose another entry or have one created (autoimport accounts match --vault-entry ID | --vault-create)", ref, strings.Join(chosenFor, ", "))
	}
	return fmt.Sprintf("entry %s fits %s as well, and one vault entry holds one account's password: a technician must choose (autoimport accounts match --vault-entry ID | --vault-create)", ref, strings.Join(others, ", "))
}

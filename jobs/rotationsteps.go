package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/sinks"
)

// The steps of one account's rotation. A new rotation:
//
//	start     check the account and its entry; seal a new password and
//	          record the rotation pending (attempt 1)
//	set       set it in the directory; record set
//	writeBack write it to the account's current vault entry, read it
//	          back, and record done (the sealed copy goes only then)
//
// A rotation left open (a crash, a lost answer, a lost lease, a failure)
// is rolled forward by the next pass: pending is set again with the same
// sealed password (attempt n+1, recorded before the call), set goes on to
// writeBack. Nothing ever discards a sealed password but a read-back.

// passwordWriter writes a new password into a vault entry and reads it
// back (sinks.PasswordWriter).
type passwordWriter interface {
	SetPassword(ctx context.Context, scope sinks.VaultScope, ref, password, notes string) error
	Password(ctx context.Context, scope sinks.VaultScope, ref string) (string, error)
}

// rotationAttention starts the reasons the rotation gives a person, so
// that a finished rotation clears what it asked.
const rotationAttention = "rotation: "

// sealedPlace is where a rotation's sealed password belongs: it opens
// there only (a value copied into another customer's or account's row
// does not).
func sealedPlace(x PasswordRotation) string {
	return "rotation/" + x.Customer + "/" + x.Source + ":" + x.SourceID + "/password"
}

func newRotationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// call runs fn, a directory or vault call, only while the lease holds,
// in a context that ends when the lease is lost (or its time runs out):
// a call waiting on retries never outlives the lease. The lease is also
// the call's fence, which the clients ask right before each request goes
// out: one that waited past the lease's time (a paused process whose
// timer has not fired yet) is not sent.
func (p *rotationPass) call(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := p.holds(); err != nil {
		return err
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(p.lease.Context(), func() { cancel(context.Cause(p.lease.Context())) })
	defer stop()
	return fn(fence.With(cctx, p.lease.Lost))
}

// record writes a rotation's new state with its audit event in one
// transaction, if this pass still holds the lease and the row is still
// the version from (nil: a new rotation, over a closed one). done also
// notes when the account was rotated and clears what the rotation asked
// of a person. ErrLeaseLost and ErrStale stop the pass.
func (p *rotationPass) record(ctx context.Context, x PasswordRotation, from *RotationVersion, action string, extra map[string]string) error {
	err := fenced(ctx, p.r.Store, p.lease, func(tx Tx) error {
		var err error
		if from == nil {
			err = tx.StartRotation(ctx, x)
		} else {
			err = tx.UpdateRotation(ctx, x, *from)
		}
		if err != nil {
			return err
		}
		if x.State == RotationDone {
			if err := tx.SetRotated(ctx, x.Customer, x.Source, x.SourceID, x.DoneAt); err != nil {
				return err
			}
			if a, ok := p.attention[ledgerKey{x.Source, x.SourceID}]; ok && strings.HasPrefix(a.Reason, rotationAttention) {
				if err := tx.DeleteAttention(ctx, x.Customer, x.Source, x.SourceID); err != nil {
					return err
				}
			}
		}
		return p.audit(ctx, tx, action, x, extra)
	})
	if err != nil {
		if errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrStale) {
			return fmt.Errorf("customer %s: %s: rotation %s: %w: stopped; the holder of the lease finishes it", p.c.ID, x.Username, x.ID, err)
		}
		return fmt.Errorf("customer %s: %s: %w", p.c.ID, x.Username, err)
	}
	return nil
}

// audit writes one rotation event; it names the account and the vault
// entry, never the password.
func (p *rotationPass) audit(ctx context.Context, tx Tx, action string, x PasswordRotation, extra map[string]string) error {
	after := map[string]string{"rotation": x.ID, "attempt": strconv.Itoa(x.Attempt), "state": x.State, "target": x.Target,
		"vault_integration": x.VaultIntegration, "vault_ref": x.VaultRef}
	for k, v := range extra {
		after[k] = v
	}
	_, err := tx.AppendAudit(ctx, AuditEvent{At: p.r.now(), Actor: p.r.actor(), Action: action, Customer: p.c.ID, Subject: x.Source + ":" + x.SourceID, After: doc(after)})
	return err
}

// start checks a due account and its vault entry, seals a new password
// and records the rotation pending, then sets it.
func (p *rotationPass) start(ctx context.Context, a ImportedAccount) error {
	dir, err := p.directoryOf(a)
	if err != nil {
		p.report(a, OutcomeSkipped, "not rotated: "+err.Error())
		return nil
	}
	var st DirectoryStatus
	if err := p.call(ctx, func(ctx context.Context) (err error) { st, err = dir.Status(ctx, a); return err }); err != nil {
		return p.notStarted(a, err)
	}
	switch {
	case !st.Exists:
		p.report(a, OutcomeSkipped, fmt.Sprintf("not rotated: the account is missing in %s", dir.Name()))
		return nil
	case !st.Enabled:
		p.report(a, OutcomeSkipped, fmt.Sprintf("not rotated: the account is disabled in %s", dir.Name()))
		return nil
	case st.NotHere != "":
		p.report(a, OutcomeSkipped, "not rotated: "+st.NotHere)
		return nil
	}
	v, scope, _, err := p.vaultOf(a)
	if err != nil {
		p.report(a, OutcomeFailed, "not rotated: "+err.Error())
		return nil
	}
	er, ok := v.(entryReader)
	if !ok {
		p.report(a, OutcomeFailed, "not rotated: "+v.Name()+" cannot look an entry up by id")
		return nil
	}
	if err := p.call(ctx, func(ctx context.Context) error { _, err := er.Entry(ctx, scope, a.VaultRef); return err }); err != nil {
		if errors.Is(err, sinks.ErrNotFound) {
			return p.entryGone(ctx, a, err)
		}
		return p.notStarted(a, fmt.Errorf("%s entry %s: %w", v.Name(), a.VaultRef, err))
	}

	pw, err := password.Generate(p.opts.Number(RotationLength).Value, a.Username, a.DisplayName)
	if err != nil {
		return fmt.Errorf("customer %s: %s: %w", p.c.ID, a.Username, err)
	}
	var marker string
	if err := p.call(ctx, func(ctx context.Context) (err error) { marker, err = dir.Mark(ctx, a); return err }); err != nil {
		return p.notStarted(a, err)
	}
	x := PasswordRotation{Customer: p.c.ID, Source: a.Source, SourceID: a.SourceID, ID: newRotationID(), Attempt: 1, Username: a.Username,
		State: RotationPending, Target: dir.Name(), Marker: marker, VaultIntegration: v.Name(), VaultRef: a.VaultRef, StartedAt: p.r.now()}
	x.Sealed = p.r.Key.SealFor([]byte(pw), sealedPlace(x))
	if err := p.record(ctx, x, nil, "rotation.pending", nil); err != nil {
		return err
	}
	if err := p.r.after("pending"); err != nil {
		return err
	}
	return p.set(ctx, a, dir, x, pw)
}

// notStarted reports a due account whose rotation did not start: nothing
// changed anywhere. A lost lease stops the pass.
func (p *rotationPass) notStarted(a ImportedAccount, err error) error {
	if lost := p.holds(); lost != nil {
		return lost
	}
	p.report(a, OutcomeFailed, "not rotated: "+err.Error())
	return nil
}

// set sets a pending rotation's password in the directory (x.Attempt is
// recorded already) and goes on to the vault once the directory took it.
// A refusal of a first attempt (the only call ever made for it) closes
// the rotation failed: the directory said no to the only request it got,
// so the old password stands. A refusal of a later attempt leaves the
// rotation open for a person, unless the directory can show it holds the
// password already. Any other failure leaves it open for the next pass.
func (p *rotationPass) set(ctx context.Context, a ImportedAccount, dir PasswordDirectory, x PasswordRotation, pw string) error {
	err := p.call(ctx, func(ctx context.Context) error { return dir.SetPassword(ctx, a, pw) })
	if err := p.r.after("directory"); err != nil {
		return err
	}
	extra := map[string]string(nil)
	switch {
	case err == nil:
	case errors.Is(err, ErrPasswordRefused) && x.Attempt == 1:
		from := x.Version()
		x.State, x.Sealed, x.Error, x.DoneAt = RotationFailed, "", err.Error(), p.r.now()
		if rerr := p.record(ctx, x, &from, "rotation.failed", map[string]string{"error": err.Error()}); rerr != nil {
			return rerr
		}
		p.report(a, OutcomeFailed, "not rotated: "+err.Error()+"; the old password stands and nothing was written to the vault")
		return nil
	case errors.Is(err, ErrPasswordRefused):
		var took bool
		if terr := p.call(ctx, func(ctx context.Context) (err error) { took, err = dir.Took(ctx, a, pw, x.Marker); return err }); terr != nil || !took {
			return p.needsPerson(ctx, a, x, err)
		}
		extra = map[string]string{"found": dir.Name() + " refused to set it again but already holds it: " + err.Error()}
	default:
		if lost := p.holds(); lost != nil {
			return lost
		}
		p.report(a, OutcomeUnknown, fmt.Sprintf("%s did not set the new password (%v); the next pass sets the same password again and finishes (autoimport accounts password --customer %s %s reads it meanwhile)",
			dir.Name(), err, p.c.ID, a.Username))
		return nil
	}
	from := x.Version()
	x.State, x.SetAt, x.Error = RotationSet, p.r.now(), ""
	if err := p.record(ctx, x, &from, "rotation.set", extra); err != nil {
		return err
	}
	if err := p.r.after("set"); err != nil {
		return err
	}
	return p.writeBack(ctx, a, x, pw)
}

// needsPerson keeps a rotation the directory refused to finish open and
// asks a person: its sealed password stays readable (autoimport accounts
// password) until it is set or a person decides.
func (p *rotationPass) needsPerson(ctx context.Context, a ImportedAccount, x PasswordRotation, refusal error) error {
	reason := fmt.Sprintf("%srotation could not be finished: %s refused to set the pending password again (%v); it stays open and is tried every pass; its password: autoimport accounts password --customer %s %s",
		rotationAttention, x.Target, refusal, p.c.ID, a.Username)
	p.setAttention(ctx, a, StateFailed, reason)
	p.report(a, OutcomeFailed, strings.TrimPrefix(reason, rotationAttention))
	return nil
}

// rollForward finishes a rotation an earlier pass left open: a pending one
// by setting its sealed password again, a set one by writing the vault.
// It writes to the account's current vault entry: a re-link since the
// rotation started is honoured (and audited).
func (p *rotationPass) rollForward(ctx context.Context, a ImportedAccount, x PasswordRotation) error {
	pwb, err := p.r.Key.OpenFor(x.Sealed, sealedPlace(x))
	if err != nil {
		p.report(a, OutcomeFailed, fmt.Sprintf("the password of the rotation started %s cannot be opened: %v; it stays open", x.StartedAt.Format(time.DateTime), err))
		return nil
	}
	pw := string(pwb)
	if x.VaultIntegration != a.VaultIntegration || x.VaultRef != a.VaultRef {
		from := x.Version()
		before := map[string]string{"vault_integration": x.VaultIntegration, "vault_ref": x.VaultRef}
		x.VaultIntegration, x.VaultRef = a.VaultIntegration, a.VaultRef
		if err := p.record(ctx, x, &from, "rotation.relinked", map[string]string{"from": before["vault_integration"] + " " + before["vault_ref"]}); err != nil {
			return err
		}
	}
	if x.State == RotationSet {
		return p.writeBack(ctx, a, x, pw)
	}
	dir, err := p.directoryOf(a)
	if err != nil {
		p.report(a, OutcomeUnknown, "the rotation left pending cannot be finished: "+err.Error())
		return nil
	}
	from := x.Version()
	x.Attempt++
	if err := p.record(ctx, x, &from, "rotation.retry", map[string]string{"reason": "set the pending password again: the pass that started it did not finish"}); err != nil {
		return err
	}
	if err := p.r.after("retry"); err != nil {
		return err
	}
	return p.set(ctx, a, dir, x, pw)
}

// writeBack writes a password the directory took to the account's vault
// entry, reads it back, and records the rotation done once the entry
// holds it. Anything less leaves the rotation set: every pass retries it,
// and the password can be read from the store meanwhile (autoimport
// accounts password).
func (p *rotationPass) writeBack(ctx context.Context, a ImportedAccount, x PasswordRotation, pw string) error {
	if len(p.sharing[ledgerKey{a.Source, a.SourceID}]) > 0 {
		p.report(a, OutcomeVaultPending, fmt.Sprintf("password changed in %s, vault not yet updated: %s", x.Target, p.sharedEntry(a)))
		return nil
	}
	v, scope, w, err := p.vaultOf(a)
	if err == nil {
		notes := fmt.Sprintf("Password rotated by autoimport on %s; set in %s.", p.r.now().Format(time.DateOnly), x.Target)
		err = p.call(ctx, func(ctx context.Context) error { return w.SetPassword(ctx, scope, x.VaultRef, pw, notes) })
	}
	if err == nil {
		if err = p.r.after("vault"); err != nil {
			return err
		}
		var got string
		err = p.call(ctx, func(ctx context.Context) (err error) { got, err = w.Password(ctx, scope, x.VaultRef); return err })
		if err == nil && got != pw {
			err = fmt.Errorf("%s acknowledged the write, but entry %s holds another password when read back", v.Name(), x.VaultRef)
		}
	}
	if err != nil {
		if lost := p.holds(); lost != nil {
			return lost
		}
		if errors.Is(err, sinks.ErrNotFound) {
			p.setAttention(ctx, a, StateAmbiguous, fmt.Sprintf("%svault entry %s no longer exists: the new password of %s is in autoimport's store (autoimport accounts password); choose an entry with autoimport accounts match",
				rotationAttention, x.VaultRef, x.Target))
		}
		p.report(a, OutcomeVaultPending, fmt.Sprintf("password changed in %s, vault not yet updated: %v; retried every pass (autoimport accounts password --customer %s %s reads it meanwhile)", x.Target, err, p.c.ID, a.Username))
		return nil
	}
	from := x.Version()
	x.State, x.Sealed, x.DoneAt, x.Error = RotationDone, "", p.r.now(), ""
	if err := p.record(ctx, x, &from, "rotation.done", map[string]string{"vault": v.Name(), "read_back": "matches"}); err != nil {
		return err
	}
	if err := p.r.after("done"); err != nil {
		return err
	}
	p.report(a, OutcomeRotated, fmt.Sprintf("new password set in %s, written to %s entry %s and read back", x.Target, v.Name(), x.VaultRef))
	return nil
}

// directoryOf is where an account's password is set.
func (p *rotationPass) directoryOf(a ImportedAccount) (PasswordDirectory, error) {
	d := p.conn.Directories[a.Source]
	if d == nil {
		return nil, fmt.Errorf("customer %s has no %s source configured to set %s's password in", p.c.ID, targetOf(a), a.Username)
	}
	return d, nil
}

// vaultOf is the vault an administrator's entry is in, and the calls
// rotation needs of it. The account's link must be to that vault: an id
// of another vault names another entry there.
func (p *rotationPass) vaultOf(a ImportedAccount) (sinks.Vault, sinks.VaultScope, passwordWriter, error) {
	v, scope := vaultOf(p.conn, Admin)
	if v == nil {
		return nil, scope, nil, fmt.Errorf("customer %s has no vault for administrators any more", p.c.ID)
	}
	if a.VaultIntegration != "" && a.VaultIntegration != v.Name() {
		return nil, scope, nil, fmt.Errorf("%s's entry %s is in %s, but the customer's administrator vault is now %s: re-link it (autoimport accounts match)", a.Username, a.VaultRef, a.VaultIntegration, v.Name())
	}
	pw, ok := v.(passwordWriter)
	if !ok {
		return nil, scope, nil, fmt.Errorf("%s cannot write passwords", v.Name())
	}
	return v, scope, pw, nil
}

// entryGone turns an administrator whose vault entry was deleted to
// ambiguous: it is not rotated until a technician links an entry.
func (p *rotationPass) entryGone(ctx context.Context, a ImportedAccount, err error) error {
	reason := fmt.Sprintf("vault entry %s no longer exists (%v): not rotated; link an entry with autoimport accounts match --customer %s %s --vault-entry ID", a.VaultRef, err, p.c.ID, a.Username)
	p.setAttention(ctx, a, StateAmbiguous, rotationAttention+reason)
	p.report(a, OutcomeSkipped, reason)
	return nil
}

func (p *rotationPass) setAttention(ctx context.Context, a ImportedAccount, state, reason string) {
	err := fenced(ctx, p.r.Store, p.lease, func(tx Tx) error {
		return tx.PutAttention(ctx, AccountAttention{Customer: p.c.ID, Source: a.Source, SourceID: a.SourceID, Type: a.Type, Username: a.Username,
			DisplayName: a.DisplayName, Email: a.Email, State: state, Reason: reason, Since: p.r.now()})
	})
	if err != nil {
		p.log.WithError(err).Warn("could not record that an administrator needs a person")
	}
}

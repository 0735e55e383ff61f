package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
	"github.com/sirupsen/logrus"
)

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// rotateWhenFree runs a pass as soon as the customer's lease is free: an
// earlier holder's lease expires on the database's clock.
func rotateWhenFree(t *testing.T, r *jobs.Rotator, s *store.Store, opt jobs.RotateOptions) *jobs.RotationReport {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rep := rotate(t, r, s, opt)
		if rep.Status != jobs.StatusBusy || time.Now().After(deadline) {
			return rep
		}
	}
}

// The rotation's promise, tried where it used to break: a wrong "not
// taken", two holders, a vault that acknowledges what it did not store, a
// re-link while a rotation is open, a sealed value moved to another row.
// After each, the directory's password is in the vault or sealed in the
// store, and a later pass leaves the vault right.

// wrapConnector replaces the directory or the administrators' vault the
// fixture's connector hands out.
type wrapConnector struct {
	inner jobs.Connector
	dir   func(jobs.PasswordDirectory) jobs.PasswordDirectory
	vault func(sinks.Vault) sinks.Vault
}

func (w wrapConnector) Connect(ctx context.Context, t *jobs.Tenant, c jobs.Customer) (*jobs.Connections, error) {
	conn, err := w.inner.Connect(ctx, t, c)
	if err != nil {
		return nil, err
	}
	if w.dir != nil {
		conn.Directories["ad"] = w.dir(conn.Directories["ad"])
	}
	if w.vault != nil {
		conn.Vaults[jobs.Admin] = w.vault(conn.Vaults[jobs.Admin])
	}
	return conn, nil
}

// staleDirectory answers Took as a replica that has not seen a change
// would ("not taken"), and, with statusErr, fails Status as a directory
// with a transient fault does.
type staleDirectory struct {
	*memDirectory
	statusErr error
}

func (d *staleDirectory) Took(context.Context, jobs.ImportedAccount, string, string) (bool, error) {
	return false, nil
}

func (d *staleDirectory) Status(ctx context.Context, a jobs.ImportedAccount) (jobs.DirectoryStatus, error) {
	if d.statusErr != nil {
		return jobs.DirectoryStatus{}, d.statusErr
	}
	return d.memDirectory.Status(ctx, a)
}

func vaultPassword(v *memVault, ref string) string {
	pw, _ := v.Password(context.Background(), sinks.VaultScope{}, ref)
	return pw
}

// sealedPassword opens an account's open rotation's password; "" when
// none is open.
func sealedPassword(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	x := rotationOf(t, s, id)
	if !x.Open() {
		return ""
	}
	pw, err := rotationKey.OpenFor(x.Sealed, jobs.SealedPlace(x))
	if err != nil {
		t.Fatalf("the open rotation's password does not open: %v", err)
	}
	return string(pw)
}

// known fails the test unless the account's directory password is in the
// vault or sealed in the store.
func known(t *testing.T, s *store.Store, w *world, a jobs.ImportedAccount) {
	t.Helper()
	pw, _ := w.dir.state(a.SourceID)
	// The fixture's vault does not hold the initial password the entry
	// held before any rotation; the directory's initial password is known.
	if pw != "Initial-Passw0rd!" && pw != vaultPassword(w.vault, a.VaultRef) && pw != sealedPassword(t, s, a.SourceID) {
		t.Fatalf("LOST: %s's directory password is in neither the vault nor the store (rotation %+v)", a.Username, rotationOf(t, s, a.SourceID))
	}
}

// finished checks that the rotation is done and the vault holds what the
// directory holds, one new password having been set.
func finished(t *testing.T, s *store.Store, w *world, a jobs.ImportedAccount) {
	t.Helper()
	pw, _ := w.dir.state(a.SourceID)
	x := rotationOf(t, s, a.SourceID)
	if x.State != jobs.RotationDone || x.Sealed != "" || pw == "Initial-Passw0rd!" || pw != vaultPassword(w.vault, a.VaultRef) || w.dir.distinct(a.SourceID) != 1 {
		t.Fatalf("not finished: rotation %s, %d passwords set, directory == vault: %v", x.State, w.dir.distinct(a.SourceID), pw == vaultPassword(w.vault, a.VaultRef))
	}
}

// A "not taken" answer that is wrong (a replica behind, a Graph timestamp
// of the same second) never discards the sealed password: the open
// rotation is rolled forward by setting the same password again, even
// when the account is not due any more or the directory's Status fails.
func TestWrongNotTakenNeverLosesThePassword(t *testing.T) {
	for _, variant := range []string{"status fails on the next pass", "started by --now, not due on the next pass"} {
		t.Run(variant, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f, r := rotationWorld(t, s, 1)
				acme := f.worlds["acme"]
				a := ledgerOf(t, s, "acme")["adm-0"]
				opt := jobs.RotateOptions{}
				if strings.HasPrefix(variant, "started by --now") {
					soon := time.Now().Add(2 * 24 * time.Hour)
					r.Now = func() time.Time { return soon }
					opt.Now = true
				}
				// The directory applies the password; the answer is lost.
				acme.dir.fault = func(string) (error, bool) { return nil, true }
				if rep := rotate(t, r, s, opt); rep.Accounts[0].Outcome != jobs.OutcomeUnknown {
					t.Fatalf("pass 1: %+v", rep.Accounts)
				}
				acme.dir.fault = nil
				known(t, s, acme, a)
				stale := &staleDirectory{memDirectory: acme.dir}
				if strings.HasPrefix(variant, "status fails") {
					stale.statusErr = errors.New("Graph: GET /users/x: HTTP 503 (transient)")
				}
				next := &jobs.Rotator{Store: s, Key: rotationKey, Log: r.Log, Now: r.Now,
					Connector: wrapConnector{inner: r.Connector, dir: func(jobs.PasswordDirectory) jobs.PasswordDirectory { return stale }}}
				rep := rotate(t, next, s, jobs.RotateOptions{})
				if rep.Status != jobs.StatusOK || rep.Accounts[0].Outcome != jobs.OutcomeRotated {
					t.Fatalf("pass 2: %+v", rep)
				}
				finished(t, s, acme, a)
			})
		})
	}
}

// When the directory refuses to set the pending password again (its
// policy changed), the rotation stays open for a person, with the
// directory's reason, and the password stays readable beside the
// vault's; Took may show the directory holds it already, and then the
// vault is written. Took's answer never discards the password.
func TestRefusedRetryKeepsTheRotationOpen(t *testing.T) {
	for _, variant := range []string{"the directory never received it", "the directory holds it"} {
		t.Run(variant, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f, r := rotationWorld(t, s, 1)
				acme := f.worlds["acme"]
				a := ledgerOf(t, s, "acme")["adm-0"]
				holds := variant == "the directory holds it"
				acme.dir.fault = func(string) (error, bool) {
					if holds {
						return nil, true // applied, answer lost
					}
					return fmt.Errorf("%w: connection reset before the request was sent", jobs.ErrOutcomeUnknown), false
				}
				rotate(t, r, s, jobs.RotateOptions{})
				pending := sealedPassword(t, s, a.SourceID)
				if pending == "" {
					t.Fatal("no open rotation after a lost answer")
				}
				acme.dir.fault = func(string) (error, bool) {
					return fmt.Errorf("%w: 0000052D: Constraint violation - check_password_restrictions: the password is too short", jobs.ErrPasswordRefused), false
				}
				rep := rotate(t, r, s, jobs.RotateOptions{})
				known(t, s, acme, a)
				if holds {
					if rep.Accounts[0].Outcome != jobs.OutcomeRotated {
						t.Fatalf("the directory holds it: %+v", rep.Accounts)
					}
					finished(t, s, acme, a)
					return
				}
				if rep.Accounts[0].Outcome != jobs.OutcomeFailed || !strings.Contains(rep.Accounts[0].Reason, "rotation could not be finished") ||
					!strings.Contains(rep.Accounts[0].Reason, "too short") {
					t.Fatalf("refused: %+v", rep.Accounts)
				}
				if got := vaultPassword(acme.vault, a.VaultRef); got == pending {
					t.Fatal("the vault received a password the directory does not hold")
				}
				if sealedPassword(t, s, a.SourceID) != pending {
					t.Fatal("the pending password is gone")
				}
				if att := attentionOf(t, s)["adm-0"]; att.State != jobs.StateFailed || !strings.Contains(att.Reason, "rotation could not be finished") {
					t.Fatalf("no person is asked: %+v", att)
				}
				p, err := f.accounts().PendingPassword(context.Background(), "acme", "adm-0", rotationKey)
				if err != nil || p.Password != pending || p.State != jobs.RotationPending || p.Attempt != 2 {
					t.Fatalf("accounts password: %+v, %v", p, err)
				}
				// The policy is put right: the next pass finishes and clears
				// what it asked of a person.
				acme.dir.fault = nil
				if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Accounts[0].Outcome != jobs.OutcomeRotated {
					t.Fatalf("after the fix: %+v", rep.Accounts)
				}
				finished(t, s, acme, a)
				if _, ok := attentionOf(t, s)["adm-0"]; ok {
					t.Fatal("the finished rotation still asks a person")
				}
			})
		})
	}
}

// lyingStore's renewals say yes without renewing: a process whose lease
// ran out while it was paused, that has not noticed yet.
type lyingStore struct {
	*store.Store
}

func (s lyingStore) RenewLease(context.Context, string, string, int64, time.Duration) (bool, error) {
	return true, nil
}

// A holder paused past its lease and the replica that took the customer
// over never lose a password between them: the one that took over rolls
// the open rotation forward with its sealed password; the paused one,
// when it wakes, writes nothing more to the store (its writes are fenced
// on the database) and what it sends to the directory or the vault is the
// same password.
func TestTwoHoldersNeverLoseAPassword(t *testing.T) {
	for _, pauseAt := range []string{"pending", "directory", "set", "vault"} {
		t.Run("paused after "+pauseAt, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f, rA := rotationWorld(t, s, 1)
				acme := f.worlds["acme"]
				a := ledgerOf(t, s, "acme")["adm-0"]
				rA.Store, rA.LeaseTTL = lyingStore{s}, 300*time.Millisecond
				paused, resume := make(chan struct{}), make(chan struct{})
				var once sync.Once
				jobs.SetRotationStep(rA, func(step string) error {
					if step == pauseAt {
						once.Do(func() { close(paused); <-resume })
					}
					return nil
				})
				var repA *jobs.RotationReport
				aDone := make(chan struct{})
				go func() { defer close(aDone); repA = rotate(t, rA, s, jobs.RotateOptions{}) }()
				<-paused
				// A's lease expires on the database's clock; B takes the
				// customer as soon as it can and finishes what A left.
				rB := &jobs.Rotator{Store: s, Connector: rA.Connector, Key: rotationKey, Log: rA.Log, Now: rA.Now}
				repB := rotateWhenFree(t, rB, s, jobs.RotateOptions{})
				if repB.Status != jobs.StatusOK || repB.Outcomes[jobs.OutcomeRotated] != 1 {
					t.Fatalf("B: %+v", repB)
				}
				finished(t, s, acme, a)
				close(resume)
				<-aDone
				if repA.Status == jobs.StatusOK || !strings.Contains(repA.Error, "lease") {
					t.Fatalf("A went on after losing its lease: %+v", repA)
				}
				known(t, s, acme, a)
				finished(t, s, acme, a)
			})
		})
	}
}

// A lease lost mid-pass (its renewal fails) stops the rotation: no
// directory or vault call and no record after the loss but those under
// way; the next pass finishes every account, each with one password.
func TestLostLeaseStopsTheRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 12)
		acme := f.worlds["acme"]
		ls := &losingStore{Store: s, renewErr: errors.New("connection refused"), creates: new(atomic.Int32)}
		r.Store, r.LeaseTTL = ls, 300*time.Millisecond
		lost := &lostHook{said: make(chan struct{})}
		log := quietLog()
		log.AddHook(lost)
		r.Log = log
		// From the third directory call on, the renewal fails, and every
		// call waits until the lease is lost; the calls made after that
		// are counted.
		var mu sync.Mutex
		var setAfter, sets int
		jobs.SetRotationStep(r, func(step string) error {
			if step != "directory" {
				return nil
			}
			mu.Lock()
			sets++
			if sets == 3 {
				ls.lose.Store(true)
			}
			mu.Unlock()
			if !ls.lose.Load() {
				return nil
			}
			select {
			case <-lost.said:
				mu.Lock()
				setAfter++
				mu.Unlock()
			default:
				<-lost.said
			}
			return nil
		})
		rep := rotate(t, r, s, jobs.RotateOptions{})
		if rep.Status != jobs.StatusFailed || !strings.Contains(rep.Error, "lease") {
			t.Fatalf("after the loss: %s %q", rep.Status, rep.Error)
		}
		mu.Lock()
		after := setAfter
		mu.Unlock()
		if after > jobs.RotationWorkers {
			t.Errorf("%d directory calls after the lease was lost", after)
		}
		rs, _ := s.Rotations(context.Background(), "acme")
		if len(rs) >= 12 {
			t.Errorf("every account's rotation started although the lease was lost early: %d", len(rs))
		}
		next := &jobs.Rotator{Store: s, Connector: r.Connector, Key: rotationKey, Log: quietLog(), Now: r.Now}
		if rep := rotateWhenFree(t, next, s, jobs.RotateOptions{}); rep.Status != jobs.StatusOK || rep.Outcomes[jobs.OutcomeRotated]+rep.Outcomes[jobs.OutcomeNotDue] != 12 {
			t.Fatalf("next pass: %+v", rep.Outcomes)
		}
		for _, a := range ledgerOf(t, s, "acme") {
			finished(t, s, acme, a)
		}
	})
}

// dropVault acknowledges password writes it does not store.
type dropVault struct{ *memVault }

func (v dropVault) SetPassword(ctx context.Context, s sinks.VaultScope, ref, pw, notes string) error {
	_, err := v.Entry(ctx, s, ref)
	return err
}

// A vault that acknowledges a write it did not apply does not end the
// rotation: the read-back finds another password, the rotation stays set
// with its sealed password, and the next pass writes it.
func TestRotationReadsTheVaultBackBeforeDone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 1)
		acme := f.worlds["acme"]
		a := ledgerOf(t, s, "acme")["adm-0"]
		honest := r.Connector
		r.Connector = wrapConnector{inner: honest, vault: func(v sinks.Vault) sinks.Vault { return dropVault{v.(*memVault)} }}
		rep := rotate(t, r, s, jobs.RotateOptions{})
		if rep.Accounts[0].Outcome != jobs.OutcomeVaultPending || !strings.Contains(rep.Accounts[0].Reason, "holds another password when read back") {
			t.Fatalf("dropped write: %+v", rep.Accounts)
		}
		if x := rotationOf(t, s, a.SourceID); x.State != jobs.RotationSet {
			t.Fatalf("rotation %s after a dropped write", x.State)
		}
		known(t, s, acme, a)
		r.Connector = honest
		if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Accounts[0].Outcome != jobs.OutcomeRotated {
			t.Fatalf("honest vault: %+v", rep.Accounts)
		}
		finished(t, s, acme, a)
	})
}

// An open rotation writes to the account's current vault link: a
// technician's re-link (the old entry deleted, or still there) is
// honoured and audited, and the old entry receives nothing.
func TestOpenRotationWritesToTheCurrentLink(t *testing.T) {
	for _, variant := range []string{"old entry deleted", "old entry still there"} {
		t.Run(variant, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f, r := rotationWorld(t, s, 1)
				acme := f.worlds["acme"]
				a := ledgerOf(t, s, "acme")["adm-0"]
				if variant == "old entry deleted" {
					jobs.SetRotationStep(r, func(step string) error {
						if step == "set" {
							acme.vault.remove("org-acme", a.VaultRef)
						}
						return nil
					})
				} else {
					acme.vault.failWrite = func() error { return errors.New("IT Glue: HTTP 503") }
				}
				if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Accounts[0].Outcome != jobs.OutcomeVaultPending {
					t.Fatalf("pass 1: %+v", rep.Accounts)
				}
				jobs.SetRotationStep(r, nil)
				acme.vault.failWrite = nil
				ne, _ := acme.vault.Create(context.Background(), sinks.VaultScope{Customer: "acme", Container: "org-acme"}, sinks.NewVaultEntry{Name: "adm-0 (new)", Username: "adm-0"})
				if _, err := f.accounts().Match(context.Background(), "acme", "adm-0", jobs.MatchRequest{VaultRef: ne.Ref}); err != nil {
					t.Fatal(err)
				}
				if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Accounts[0].Outcome != jobs.OutcomeRotated {
					t.Fatalf("after the re-link: %+v", rep.Accounts)
				}
				a = ledgerOf(t, s, "acme")["adm-0"]
				finished(t, s, acme, a)
				if old := vaultPassword(acme.vault, ledgerOf(t, s, "acme")["adm-0"].VaultRef); old == "" {
					t.Fatal("the new entry is empty")
				}
				if x := rotationOf(t, s, a.SourceID); x.VaultRef != ne.Ref {
					t.Fatalf("the rotation names entry %s, not the linked %s", x.VaultRef, ne.Ref)
				}
				var relinked bool
				for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme", Subject: "ad:" + a.SourceID}) {
					if err != nil {
						t.Fatal(err)
					}
					relinked = relinked || e.Action == "rotation.relinked"
				}
				if !relinked {
					t.Fatal("the re-link of the open rotation is not audited")
				}
			})
		})
	}
}

// renamedVault is the customer's administrators' vault after a switch to
// another vault product: the same ids name other entries there.
type renamedVault struct{ *memVault }

func (renamedVault) Name() string { return "OtherVault" }

// After the customer's vault changes to another product, an open
// rotation writes nothing into whichever entry of the new vault has the
// old id: it waits for a re-link.
func TestOpenRotationNeverWritesAnIDIntoAnotherVault(t *testing.T) {
	s := storetest.SQLite(t)
	f, r := rotationWorld(t, s, 1)
	acme := f.worlds["acme"]
	a := ledgerOf(t, s, "acme")["adm-0"]
	acme.vault.failWrite = func() error { return errors.New("IT Glue: HTTP 503") }
	rotate(t, r, s, jobs.RotateOptions{})
	acme.vault.failWrite = nil
	other := renamedVault{newMemVault()}
	other.Create(context.Background(), sinks.VaultScope{Container: "org-acme"}, sinks.NewVaultEntry{Name: "someone else", Username: "ceo"})
	r.Connector = wrapConnector{inner: r.Connector, vault: func(sinks.Vault) sinks.Vault { return other }}
	rep := rotate(t, r, s, jobs.RotateOptions{})
	if rep.Accounts[0].Outcome != jobs.OutcomeVaultPending || !strings.Contains(rep.Accounts[0].Reason, "re-link it") {
		t.Fatalf("after the switch: %+v", rep.Accounts)
	}
	if pw := vaultPassword(other.memVault, a.VaultRef); pw != "" {
		t.Fatal("the other vault's entry with the old id received the password")
	}
	known(t, s, acme, a)
}

// Two accounts linked to one entry (before links were checked) are not
// rotated into it: each would overwrite the other's password.
func TestSharedEntryReceivesNoPassword(t *testing.T) {
	s := storetest.SQLite(t)
	f, r := rotationWorld(t, s, 2)
	acme := f.worlds["acme"]
	led := ledgerOf(t, s, "acme")
	if _, err := s.DB().Exec("UPDATE imported_accounts SET vault_ref = ? WHERE customer_id = 'acme' AND username = 'adm-1'", led["adm-0"].VaultRef); err != nil {
		t.Fatal(err)
	}
	rep := rotate(t, r, s, jobs.RotateOptions{})
	for _, ar := range rep.Accounts {
		if ar.Outcome != jobs.OutcomeSkipped || !strings.Contains(ar.Reason, "also linked to") {
			t.Fatalf("%s: %s %q", ar.Username, ar.Outcome, ar.Reason)
		}
	}
	if _, n := acme.dir.state(""); n != 0 {
		t.Fatalf("%d passwords changed", n)
	}
}

// A sealed password copied into another account's row does not open
// there: it is bound to the customer, the account and the field.
func TestMovedSealedPasswordDoesNotOpen(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 2)
		acme := f.worlds["acme"]
		led := ledgerOf(t, s, "acme")
		acme.vault.failWrite = func() error { return errors.New("IT Glue: HTTP 503") }
		rotate(t, r, s, jobs.RotateOptions{})
		x0 := rotationOf(t, s, led["adm-0"].SourceID)
		if _, err := s.DB().Exec(s.DB().Rebind("UPDATE rotations SET sealed = ? WHERE customer_id = 'acme' AND source_id = ?"), x0.Sealed, led["adm-1"].SourceID); err != nil {
			t.Fatal(err)
		}
		_, err := f.accounts().PendingPassword(context.Background(), "acme", "adm-1", rotationKey)
		if err == nil || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("a moved sealed value: %v", err)
		}
		acme.vault.failWrite = nil
		rep := rotate(t, r, s, jobs.RotateOptions{})
		for _, ar := range rep.Accounts {
			if ar.Username == "adm-1" && (ar.Outcome != jobs.OutcomeFailed || !strings.Contains(ar.Reason, "cannot be opened")) {
				t.Fatalf("adm-1: %s %q", ar.Outcome, ar.Reason)
			}
		}
		if pw := vaultPassword(acme.vault, led["adm-1"].VaultRef); pw != "" && pw == sealedOf(t, s, led["adm-0"].SourceID, x0) {
			t.Fatal("adm-0's password was written to adm-1's entry")
		}
	})
}

func sealedOf(t *testing.T, s *store.Store, id string, x jobs.PasswordRotation) string {
	pw, _ := rotationKey.OpenFor(x.Sealed, jobs.SealedPlace(x))
	return string(pw)
}

// A password sealed before values were bound to their place is sealed
// again for it, once and audited; a value without a place copied into
// the store afterwards is not bound, and does not open.
func TestSealedValuesAreBoundOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 2)
		acme := f.worlds["acme"]
		led := ledgerOf(t, s, "acme")
		acme.vault.failWrite = func() error { return errors.New("IT Glue: HTTP 503") }
		rotate(t, r, s, jobs.RotateOptions{})
		pw0 := sealedPassword(t, s, led["adm-0"].SourceID)
		// As an older autoimport left it: sealed without a place.
		legacy := rotationKey.Seal([]byte(pw0))
		setSealed := func(id, v string) {
			if _, err := s.DB().Exec("UPDATE rotations SET sealed = ? WHERE customer_id = 'acme' AND source_id = ?", v, id); err != nil {
				t.Fatal(err)
			}
		}
		setSealed(led["adm-0"].SourceID, legacy)
		n, err := jobs.BindSealedValues(context.Background(), s, rotationKey, "test")
		if err != nil || n != 1 || sealedPassword(t, s, led["adm-0"].SourceID) != pw0 {
			t.Fatalf("bind: %d, %v", n, err)
		}
		var audited bool
		for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme"}) {
			if err != nil {
				t.Fatal(err)
			}
			audited = audited || e.Action == "store.sealed-bound"
		}
		if !audited {
			t.Fatal("the binding is not audited")
		}
		// adm-0's old form copied into adm-1's row later: never bound.
		setSealed(led["adm-1"].SourceID, legacy)
		if n, err := jobs.BindSealedValues(context.Background(), s, rotationKey, "test"); n != 0 || err != nil {
			t.Fatalf("bound again: %d, %v", n, err)
		}
		if _, err := f.accounts().PendingPassword(context.Background(), "acme", "adm-1", rotationKey); err == nil {
			t.Fatal("a value without a place opened")
		}
		acme.vault.failWrite = nil
		rotate(t, r, s, jobs.RotateOptions{})
		if vaultPassword(acme.vault, led["adm-1"].VaultRef) == pw0 {
			t.Fatal("adm-0's password was written to adm-1's entry")
		}
		finished(t, s, acme, led["adm-0"])
	})
}

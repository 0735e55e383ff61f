package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/password"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// memDirectory holds administrators' passwords as a directory would.
type memDirectory struct {
	mu       sync.Mutex
	pw       map[string]string // by account id
	disabled map[string]bool
	changes  int
	// set lists, by account, every password set, in order.
	set map[string][]string
	// fault, when set, is asked before each change: refuse (nothing
	// changes), or apply then lose the answer.
	fault func(id string) (refuse error, applyThenLose bool)
}

func newMemDirectory() *memDirectory {
	return &memDirectory{pw: map[string]string{}, disabled: map[string]bool{}, set: map[string][]string{}}
}

func (d *memDirectory) Name() string { return "Active Directory" }

func (d *memDirectory) Status(ctx context.Context, a jobs.ImportedAccount) (jobs.DirectoryStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return jobs.DirectoryStatus{Exists: true, Enabled: !d.disabled[a.SourceID]}, nil
}

func (d *memDirectory) Mark(context.Context, jobs.ImportedAccount) (string, error) { return "", nil }

func (d *memDirectory) SetPassword(ctx context.Context, a jobs.ImportedAccount, pw string) error {
	if err := password.CheckADComplexity(pw, a.Username, a.DisplayName); err != nil {
		return fmt.Errorf("%w: %w", jobs.ErrPasswordRefused, err)
	}
	var lose bool
	if d.fault != nil {
		var refuse error
		if refuse, lose = d.fault(a.SourceID); refuse != nil {
			return refuse
		}
	}
	d.mu.Lock()
	d.pw[a.SourceID] = pw
	d.set[a.SourceID] = append(d.set[a.SourceID], pw)
	d.changes++
	d.mu.Unlock()
	if lose {
		return fmt.Errorf("%w: the connection dropped", jobs.ErrOutcomeUnknown)
	}
	return nil
}

func (d *memDirectory) Took(ctx context.Context, a jobs.ImportedAccount, pw, _ string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pw[a.SourceID] == pw, nil
}

func (d *memDirectory) state(id string) (string, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pw[id], d.changes
}

// distinct counts the different passwords ever set for an account: a
// rotation rolled forward sets one password, perhaps more than once.
func (d *memDirectory) distinct(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, pw := range d.set[id] {
		seen[pw] = true
	}
	return len(seen)
}

// SetPassword and Password make memVault a password writer.
func (v *memVault) SetPassword(ctx context.Context, s sinks.VaultScope, ref, pw, notes string) error {
	if v.failWrite != nil {
		if err := v.failWrite(); err != nil {
			return err
		}
	}
	if _, err := v.Entry(ctx, s, ref); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.passwords == nil {
		v.passwords = map[string]string{}
	}
	v.passwords[ref] = pw
	return nil
}

func (v *memVault) Password(ctx context.Context, s sinks.VaultScope, ref string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.passwords[ref], nil
}

var rotationKey, _ = secret.NewKey([]byte("0123456789abcdef0123456789abcdef"))

// rotationWorld imports acme's administrators and returns the rotator of a
// day after they are due.
func rotationWorld(t *testing.T, s *store.Store, admins int) (*fixture, *jobs.Rotator) {
	t.Helper()
	f := setup(t, s)
	acme := f.worlds["acme"]
	for i := range admins {
		u := user(100+i, jobs.Admin)
		u.Username, u.DisplayName = fmt.Sprintf("adm-%d", i), fmt.Sprintf("Admin Person %d", i)
		acme.ad.accounts = append(acme.ad.accounts, u)
		acme.dir.pw[u.ID] = "Initial-Passw0rd!"
	}
	if cr := customerReport(f.run(t, jobs.RunOptions{Customers: []string{"acme"}}), "acme"); cr.Counts.Imported != admins {
		t.Fatalf("import: %+v", cr.Counts)
	}
	later := time.Now().Add(31 * 24 * time.Hour)
	return f, &jobs.Rotator{Store: s, Connector: f.runner.Connector, Key: rotationKey, Log: f.runner.Log, Now: func() time.Time { return later }}
}

func rotate(t *testing.T, r *jobs.Rotator, s *store.Store, opt jobs.RotateOptions) *jobs.RotationReport {
	t.Helper()
	tn, err := s.LoadTenant(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tn.Customer("acme")
	return r.Rotate(context.Background(), tn, c, opt)
}

func rotationOf(t *testing.T, s *store.Store, id string) jobs.PasswordRotation {
	t.Helper()
	rs, err := s.Rotations(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.SourceID == id {
			return r
		}
	}
	return jobs.PasswordRotation{}
}

func TestRotationWritesTheNewPasswordBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 2)
		acme := f.worlds["acme"]
		led := ledgerOf(t, s, "acme")
		dry := rotate(t, r, s, jobs.RotateOptions{DryRun: true})
		if dry.Outcomes[jobs.OutcomeWouldRotate] != 2 || !strings.Contains(dry.Accounts[0].Reason, "24-character password in Active Directory") {
			t.Fatalf("dry run: %+v", dry)
		}
		if _, n := acme.dir.state(led["adm-0"].SourceID); n != 0 {
			t.Fatal("a dry run changed a password")
		}
		rep := rotate(t, r, s, jobs.RotateOptions{})
		if rep.Status != jobs.StatusOK || rep.Outcomes[jobs.OutcomeRotated] != 2 {
			t.Fatalf("rotation: %+v", rep)
		}
		for _, name := range []string{"adm-0", "adm-1"} {
			a := led[name]
			pw, _ := acme.dir.state(a.SourceID)
			vaultPW, _ := acme.vault.Password(context.Background(), sinks.VaultScope{}, a.VaultRef)
			if len(pw) != 24 || pw != vaultPW || password.CheckADComplexity(pw, a.Username, a.DisplayName) != nil {
				t.Fatalf("%s: directory %q, vault %q", name, pw, vaultPW)
			}
			if x := rotationOf(t, s, a.SourceID); x.State != jobs.RotationDone || x.Sealed != "" {
				t.Fatalf("%s: rotation %+v", name, x)
			}
		}
		// Audit events name the account and the entry, never the password.
		pw0, _ := acme.dir.state(led["adm-0"].SourceID)
		var actions []string
		for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme", Subject: "ad:" + led["adm-0"].SourceID}) {
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(e.After+e.Before, pw0) {
				t.Fatalf("audit event %s holds the password", e.Action)
			}
			if strings.HasPrefix(e.Action, "rotation.") {
				actions = append(actions, e.Action)
				if !strings.Contains(e.After, led["adm-0"].VaultRef) {
					t.Errorf("%s does not name the vault entry: %s", e.Action, e.After)
				}
			}
		}
		if strings.Join(actions, ",") != "rotation.pending,rotation.set,rotation.done" {
			t.Fatalf("audit: %v", actions)
		}
		// Not due again within the interval.
		again := rotate(t, r, s, jobs.RotateOptions{})
		if _, n := acme.dir.state(""); n != 2 || again.Outcomes[jobs.OutcomeNotDue] != 2 {
			t.Fatalf("second pass: %d changes, %+v", n, again.Outcomes)
		}
	})
}

// A crash after any step, or between the directory call and its answer,
// leaves no account with a password nobody knows: the next pass rolls the
// rotation forward (the same password set again, then the vault); the
// vault then holds the password the directory has, and the account got
// one new password, never two.
func TestRotationSurvivesACrashAtEveryStep(t *testing.T) {
	for _, step := range []string{"pending", "directory", "set", "vault", "done", "lost answer"} {
		t.Run(step, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f, r := rotationWorld(t, s, 1)
				acme := f.worlds["acme"]
				a := ledgerOf(t, s, "acme")["adm-0"]
				if step == "lost answer" {
					acme.dir.fault = func(string) (error, bool) { return nil, true }
				} else {
					jobs.SetRotationStep(r, func(at string) error {
						if at == step {
							return errors.New("the process died")
						}
						return nil
					})
				}
				if first := rotate(t, r, s, jobs.RotateOptions{}); first.Status == jobs.StatusOK {
					t.Fatalf("the crashed pass reports ok: %+v", first)
				}
				// Meanwhile the password is known: in the directory's old
				// value, or sealed in the store, or in the vault.
				x := rotationOf(t, s, a.SourceID)
				pw, _ := acme.dir.state(a.SourceID)
				vaultPW, _ := acme.vault.Password(context.Background(), sinks.VaultScope{}, a.VaultRef)
				opened, err := rotationKey.OpenFor(x.Sealed, jobs.SealedPlace(x))
				if pw != "Initial-Passw0rd!" && pw != vaultPW && (err != nil || string(opened) != pw) {
					t.Fatalf("after the crash the directory holds a password neither old, sealed nor in the vault: %+v", x)
				}
				// The next process finishes.
				acme.dir.fault = nil
				next := &jobs.Rotator{Store: s, Connector: r.Connector, Key: rotationKey, Log: r.Log, Now: r.Now}
				rep := rotate(t, next, s, jobs.RotateOptions{})
				pw, _ = acme.dir.state(a.SourceID)
				vaultPW, _ = acme.vault.Password(context.Background(), sinks.VaultScope{}, a.VaultRef)
				if rep.Status != jobs.StatusOK || acme.dir.distinct(a.SourceID) != 1 || pw != vaultPW || pw == "Initial-Passw0rd!" {
					t.Fatalf("next pass: %+v; %d passwords set; directory %q, vault %q", rep, acme.dir.distinct(a.SourceID), pw, vaultPW)
				}
				if x := rotationOf(t, s, a.SourceID); x.State != jobs.RotationDone || x.Sealed != "" {
					t.Fatalf("rotation left %s", x.State)
				}
				// And none more within the interval.
				_, changes := acme.dir.state(a.SourceID)
				rotate(t, next, s, jobs.RotateOptions{})
				if _, n := acme.dir.state(a.SourceID); n != changes || acme.dir.distinct(a.SourceID) != 1 {
					t.Fatalf("rotated again: %d changes after %d", n, changes)
				}
			})
		})
	}
}

func TestRotationFailuresWriteNothingToTheVault(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 3)
		acme := f.worlds["acme"]
		led := ledgerOf(t, s, "acme")
		// adm-0: the domain refuses; adm-1: disabled; adm-2: its vault entry is gone.
		acme.dir.fault = func(id string) (error, bool) {
			if id == led["adm-0"].SourceID {
				return fmt.Errorf("%w: check_password_restrictions: the password was already used (in history)!", jobs.ErrPasswordRefused), false
			}
			return nil, false
		}
		acme.dir.disabled[led["adm-1"].SourceID] = true
		acme.vault.remove("org-acme", led["adm-2"].VaultRef)
		rep := rotate(t, r, s, jobs.RotateOptions{})
		by := map[string]jobs.AccountRotation{}
		for _, a := range rep.Accounts {
			by[a.Username] = a
		}
		if by["adm-0"].Outcome != jobs.OutcomeFailed || !strings.Contains(by["adm-0"].Reason, "already used (in history)") ||
			by["adm-1"].Outcome != jobs.OutcomeSkipped || !strings.Contains(by["adm-1"].Reason, "disabled") ||
			by["adm-2"].Outcome != jobs.OutcomeSkipped || !strings.Contains(by["adm-2"].Reason, "no longer exists") {
			t.Fatalf("outcomes: %+v", rep.Accounts)
		}
		if _, n := acme.dir.state(""); n != 0 {
			t.Fatalf("%d passwords changed", n)
		}
		if pw, _ := acme.vault.Password(context.Background(), sinks.VaultScope{}, led["adm-0"].VaultRef); pw != "" {
			t.Fatal("a refused password was written to the vault")
		}
		att := attentionOf(t, s)
		if att["adm-2"].State != jobs.StateAmbiguous {
			t.Fatalf("an administrator whose entry is gone is not ambiguous: %+v", att)
		}
		// The import pass leaves that state to a technician.
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if attentionOf(t, s)["adm-2"].State != jobs.StateAmbiguous {
			t.Fatal("the next import cleared the state")
		}
	})
}

// A vault write that fails after the directory took the password is
// retried every pass and reported until it succeeds; meanwhile the
// password is sealed in the store.
func TestRotationRetriesTheVaultWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 1)
		acme := f.worlds["acme"]
		a := ledgerOf(t, s, "acme")["adm-0"]
		acme.vault.failWrite = func() error { return errors.New("IT Glue: 503 Service Unavailable") }
		for range 2 {
			rep := rotate(t, r, s, jobs.RotateOptions{})
			if rep.Accounts[0].Outcome != jobs.OutcomeVaultPending || !strings.Contains(rep.Accounts[0].Reason, "password changed in Active Directory, vault not yet updated") {
				t.Fatalf("vault down: %+v", rep.Accounts)
			}
		}
		x := rotationOf(t, s, a.SourceID)
		pw, changes := acme.dir.state(a.SourceID)
		if opened, _ := rotationKey.OpenFor(x.Sealed, jobs.SealedPlace(x)); x.State != jobs.RotationSet || string(opened) != pw || changes != 1 {
			t.Fatalf("while the vault is down: %+v, %d changes", x, changes)
		}
		acme.vault.failWrite = nil
		rep := rotate(t, r, s, jobs.RotateOptions{})
		vaultPW, _ := acme.vault.Password(context.Background(), sinks.VaultScope{}, a.VaultRef)
		if rep.Accounts[0].Outcome != jobs.OutcomeRotated || vaultPW != pw {
			t.Fatalf("vault back: %+v", rep.Accounts)
		}
	})
}

// While the vault cannot be written, a technician reads the new password
// from the store; the read is audited, the password never.
func TestPendingPasswordIsReadableAndAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 1)
		acme := f.worlds["acme"]
		a := ledgerOf(t, s, "acme")["adm-0"]
		acc := f.accounts()
		if _, err := acc.PendingPassword(context.Background(), "acme", "adm-0", rotationKey); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("before any rotation: %v", err)
		}
		acme.vault.failWrite = func() error { return errors.New("IT Glue: 503") }
		rotate(t, r, s, jobs.RotateOptions{})
		p, err := acc.PendingPassword(context.Background(), "acme", "adm-0", rotationKey)
		pw, _ := acme.dir.state(a.SourceID)
		if err != nil || p.Password != pw || p.State != jobs.RotationSet {
			t.Fatalf("pending password: %+v, %v", p, err)
		}
		rows, _ := acc.List(context.Background(), "acme", jobs.AccountFilter{Type: jobs.Admin})
		if rows[0].Rotation != jobs.RotationSet || !strings.Contains(rows[0].Reason, "vault not yet updated") {
			t.Fatalf("list: %+v", rows[0])
		}
		var read bool
		for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{Customer: "acme"}) {
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(e.After, pw) {
				t.Fatalf("%s holds the password", e.Action)
			}
			read = read || e.Action == "rotation.password-read"
		}
		if !read {
			t.Fatal("the read is not audited")
		}
	})
}

// rotation_days and rotation_length come from the admin options in force:
// a policy's 7 days make an administrator imported 8 days ago due, and its
// length is the new password's.
func TestRotationFollowsTheAdminOptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 1)
		eightDays := time.Now().Add(8 * 24 * time.Hour)
		r.Now = func() time.Time { return eightDays }
		if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Outcomes[jobs.OutcomeNotDue] != 1 {
			t.Fatalf("with the default 30 days: %+v", rep.Accounts)
		}
		tn, _ := s.LoadTenant(context.Background())
		for i := range tn.Policies {
			if tn.Policies[i].Name == "Admins" {
				tn.Policies[i].Numbers = jobs.Numbers{jobs.RotationDays: 7, jobs.RotationLength: 40}
			}
		}
		if _, err := (&jobs.TenantAdmin{Store: s, Actor: "test"}).Apply(context.Background(), tn); err != nil {
			t.Fatal(err)
		}
		rep := rotate(t, r, s, jobs.RotateOptions{})
		a := ledgerOf(t, s, "acme")["adm-0"]
		pw, _ := f.worlds["acme"].dir.state(a.SourceID)
		if rep.Outcomes[jobs.OutcomeRotated] != 1 || len(pw) != 40 {
			t.Fatalf("with 7 days and 40 characters: %+v; password of %d characters", rep.Accounts, len(pw))
		}
	})
}

// A crash while several administrators are rotated at once stops the
// others from starting; the next pass finishes every one, once.
func TestRotationCrashAmongConcurrentRotations(t *testing.T) {
	s := storetest.SQLite(t)
	f, r := rotationWorld(t, s, 9)
	acme := f.worlds["acme"]
	var n int
	var mu sync.Mutex
	jobs.SetRotationStep(r, func(at string) error {
		mu.Lock()
		defer mu.Unlock()
		if at == "set" {
			if n++; n == 3 {
				return errors.New("the process died")
			}
		}
		return nil
	})
	if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Status == jobs.StatusOK {
		t.Fatalf("the crashed pass reports ok: %+v", rep)
	}
	next := &jobs.Rotator{Store: s, Connector: r.Connector, Key: rotationKey, Log: r.Log, Now: r.Now}
	// Those the first pass finished are not due; the others are finished.
	rep := rotate(t, next, s, jobs.RotateOptions{})
	if rep.Status != jobs.StatusOK || rep.Outcomes[jobs.OutcomeRotated]+rep.Outcomes[jobs.OutcomeNotDue] != 9 || rep.Outcomes[jobs.OutcomeNotDue] == 0 {
		t.Fatalf("next pass: %+v", rep.Outcomes)
	}
	if _, changes := acme.dir.state(""); changes != 9 {
		t.Fatalf("%d password changes for 9 administrators", changes)
	}
	rs, _ := s.Rotations(context.Background(), "acme")
	for _, x := range rs {
		if x.State != jobs.RotationDone {
			t.Errorf("%s left %s", x.Username, x.State)
		}
	}
}

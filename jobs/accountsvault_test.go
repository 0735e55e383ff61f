package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

// noPasswordInAudit fails when an event of action holds pw in Before or
// After, or when there is no such event; it returns the events.
func noPasswordInAudit(t *testing.T, s *store.Store, action, pw string) []jobs.AuditEvent {
	t.Helper()
	var out []jobs.AuditEvent
	for e, err := range s.AuditEvents(context.Background(), jobs.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.Before, pw) || strings.Contains(e.After, pw) {
			t.Fatalf("audit event %d %s holds the password: before %s, after %s", e.ID, e.Action, e.Before, e.After)
		}
		if e.Action == action {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s event: the read is not audited", action)
	}
	return out
}

// The password of a rotation the vault has not taken is read with its
// audit event, which names who (the declared actor, the OS user and host)
// and holds the password neither before nor after.
func TestPasswordReadIsAuditedWithoutThePassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, r := rotationWorld(t, s, 1)
		acme := f.worlds["acme"]
		acme.vault.failWrite = func() error { return errors.New("IT Glue: 503") }
		rotate(t, r, s, jobs.RotateOptions{})
		acc := f.accounts()
		acc.Actor = jobs.RecordedActor("tech")
		p, err := acc.PendingPassword(context.Background(), "acme", "adm-0", rotationKey)
		if err != nil || p.Password == "" {
			t.Fatalf("pending password: %+v, %v", p, err)
		}
		for _, e := range noPasswordInAudit(t, s, "rotation.password-read", p.Password) {
			if declared, osUser, host := jobs.ParseActor(e.Actor); declared != "tech" || osUser == "" || host == "" {
				t.Fatalf("the read does not say who: actor %q", e.Actor)
			}
		}
	})
}

// techVaultWorld imports n administrators of acme into the Technician
// Vault and rotates them, so that each entry holds its password; it
// returns the fixture, a technician's Accounts and the rotator.
func techVaultWorld(t *testing.T, s *store.Store, n int) (*fixture, *jobs.Accounts, *jobs.Rotator) {
	t.Helper()
	f := setup(t, s)
	acme := f.worlds["acme"]
	acme.adminVault = techvault.New(s, rotationKey)
	for i := range n {
		u := user(100+i, jobs.Admin)
		u.Username, u.DisplayName = fmt.Sprintf("adm-%d", i), fmt.Sprintf("Admin Person %d", i)
		acme.ad.accounts = append(acme.ad.accounts, u)
		acme.dir.pw[u.ID] = "Initial-Passw0rd!"
	}
	f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
	later := time.Now().Add(31 * 24 * time.Hour)
	r := &jobs.Rotator{Store: s, Connector: f.runner.Connector, Key: rotationKey, Log: f.runner.Log, Now: func() time.Time { return later }}
	if rep := rotate(t, r, s, jobs.RotateOptions{}); rep.Outcomes[jobs.OutcomeRotated] != n {
		t.Fatalf("rotation: %+v", rep.Accounts)
	}
	acc := f.accounts()
	acc.Actor = jobs.RecordedActor("tech")
	acc.TechVault = techvault.New(s, rotationKey)
	return f, acc, r
}

// The Technician Vault can be read: a technician lists a customer's
// entries with the account each holds (no password), shows one by entry
// id or by account, and reveals its password, which is the directory's;
// each reveal is audited with who, never with the password.
func TestTechnicianVaultCanBeRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f, acc, _ := techVaultWorld(t, s, 2)
		acme, ctx := f.worlds["acme"], context.Background()
		led := ledgerOf(t, s, "acme")
		l, err := acc.VaultEntries(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Entries) != 2 || l.Enabled {
			t.Fatalf("listing: %+v", l)
		}
		for _, e := range l.Entries {
			a := led[e.AccountUsername]
			if e.ID != a.VaultRef || e.Account != "ad:"+a.SourceID || !e.HasPassword || e.LastRotated.IsZero() || e.Category != "Active Directory" {
				t.Fatalf("entry %+v of %+v", e, a)
			}
		}

		adm0 := led["adm-0"]
		byAccount, err := acc.VaultEntry(ctx, "acme", "adm-0")
		if err != nil {
			t.Fatal(err)
		}
		byID, err := acc.VaultEntry(ctx, "acme", adm0.VaultRef)
		if err != nil || byID.ID != byAccount.ID || byID.Account != byAccount.Account || byID.ID != adm0.VaultRef {
			t.Fatalf("show by id %+v, %v; by account %+v", byID, err, byAccount)
		}

		p, err := acc.RevealVaultPassword(ctx, "acme", "ad:"+adm0.SourceID)
		want, _ := acme.dir.state(adm0.SourceID)
		if err != nil || p.Password != want || p.Entry.ID != adm0.VaultRef {
			t.Fatalf("reveal: %+v, %v; the directory holds %q", p, err, want)
		}
		reveals := noPasswordInAudit(t, s, "vault.reveal", want)
		declared, osUser, _ := jobs.ParseActor(reveals[0].Actor)
		if e := reveals[0]; declared != "tech" || osUser == "" || e.Subject != "ad:"+adm0.SourceID || !strings.Contains(e.After, adm0.VaultRef) {
			t.Fatalf("reveal event: %+v", e)
		}
		if d, _ := acc.Show(ctx, "acme", "adm-0"); d.History[len(d.History)-1].Action != "vault.reveal" {
			t.Fatalf("the account's history does not show the reveal: %+v", d.History)
		}

		// Refusals: an unknown name, another customer's entry, an entry
		// with no password yet.
		if _, err := acc.RevealVaultPassword(ctx, "acme", "nobody"); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		other, err := techvault.New(s, rotationKey).Create(ctx, sinks.VaultScope{Customer: "bravo", Container: "bravo"}, sinks.NewVaultEntry{Name: "Bravo admin", Username: "root", Password: "bravo-secret"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acc.RevealVaultPassword(ctx, "acme", other.Ref); !errors.Is(err, sinks.ErrWrongCustomer) {
			t.Fatalf("another customer's entry: %v", err)
		}
		u := user(102, jobs.Admin)
		u.Username = "adm-new"
		acme.ad.accounts = append(acme.ad.accounts, u)
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if _, err := acc.RevealVaultPassword(ctx, "acme", "adm-new"); !errors.Is(err, jobs.ErrNotFound) || !strings.Contains(err.Error(), "no password yet") {
			t.Fatalf("an entry without a password: %v", err)
		}
		// An end user's entry is in IT Glue, not here: said so.
		acme.ad.accounts = append(acme.ad.accounts, user(7, jobs.EndUser))
		f.run(t, jobs.RunOptions{Customers: []string{"acme"}})
		if _, err := acc.VaultEntry(ctx, "acme", "user7"); !errors.Is(err, jobs.ErrNotFound) || !strings.Contains(err.Error(), "not to the Technician Vault") {
			t.Fatalf("an entry of another vault: %v", err)
		}
	})
}

// While a rotation of the account is open, the entry may hold the old
// password: show and reveal say so, and where the newer one is.
func TestRevealSaysWhenARotationIsOpen(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		_, acc, r := techVaultWorld(t, s, 1)
		ctx := context.Background()
		jobs.SetRotationStep(r, func(step string) error {
			if step == "set" {
				return errors.New("killed")
			}
			return nil
		})
		rotate(t, r, s, jobs.RotateOptions{Now: true})
		p, err := acc.RevealVaultPassword(ctx, "acme", "adm-0")
		if err != nil || !strings.Contains(p.Entry.Pending, "a rotation of adm-0 is open") || !strings.Contains(p.Entry.Pending, "autoimport accounts password") {
			t.Fatalf("reveal during an open rotation: %+v, %v", p, err)
		}
	})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/sandbox"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sql/store/storetest"
)

var (
	builtOnce sync.Once
	builtPath string
	builtErr  error
)

// binary builds the autoimport command once per test process.
func binary(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autoimport-bin")
		if err != nil {
			builtErr = err
			return
		}
		builtPath = filepath.Join(dir, "autoimport")
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", builtPath, ".").CombinedOutput()
		if err != nil {
			builtErr = errors.New(string(out))
		}
	})
	if builtErr != nil {
		t.Fatalf("build autoimport: %v", builtErr)
	}
	return builtPath
}

// The real `autoimport rotate` process, killed with SIGKILL at random
// moments, 50 times, against the sandbox's fake domain controllers,
// Microsoft 365 and the Technician Vault: after every kill each
// administrator's password is in the vault or readable as the pending
// password of its open rotation (what `accounts password` prints); a
// normal run then leaves every vault entry holding the directory's
// password and nothing open. The next process takes a killed one's lease
// over at once. On SQLite and MariaDB.
func TestRotationSurvivesSIGKILL(t *testing.T) {
	bin := binary(t)
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			o := sandbox.Options{Customers: 3, Accounts: 20, Seed: 5, Dir: t.TempDir(), Concurrency: 3}
			if dialect == "mysql" {
				o.DatabaseURL = storetest.MySQLURL(t)
			}
			env, err := sandbox.Start(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer env.Close()
			if _, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true}); err != nil {
				t.Fatal(err)
			}
			var customers []string
			for _, c := range env.Customers() {
				customers = append(customers, c.ID)
			}
			args := []string{"rotate", "--now"}
			for _, c := range customers {
				args = append(args, "--customer", c)
			}
			environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			environ = append(environ, env.Environ()...)
			rotate := func() *exec.Cmd {
				cmd := exec.Command(bin, args...)
				cmd.Env = environ
				return cmd
			}
			// A whole pass, timed, so that kills fall all through one.
			began := time.Now()
			if out, err := rotate().CombinedOutput(); err != nil {
				t.Fatalf("a whole rotation: %v\n%s", err, out)
			}
			whole := time.Since(began)
			t.Logf("one whole rotation of %d customers takes %s", len(customers), whole.Round(time.Millisecond))
			check := newPasswordCheck(t, env)
			check.known(t, "after the whole pass")

			rng := rand.New(rand.NewPCG(2026, 12))
			open := 0
			for i := range 50 {
				cmd := rotate()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(whole + whole/5))))
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				open += check.known(t, fmt.Sprintf("after kill %d", i+1))
			}
			t.Logf("50 kills left %d administrators with an open rotation, each readable", open)
			// A normal run finishes whatever is open.
			cmd := exec.Command(bin, append([]string{"rotate"}, args[2:]...)...)
			cmd.Env = environ
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the run after the kills: %v\n%s", err, out)
			}
			check.finished(t)
		})
	}
}

// passwordCheck reads, in this process, what the directories, the vault
// and the store hold for every administrator.
type passwordCheck struct {
	env      *sandbox.Env
	accounts *jobs.Accounts
	vault    *techvault.Vault
	admins   map[string][]jobs.ImportedAccount
	m365     map[string]string // tenant id by customer
	ad       map[string]*ad.Source
}

func newPasswordCheck(t *testing.T, env *sandbox.Env) *passwordCheck {
	t.Helper()
	ctx := context.Background()
	c := &passwordCheck{env: env, vault: techvault.New(env.Store, env.Key), admins: map[string][]jobs.ImportedAccount{}, m365: map[string]string{}, ad: map[string]*ad.Source{},
		accounts: &jobs.Accounts{Store: env.Store, Connector: env.Connector(), Actor: "kill-test"}}
	tn, err := env.Store.LoadTenant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cu := range tn.Customers {
		if cu.Sources.M365 != nil {
			c.m365[cu.ID] = cu.Sources.M365.TenantID
		}
		if srv := env.AD[cu.ID]; srv != nil {
			if c.ad[cu.ID], err = ad.New(srv.Config(cu.ID)); err != nil {
				t.Fatal(err)
			}
		}
		for a, err := range env.Store.ImportedAccounts(ctx, cu.ID) {
			if err != nil {
				t.Fatal(err)
			}
			if a.Type == jobs.Admin && a.Rotation {
				c.admins[cu.ID] = append(c.admins[cu.ID], a)
			}
		}
	}
	if len(c.admins) == 0 {
		t.Fatal("no administrator to rotate")
	}
	return c
}

// holds reports whether pw is the account's password in its directory.
func (c *passwordCheck) holds(t *testing.T, customer string, a jobs.ImportedAccount, pw string) bool {
	t.Helper()
	if pw == "" {
		return false
	}
	if a.Source == "m365" {
		got, _ := c.env.Graph.Tenant(c.m365[customer]).Password(a.SourceID)
		return got == pw
	}
	ok, err := c.ad[customer].CheckPassword(context.Background(), ad.PasswordTarget{ObjectGUID: a.SourceID, Username: a.Username}, pw)
	if err != nil {
		t.Fatalf("%s %s: bind: %v", customer, a.Username, err)
	}
	return ok
}

func (c *passwordCheck) vaultPassword(t *testing.T, customer string, a jobs.ImportedAccount) string {
	t.Helper()
	pw, err := c.vault.Password(context.Background(), sinks.VaultScope{Customer: customer, Container: customer}, a.VaultRef)
	if err != nil {
		t.Fatalf("%s %s: vault: %v", customer, a.Username, err)
	}
	return pw
}

// known fails unless every administrator's directory password is in the
// vault or is its open rotation's pending password; it returns how many
// were found in an open rotation only.
func (c *passwordCheck) known(t *testing.T, when string) int {
	t.Helper()
	ctx := context.Background()
	open := 0
	for customer, admins := range c.admins {
		for _, a := range admins {
			if c.holds(t, customer, a, c.vaultPassword(t, customer, a)) {
				continue
			}
			p, err := c.accounts.PendingPassword(ctx, customer, a.Username, c.env.Key)
			if err != nil && !errors.Is(err, jobs.ErrNotFound) {
				t.Fatalf("%s: %s %s: accounts password: %v", when, customer, a.Username, err)
			}
			if err != nil || !c.holds(t, customer, a, p.Password) {
				t.Fatalf("%s: LOST: %s %s's directory password is in neither its vault entry nor its open rotation", when, customer, a.Username)
			}
			open++
		}
	}
	return open
}

// finished fails unless every vault entry holds its directory's password
// and no rotation is open.
func (c *passwordCheck) finished(t *testing.T) {
	t.Helper()
	for customer, admins := range c.admins {
		for _, a := range admins {
			if !c.holds(t, customer, a, c.vaultPassword(t, customer, a)) {
				t.Errorf("%s %s: the vault does not hold the directory's password", customer, a.Username)
			}
		}
		rs, err := c.env.Store.Rotations(context.Background(), customer)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range rs {
			if x.Open() {
				t.Errorf("%s %s: rotation left %s", customer, x.Username, x.State)
			}
		}
	}
}

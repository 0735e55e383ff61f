// Package sandbox starts a whole simulated MSP on loopback: a fake domain
// controller per on-prem customer, a multi-tenant Microsoft Graph, IT Glue,
// Hudu, ConnectWise, Autotask, HaloPSA and an SMTP relay, seeded with
// realistic customers (nested groups, privileged, disabled and hybrid users,
// vault entries with and without the right category, existing PSA
// contacts), and a SQLite store holding the tenant that points at them.
//
// It is what `go run ./cmd/sandbox` shows, what the benchmark scales up, and
// what end-to-end tests start:
//
//	env, err := sandbox.Start(ctx, sandbox.Options{Customers: 3, Accounts: 30})
//	if err != nil { ... }
//	defer env.Close()
//	rep, err := env.Runner().Run(ctx, jobs.RunOptions{AllowSurge: true})
//
// Everything generated is deterministic for a seed. The fakes accept their
// packages' default credentials; the tenant refers to them as env:SANDBOX_*
// references, which Start sets in the process environment (the same values
// for every Env, so several may run in one process).
package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/sirupsen/logrus"
)

// Options shape a sandbox. Zero values pick small, quick defaults.
type Options struct {
	// Customers is the number of simulated customers (default 6).
	Customers int
	// Accounts is the number of directory users per customer (default 40).
	Accounts int
	// Latency delays every answer of every fake.
	Latency time.Duration
	// RateLimit is the requests per second allowed per API credential:
	// the fakes refuse more (429), and the tenant's rate_limit paces the
	// clients at it (default 1000).
	RateLimit float64
	// FaultRate is the share of HTTP requests, from 0 to 1, that the fakes
	// answer 429 with Retry-After: 1 (spread evenly over the first run).
	FaultRate float64
	// Seed makes every generated name, id and entry reproducible
	// (default 1).
	Seed uint64
	// Dir holds the SQLite database, the CA certificates of the fake
	// domain controllers and the captured welcome emails; a temporary
	// directory, removed by Close, when empty.
	Dir string
	// DatabaseURL is the store to apply the tenant to, in
	// AUTOIMPORT_DATABASE_URL's form; it must hold no autoimport data yet.
	// Empty: a new SQLite file in Dir.
	DatabaseURL string
	// Concurrency is how many customers the runner imports at once
	// (default: all of them, up to 100).
	Concurrency int
	// Log receives the job's log lines (warnings only when nil).
	Log logrus.FieldLogger
}

// Env is a running sandbox.
type Env struct {
	// TenantYAML is the tenant file that was applied to the store.
	TenantYAML []byte
	// Tenant is TenantYAML parsed.
	Tenant *jobs.Tenant
	// Dir is the sandbox directory; DatabaseURL the store's URL
	// (sqlite:PATH in Dir unless Options name another); MailDir where the SMTP fake writes each accepted
	// welcome email as an .eml file.
	Dir, DatabaseURL, MailDir string
	// Store is the open store holding the tenant and the Technician Vault.
	Store *store.Store
	// Key is the secret key the Technician Vault seals with; its base64
	// form is AUTOIMPORT_SECRET_KEY in Vars.
	Key *secret.Key
	// SecretsDir is the sandbox's AUTOIMPORT_SECRETS_DIR (Dir/secrets):
	// the files the tenant's file: references and welcome template name.
	SecretsDir string
	// Vars are the environment variables the tenant's env: references
	// name (SANDBOX_*, which Start sets in the process environment), plus
	// AUTOIMPORT_DATABASE_URL, AUTOIMPORT_SECRET_KEY and
	// AUTOIMPORT_SECRETS_DIR for pointing the autoimport command at the
	// sandbox (which Start does not set).
	Vars map[string]string

	// The fakes.
	Graph       *m365test.Server
	ITGlue      *itgluetest.Server
	Hudu        *hudutest.Server
	HaloPSA     *halopsatest.Server
	ConnectWise *cwtest.Server
	Autotask    *autotasktest.Server
	SMTP        *emailtest.Server
	// AD holds the fake domain controller of each customer with an
	// on-prem directory, by customer id.
	AD map[string]*adtest.Server

	opts        Options
	customers   []*customer
	secretFiles map[string]string // name in SecretsDir -> content
	log         logrus.FieldLogger
	tempDir     bool
	closers     []func()
	smtpBase    int64
}

// Start starts every fake, seeds them, writes the tenant and applies it
// to a new SQLite store (or Options.DatabaseURL) through jobs.TenantAdmin,
// as `autoimport apply` would. Close releases it all; when Start fails it
// has already stopped whatever it started.
func Start(ctx context.Context, o Options) (*Env, error) {
	o = o.withDefaults()
	e := &Env{opts: o, AD: map[string]*adtest.Server{}, Vars: map[string]string{}, secretFiles: map[string]string{}, log: o.Log}
	if e.log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		e.log = l
	}
	if err := e.start(ctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return e, nil
}

func (o Options) withDefaults() Options {
	if o.Customers <= 0 {
		o.Customers = 6
	}
	if o.Accounts <= 0 {
		o.Accounts = 40
	}
	if o.RateLimit <= 0 {
		o.RateLimit = 1000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = min(o.Customers, 100)
	}
	o.FaultRate = min(max(o.FaultRate, 0), 1)
	return o
}

func (e *Env) start(ctx context.Context) error {
	o := e.opts
	e.Dir = o.Dir
	if e.Dir == "" {
		d, err := os.MkdirTemp("", "autoimport-sandbox-")
		if err != nil {
			return err
		}
		e.Dir, e.tempDir = d, true
	} else if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return err
	}
	e.MailDir = filepath.Join(e.Dir, "mail")
	if err := e.startFakes(); err != nil {
		return err
	}
	e.customers = plan(o)
	for _, c := range e.customers {
		if err := e.seed(c); err != nil {
			return fmt.Errorf("seed customer %s: %w", c.id, err)
		}
	}
	// The Technician Vault's key is derived from the seed so that a
	// person can reopen the store later with the printed variables.
	sum := sha256.Sum256(fmt.Appendf(nil, "autoimport sandbox key %d", o.Seed))
	var err error
	if e.Key, err = secret.NewKey(sum[:]); err != nil {
		return err
	}
	e.Vars["AUTOIMPORT_SECRET_KEY"] = base64.StdEncoding.EncodeToString(sum[:])
	e.SecretsDir = filepath.Join(e.Dir, "secrets")
	e.Vars[secret.SecretsDirVar] = e.SecretsDir

	t := e.tenant()
	if err := e.writeSecrets(); err != nil {
		return fmt.Errorf("write the secrets directory: %w", err)
	}
	yml, err := jobs.EncodeTenantFile(t)
	if err != nil {
		return fmt.Errorf("encode tenant: %w", err)
	}
	e.TenantYAML = append([]byte(tenantHeader), yml...)
	// Checked as `autoimport apply` checks it, with the sandbox's secrets
	// directory and key.
	if e.Tenant, err = jobs.ParseTenantFileToApply("sandbox-tenant.yaml", e.TenantYAML, &secret.Resolver{Key: e.Key, Dir: e.SecretsDir}); err != nil {
		return fmt.Errorf("the generated tenant does not parse: %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "tenant.yaml"), e.TenantYAML, 0o644); err != nil {
		return err
	}
	e.DatabaseURL = o.DatabaseURL
	if e.DatabaseURL == "" {
		dbPath := filepath.Join(e.Dir, "autoimport.db")
		for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		e.DatabaseURL = "sqlite:" + dbPath
	}
	e.Vars["AUTOIMPORT_DATABASE_URL"] = e.DatabaseURL
	if e.Store, err = store.Open(ctx, e.DatabaseURL, store.WithAuditKey(jobs.NewAuditKey(e.Key))); err != nil {
		return fmt.Errorf("open store %s: %w", safeURL(e.DatabaseURL), err)
	}
	e.closers = append(e.closers, func() { e.Store.Close() })
	if held, err := e.Store.LoadTenant(ctx); err != nil {
		return fmt.Errorf("read store: %w", err)
	} else if len(held.Customers) > 0 {
		return fmt.Errorf("the database %s already holds customers; the sandbox needs an empty one", safeURL(e.DatabaseURL))
	}
	admin := jobs.TenantAdmin{Store: e.Store, Actor: jobs.RecordedActor("sandbox")}
	if _, err := admin.Apply(ctx, e.Tenant); err != nil {
		return fmt.Errorf("apply tenant: %w", err)
	}
	for _, c := range e.customers {
		for _, te := range c.techVault {
			if err := e.Store.InsertTechVaultEntry(ctx, te); err != nil {
				return fmt.Errorf("seed Technician Vault of %s: %w", c.id, err)
			}
		}
	}
	for k, v := range e.Vars {
		if !strings.HasPrefix(k, "SANDBOX_") {
			continue // AUTOIMPORT_* are for a person's shell, not this process
		}
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	e.injectFaults()
	return nil
}

// Connector is the connector a runner needs to reach the fakes: secrets
// from the environment Start set and from SecretsDir, the Technician
// Vault in the store.
func (e *Env) Connector() *connect.Connector {
	return &connect.Connector{Key: e.Key, TechVault: e.Store, Log: e.log, SecretsDir: e.SecretsDir}
}

// Runner is a runner over the sandbox's store and fakes, importing every
// customer at once (Options.Concurrency).
func (e *Env) Runner() *jobs.Runner {
	return &jobs.Runner{Store: e.Store, Connector: e.Connector(), Log: e.log, Holder: "sandbox", LeaseTTL: 10 * time.Minute,
		Concurrency: e.opts.Concurrency, Surge: jobs.SurgeThreshold{Max: 50, Percent: 20}, Key: e.Key, Actor: jobs.RecordedActor("sandbox"),
		// Directories are read incrementally into copies in the store, as
		// autoimport run does.
		Copies: e.Store}
}

// Options returns the options in force, defaults filled in.
func (e *Env) Options() Options { return e.opts }

// CustomerInfo describes one simulated customer.
type CustomerInfo struct {
	ID, Name string
	// Profile says which kind of customer it is: "hybrid AD + M365",
	// "M365 only" or "AD only".
	Profile string
	// Vault is where its end users' passwords go, PSA where its contacts
	// live.
	Vault, PSA string
}

// Customers describes the simulated customers in order.
func (e *Env) Customers() []CustomerInfo {
	out := make([]CustomerInfo, len(e.customers))
	for i, c := range e.customers {
		out[i] = CustomerInfo{ID: c.id, Name: c.name, Profile: c.profile.String(), Vault: c.vaultName(), PSA: c.psaName()}
	}
	return out
}

// Close stops every fake, closes the store and removes a temporary
// directory. It is safe to call more than once.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
	if e.tempDir {
		os.RemoveAll(e.Dir)
		e.tempDir = false
	}
}

// Environ lists Vars as NAME=value lines, sorted.
func (e *Env) Environ() []string {
	out := make([]string, 0, len(e.Vars))
	for k, v := range e.Vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

const tenantHeader = `# The sandbox's tenant, generated by cmd/internal/sandbox. Every URL points
# at a fake on loopback; every secret is an env: reference the sandbox sets
# or a file: reference to its secrets directory (AUTOIMPORT_SECRETS_DIR),
# where the welcome email's text template is too.
`

// safeURL is a database URL without its password, for messages.
func safeURL(u string) string {
	at := strings.LastIndex(u, "@")
	if colon := strings.Index(u, ":"); at > 0 && colon >= 0 && colon < at && !strings.HasPrefix(u, "sqlite:") {
		return u[:colon] + ":…" + u[at:]
	}
	return u
}

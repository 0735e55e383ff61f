package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/kelseyhightower/envconfig"
	"github.com/mattn/go-isatty"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// Config is autoimport's configuration, read from AUTOIMPORT_* variables.
type Config struct {
	// DatabaseURL is a MySQL/MariaDB DSN or a SQLite file; empty means the
	// SQLite file autoimport.db in the working directory.
	DatabaseURL string `envconfig:"DATABASE_URL" desc:"MySQL DSN user:pass@tcp(host:3306)/db, or a SQLite file (sqlite:PATH); default sqlite:autoimport.db"`
	// SecretKey seals secrets stored in the database (32 bytes, base64).
	SecretKey string `envconfig:"SECRET_KEY" desc:"32 random bytes, base64 (openssl rand -base64 32)"`
	// SecretsDir is the only directory file: references and welcome-email
	// templates are read from; unset, they are refused.
	SecretsDir string `envconfig:"SECRETS_DIR" desc:"an absolute directory path such as /run/secrets"`
	// Schedule is the scheduler's cron spec.
	Schedule string `envconfig:"SCHEDULE" default:"0 2 * * *" desc:"cron spec, 5 fields or a descriptor such as @daily"`
	// TimeZone the schedule is read in.
	TimeZone string `envconfig:"TIMEZONE" default:"UTC" desc:"IANA time zone such as Europe/London"`
	// LogFormat is text or json; empty means text on a terminal, json otherwise.
	LogFormat string `envconfig:"LOG_FORMAT" desc:"text or json"`
	// LogLevel is the logrus level.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	// HTTPAddr serves /healthz and /metrics while the scheduler runs: on
	// loopback unless set (a container sets 0.0.0.0:9090 for its scraper).
	HTTPAddr string `envconfig:"HTTP_ADDR" default:"127.0.0.1:9090" desc:"host:port, e.g. 0.0.0.0:9090 to serve other machines"`
	// Concurrency is how many customers are imported at once.
	Concurrency int `envconfig:"CONCURRENCY" default:"4" desc:"a whole number from 1 to 64"`
	// FullReads is how many directories are read in full at once, across
	// the customers of a run (see jobs.DefaultFullReads).
	FullReads int `envconfig:"FULL_READS" default:"4" desc:"a whole number from 1 to 64"`
	// SurgeMax and SurgePercent hold a customer whose run would import
	// more than SurgeMax new accounts and more than SurgePercent % of what
	// it already holds.
	SurgeMax     int     `envconfig:"SURGE_MAX" default:"50" desc:"a whole number, 0 or more"`
	SurgePercent float64 `envconfig:"SURGE_PERCENT" default:"20" desc:"a percentage, 0 or more"`
	// LeaseTTL is how long a customer's lease lasts without renewal.
	LeaseTTL time.Duration `envconfig:"LEASE_TTL" default:"10m" desc:"a duration such as 10m"`
	// FullReadEvery is the longest time between two full reads of a
	// directory read incrementally.
	FullReadEvery time.Duration `envconfig:"FULL_READ_EVERY" default:"168h" desc:"a duration such as 168h (7 days)"`
	// AttentionRecheck is how long an ambiguous account of which nothing
	// changed goes without a check against the vault and the PSA.
	AttentionRecheck time.Duration `envconfig:"ATTENTION_RECHECK" default:"24h" desc:"a duration such as 24h"`
	// Actor is who the audit log records for changes from this process,
	// beside the operating-system user and host it runs as.
	Actor string `envconfig:"ACTOR" desc:"a name; default the OS user"`
	// TestMySQLDSN is read by the test suite only; listed so that it is not
	// taken for a misspelling.
	TestMySQLDSN string `envconfig:"TEST_MYSQL_DSN" desc:"MySQL DSN for tests"`

	key      *secret.Key
	location *time.Location
	// dbPassword is the password of DatabaseURL, withheld from every
	// secret and template like the key.
	dbPassword string
}

// ConfigError is a bad AUTOIMPORT_* variable (exit status 2).
type ConfigError struct {
	Var, Want, Got string
	Err            error
}

func (e *ConfigError) Error() string {
	if e.Got != "" {
		return fmt.Sprintf("%s=%q is invalid: want %s", e.Var, e.Got, e.Want)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s is invalid: %v (want %s)", e.Var, e.Err, e.Want)
	}
	return fmt.Sprintf("%s is invalid: want %s", e.Var, e.Want)
}

const envPrefix = "AUTOIMPORT"

// loadConfig reads and checks the environment.
func loadConfig() (*Config, error) {
	var c Config
	if err := envconfig.CheckDisallowed(envPrefix, &c); err != nil {
		name := strings.TrimPrefix(err.Error(), "unknown environment variable ")
		return nil, &ConfigError{Var: name, Want: "one of the documented AUTOIMPORT_* variables (see README: Configuration); is it misspelt?"}
	}
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{Var: pe.KeyName, Got: pe.Value, Want: describe(pe.FieldName)}
		}
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func describe(field string) string {
	if f, ok := reflect.TypeFor[Config]().FieldByName(field); ok {
		return f.Tag.Get("desc")
	}
	return "a valid value"
}

func (c *Config) check() error {
	bad := func(name, field, got string) error {
		return &ConfigError{Var: envPrefix + "_" + name, Got: got, Want: describe(field)}
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		return &ConfigError{Var: "AUTOIMPORT_SCHEDULE", Got: c.Schedule, Want: "a cron spec with 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily; " + err.Error()}
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return bad("TIMEZONE", "TimeZone", c.TimeZone)
	}
	c.location = loc
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return bad("LOG_FORMAT", "LogFormat", c.LogFormat)
	}
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		return bad("LOG_LEVEL", "LogLevel", c.LogLevel)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return bad("CONCURRENCY", "Concurrency", fmt.Sprint(c.Concurrency))
	}
	if c.FullReads < 1 || c.FullReads > 64 {
		return bad("FULL_READS", "FullReads", fmt.Sprint(c.FullReads))
	}
	if c.SurgeMax < 0 {
		return bad("SURGE_MAX", "SurgeMax", fmt.Sprint(c.SurgeMax))
	}
	if c.SurgePercent < 0 {
		return bad("SURGE_PERCENT", "SurgePercent", fmt.Sprint(c.SurgePercent))
	}
	if c.AttentionRecheck < time.Minute {
		return &ConfigError{Var: "AUTOIMPORT_ATTENTION_RECHECK", Got: c.AttentionRecheck.String(), Want: "a duration of at least 1m, such as 24h"}
	}
	if c.FullReadEvery < time.Hour {
		return &ConfigError{Var: "AUTOIMPORT_FULL_READ_EVERY", Got: c.FullReadEvery.String(), Want: "a duration of at least 1h, such as 168h (7 days)"}
	}
	if c.LeaseTTL < time.Minute {
		return &ConfigError{Var: "AUTOIMPORT_LEASE_TTL", Got: c.LeaseTTL.String(), Want: "a duration of at least 1m"}
	}
	if c.SecretKey != "" {
		k, err := secret.ParseKey(c.SecretKey)
		if err != nil {
			// Never echo the key itself.
			return &ConfigError{Var: "AUTOIMPORT_SECRET_KEY", Err: err, Want: describe("SecretKey")}
		}
		c.key = k
	}
	if err := c.checkSecretsDir(); err != nil {
		return err
	}
	if c.Actor == "" {
		c.Actor = os.Getenv("USER")
		if err := c.checkSecretsDir(); err != nil {
			return err
		}
		if c.Actor == "" {
			c.Actor = "autoimport"
		}
	}
	return nil
}

// checkSecretsDir checks AUTOIMPORT_SECRETS_DIR's form (it need not exist
// where a tenant is only applied) and notes the database password, which
// no secret or template may hold. A SQLite database inside the secrets
// directory is refused: a file: reference could name it.
func (c *Config) checkSecretsDir() error {
	dialect, dsn, err := store.ParseURL(c.DatabaseURL)
	if err == nil && dialect == store.MySQL {
		if m, err := mysql.ParseDSN(dsn); err == nil {
			c.dbPassword = m.Passwd
		}
	}
	if c.SecretsDir == "" {
		return nil
	}
	want := describe("SecretsDir")
	if !filepath.IsAbs(c.SecretsDir) {
		return &ConfigError{Var: "AUTOIMPORT_SECRETS_DIR", Got: c.SecretsDir, Want: want}
	}
	c.SecretsDir = filepath.Clean(c.SecretsDir)
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if c.SecretsDir == d || strings.HasPrefix(c.SecretsDir, d+"/") {
			return &ConfigError{Var: "AUTOIMPORT_SECRETS_DIR", Got: c.SecretsDir, Want: want + " holding regular files, not under " + d}
		}
	}
	if c.SecretsDir == "/" {
		return &ConfigError{Var: "AUTOIMPORT_SECRETS_DIR", Got: c.SecretsDir, Want: want + " that holds the secrets only, not the root of the file system"}
	}
	if err == nil && dialect == store.SQLite {
		if abs, aerr := filepath.Abs(sqliteFile(dsn)); aerr == nil {
			if rel, rerr := filepath.Rel(c.SecretsDir, abs); rerr == nil && filepath.IsLocal(rel) {
				return &ConfigError{Var: "AUTOIMPORT_SECRETS_DIR", Got: c.SecretsDir,
					Want: "a directory that does not hold the SQLite database " + abs + " (a file: reference could name it): move one of them"}
			}
		}
	}
	return nil
}

// sqliteFile is the file a SQLite DSN of store.ParseURL names
// ("file:ESCAPED-PATH?pragmas").
func sqliteFile(dsn string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// secrets resolves and checks secret references and templates as this
// process may: files from AUTOIMPORT_SECRETS_DIR only, nothing holding the
// key or the database password.
func (c *Config) secrets() *secret.Resolver {
	var withheld []string
	if c.dbPassword != "" {
		withheld = append(withheld, c.dbPassword)
	}
	return &secret.Resolver{Key: c.key, Dir: c.SecretsDir, Withheld: withheld}
}

// newLogger makes the process logger: text on a terminal, JSON otherwise,
// unless AUTOIMPORT_LOG_FORMAT says.
func newLogger(c *Config, w io.Writer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	lvl, _ := logrus.ParseLevel(c.LogLevel)
	l.SetLevel(lvl)
	format := c.LogFormat
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l
}

// Package store is autoimport's database: the sqlx implementation of
// jobs.Store on MySQL 8 / MariaDB 10.11 (production) and SQLite (the
// embedded default, pure Go), with embedded migrations.
package store

import (
	"context"
	dbsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sql/migrations"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names a supported SQL dialect.
type Dialect string

// The dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// Store is the database.
type Store struct {
	db      *sqlx.DB
	dialect Dialect
	url     string
	// writeMu hands SQLite's single write lock from one writer of this
	// process to the next directly, instead of leaving concurrent
	// writers to poll for it through busy_timeout.
	writeMu sync.Mutex
	// auditKey keys the audit chains (nil: unkeyed chains).
	auditKey *jobs.AuditKey
	// auditBlocked, when set, is why every write is refused: the audit
	// log from before per-customer chains is broken (see auditrechain.go).
	auditBlocked atomic.Pointer[error]
}

// serialize returns an unlock function: on SQLite it holds the store's
// write mutex, on MySQL (row locks, many writers) it does nothing.
func (s *Store) serialize() func() {
	if s.dialect != SQLite {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// ParseURL tells which dialect a database URL is for and returns the
// driver's DSN: a MySQL DSN (user:pass@tcp(host:3306)/db, optionally with a
// mysql:// prefix) or a SQLite file (sqlite:PATH, file:PATH, or a path
// ending in .db, .sqlite or .sqlite3). Empty means the SQLite file
// autoimport.db in the working directory.
func ParseURL(raw string) (Dialect, string, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return SQLite, sqliteDSN("autoimport.db"), nil
	case strings.HasPrefix(raw, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if p == "" {
			return "", "", errors.New("sqlite: URL names no file (write sqlite:PATH)")
		}
		return SQLite, sqliteDSN(p), nil
	case strings.HasPrefix(raw, "file:"):
		return SQLite, sqliteDSN(strings.TrimPrefix(raw, "file:")), nil
	case strings.HasPrefix(raw, "mysql://"):
		raw = strings.TrimPrefix(raw, "mysql://")
		fallthrough
	case strings.Contains(raw, "@tcp(") || strings.Contains(raw, "@unix(") || strings.Contains(raw, "@/"):
		cfg, err := mysql.ParseDSN(raw)
		if err != nil {
			return "", "", fmt.Errorf("not a valid MySQL DSN (user:password@tcp(host:3306)/database): %s", redactDSNError(err))
		}
		if cfg.DBName == "" {
			return "", "", errors.New("the MySQL DSN names no database (user:password@tcp(host:3306)/database)")
		}
		cfg.ParseTime = false
		cfg.MultiStatements = false
		// The driver fills in placeholders itself (escaping for the
		// connection's utf8mb4), so a statement is one round trip instead
		// of a prepare, an execute and a close.
		cfg.InterpolateParams = true
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		// The session clock in UTC: lease expiry is computed from
		// NOW(6), which a local time zone with daylight saving would
		// make ambiguous for an hour a year.
		cfg.Params["time_zone"] = "'+00:00'"
		cfg.Collation = "utf8mb4_bin"
		return MySQL, cfg.FormatDSN(), nil
	}
	for _, ext := range []string{".db", ".sqlite", ".sqlite3"} {
		if strings.HasSuffix(raw, ext) {
			return SQLite, sqliteDSN(raw), nil
		}
	}
	return "", "", errors.New("want a MySQL DSN (user:password@tcp(host:3306)/database) or a SQLite file (sqlite:PATH or a path ending in .db)")
}

func redactDSNError(err error) string {
	// The driver's messages never carry the password, but keep only the
	// first line to be safe.
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// sqliteDSN is the driver's URI for a SQLite file. The path is escaped,
// so that a '%', '#' or '?' in a directory name is part of the name.
func sqliteDSN(p string) string {
	r := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3f")
	return "file:" + r.Replace(p) + "?_pragma=busy_timeout(15000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// sqlitePath is the file a SQLite DSN made by sqliteDSN names.
func sqlitePath(dsn string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// privateSQLiteFiles makes the database file, creating it when missing,
// and the WAL and shared-memory files beside it readable by their owner
// only, whatever the umask: the database holds sealed credentials, the
// ledger and the audit log. SQLite gives the -wal and -shm files it
// creates later the database file's mode.
func privateSQLiteFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite database %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite database %s: make it private: %w", p, err)
		}
	}
	return nil
}

// Open connects to the database, applies pending migrations and
// re-chains the audit log where it must (see auditrechain.go).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s, err := connect(ctx, url, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.rechainOnOpen(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// mysqlConns is how many connections the store opens to a MySQL or
// MariaDB server at most, and keeps open between uses.
const mysqlConns = 16

// connect opens the database and checks that it answers.
func connect(ctx context.Context, url string, opts ...Option) (*Store, error) {
	d, dsn, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if d == SQLite {
		if err := privateSQLiteFiles(sqlitePath(dsn)); err != nil {
			return nil, err
		}
	}
	var db *sqlx.DB
	if d == MySQL {
		db, err = openMySQL(dsn)
	} else {
		db, err = sqlx.Open(string(d), dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	if d == MySQL {
		// Keep every connection the pool may open: database/sql keeps 2
		// idle by default and closes the rest as they come back, so a
		// pass's bursts of reads dialled, authenticated and set the
		// isolation level of a new connection again and again (about 800
		// connections over one 100-customer bench, against 16).
		db.SetMaxOpenConns(mysqlConns)
		db.SetMaxIdleConns(mysqlConns)
		db.SetConnMaxLifetime(5 * time.Minute)
	} else {
		db.SetMaxOpenConns(4)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := ping(pctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to the %s database: %w (check AUTOIMPORT_DATABASE_URL)", d, err)
	}
	s := &Store{db: db, dialect: d, url: url}
	for _, o := range opts {
		o(s)
	}
	if d == MySQL {
		var logBin int
		var format string
		if err := db.QueryRowContext(ctx, "SELECT @@log_bin, @@binlog_format").Scan(&logBin, &format); err != nil {
			db.Close()
			return nil, fmt.Errorf("read the MySQL server's binary log settings: %w", err)
		}
		if err := checkBinlogFormat(logBin == 1, format); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkBinlogFormat refuses a server whose binary log is statement-based:
// it refuses writes at READ COMMITTED, which the store's transactions run
// at (see writeTx).
func checkBinlogFormat(logBin bool, format string) error {
	if logBin && strings.EqualFold(format, "STATEMENT") {
		return errors.New("the MySQL server writes a statement-based binary log (binlog_format=STATEMENT), which refuses writes at READ COMMITTED, the isolation autoimport's transactions use: set binlog_format to ROW or MIXED (the defaults of MySQL 8 and MariaDB)")
	}
	return nil
}

// Dialect is the store's SQL dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB is the underlying database handle, for tests.
func (s *Store) DB() *sqlx.DB { return s.db }

// URL is the database URL the store was opened with. It may carry a
// password: never log it.
func (s *Store) URL() string { return s.url }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type migration struct {
	version int
	name    string
	body    string
}

func loadMigrations(d Dialect) ([]migration, error) {
	dir := string(d)
	entries, err := fs.ReadDir(migrations.FS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_name.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(migrations.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, body: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements: each ends with ';' at the
// end of a line. Comment lines are dropped.
func statements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

const migrateLock = "autoimport.migrate"

// Migrate applies pending migrations and returns the names applied. It is
// safe when several processes start at once: on MySQL, whose DDL is not
// transactional, a named lock held on one connection serialises them; on
// SQLite each migration runs in one immediate transaction.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	return s.migrateUpTo(ctx, math.MaxInt)
}

// migrateUpTo applies the pending migrations numbered up to last.
func (s *Store) migrateUpTo(ctx context.Context, last int) ([]string, error) {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return nil, err
	}
	ms = slices.DeleteFunc(ms, func(m migration) bool { return m.version > last })
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == MySQL {
		var got dbsql.NullInt64
		if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK(?, 120)", migrateLock); err != nil {
			return nil, fmt.Errorf("migrate: take lock: %w", err)
		}
		if got.Int64 != 1 {
			return nil, errors.New("migrate: another autoimport held the migration lock for 2 minutes; try again")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", migrateLock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(191) NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []string
	for _, m := range ms {
		done, err := s.migrateOne(ctx, conn, m)
		if err != nil {
			return applied, fmt.Errorf("migrate %04d_%s (%s): %w", m.version, m.name, s.dialect, err)
		}
		if done {
			applied = append(applied, fmt.Sprintf("%04d_%s", m.version, m.name))
		}
	}
	return applied, nil
}

func (s *Store) migrateOne(ctx context.Context, conn *sqlx.Conn, m migration) (bool, error) {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	for _, st := range statements(m.body) {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return false, fmt.Errorf("%w\nin statement: %.200s", err, st)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.version, m.name, time.Now().UnixMicro()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// AppliedMigrations lists the applied migrations in order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]string, error) {
	var rows []struct {
		Version int    `db:"version"`
		Name    string `db:"name"`
	}
	if err := s.db.SelectContext(ctx, &rows, "SELECT version, name FROM schema_migrations ORDER BY version"); err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%04d_%s", r.Version, r.Name)
	}
	return out, nil
}

// placeholders is n comma-separated parameters.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// upsert returns an INSERT that updates cols on a key conflict.
func (s *Store) upsert(table string, keys, cols []string) string {
	return s.upsertRows(table, keys, cols, 1)
}

// upsertRows returns an INSERT of n rows that updates cols on a key
// conflict.
func (s *Store) upsertRows(table string, keys, cols []string, n int) string {
	all := append(append([]string{}, keys...), cols...)
	row := "(" + placeholders(len(all)) + ")"
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(all, ", "), strings.TrimSuffix(strings.Repeat(row+", ", n), ", "))
	set := make([]string, len(cols))
	if s.dialect == MySQL {
		for i, c := range cols {
			set[i] = fmt.Sprintf("%s = VALUES(%s)", c, c)
		}
		return q + " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	for i, c := range cols {
		set[i] = fmt.Sprintf("%s = excluded.%s", c, c)
	}
	return q + fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET ", strings.Join(keys, ", ")) + strings.Join(set, ", ")
}

// ping checks that the database answers. A new SQLite connection turns
// the file to WAL, which another process doing the same at that moment
// refuses at once with SQLITE_BUSY, whatever the busy timeout: that is
// tried again until ctx ends.
func ping(ctx context.Context, db *sqlx.DB) error {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		err := db.PingContext(ctx)
		var coded interface{ Code() int }
		if err == nil || !errors.As(err, &coded) || coded.Code()&0xff != sqliteBusy {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// sqliteBusy is SQLite's primary result code SQLITE_BUSY.
const sqliteBusy = 5

// openMySQL opens a MySQL pool whose connections run at READ COMMITTED:
// a transaction then locks the rows it reads for update or writes, and
// no gaps between them, so that two transactions inserting rows of one
// customer (two rotations started at once, a batch of accounts beside
// the welcome emails of the one before) never deadlock on each other's
// gaps. What needs one writer at a time takes an explicit lock: a chain's
// head (Tx.LockChain), a lease. It is set once per connection, not per
// transaction (a round trip each). SQLite has one writer at a time.
func openMySQL(dsn string) (*sqlx.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sqlx.NewDb(dbsql.OpenDB(readCommitted{c}), string(MySQL)), nil
}

// readCommitted makes each new connection's transactions READ COMMITTED.
type readCommitted struct{ driver.Connector }

func (r readCommitted) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := r.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("the MySQL driver's connection cannot execute statements")
	}
	if _, err := ex.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set the isolation level: %w", err)
	}
	return conn, nil
}

func (s *Store) forUpdate() string {
	if s.dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

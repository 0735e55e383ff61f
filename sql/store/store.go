// Package store is autoimport's database: the sqlx implementation of
// jobs.Store on MySQL 8 / MariaDB 10.11 (production) and SQLite (the
// embedded default, pure Go), with embedded migrations.
package store

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
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

// Open connects to the database and applies pending migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	d, dsn, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if d == SQLite {
		if err := privateSQLiteFiles(sqlitePath(dsn)); err != nil {
			return nil, err
		}
	}
	db, err := sqlx.Open(string(d), dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	if d == MySQL {
		db.SetMaxOpenConns(16)
		db.SetConnMaxLifetime(5 * time.Minute)
	} else {
		db.SetMaxOpenConns(4)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to the %s database: %w (check AUTOIMPORT_DATABASE_URL)", d, err)
	}
	s := &Store{db: db, dialect: d, url: url}
	if _, err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return nil, err
	}
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
	all := append(append([]string{}, keys...), cols...)
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(all, ", "), placeholders(len(all)))
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

func (s *Store) forUpdate() string {
	if s.dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// Package storetest opens throwaway stores for tests: a SQLite file in a
// temporary directory and a fresh database on a real MySQL/MariaDB server,
// so one test suite runs against both dialects.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/internal/testenv"
	"github.com/msp-tools/autoimport/jobs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/msp-tools/autoimport/sql/store"
)

// DefaultMySQLDSN is used when AUTOIMPORT_TEST_MYSQL_DSN is not set.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// Key is the master key test stores key their audit chains with: a
// fixed one, so that a test can open a store again with it.
var Key = func() *secret.Key {
	k, err := secret.NewKey([]byte("autoimport test master key 32 b!"))
	if err != nil {
		panic(err)
	}
	return k
}()

// AuditKey is the audit key derived from Key.
var AuditKey = jobs.NewAuditKey(Key)

// options puts the test audit key first, so that a test's own options
// (store.WithAuditKey(nil) for an unkeyed store) win.
func options(opts []store.Option) []store.Option {
	return append([]store.Option{store.WithAuditKey(AuditKey)}, opts...)
}

// SQLite opens a store on a new SQLite file, closed when the test ends;
// its audit chains are keyed with AuditKey.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return SQLiteWith(t)
}

// SQLiteWith is SQLite with options after the test key's
// (store.WithAuditKey(nil) for an unkeyed store).
func SQLiteWith(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "autoimport.db"), options(opts)...)
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// MySQLURL creates a throwaway database on the MySQL/MariaDB server named
// by AUTOIMPORT_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/), drops it
// when the test ends, and returns its URL. When the server cannot be
// reached the test fails under CI=true and is skipped, saying why,
// elsewhere.
func MySQLURL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("AUTOIMPORT_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = DefaultMySQLDSN
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("AUTOIMPORT_TEST_MYSQL_DSN is not a MySQL DSN: %v", err)
	}
	cfg.DBName = ""
	admin, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		msg := fmt.Sprintf("MySQL/MariaDB at %s is not reachable (%v); start it or set AUTOIMPORT_TEST_MYSQL_DSN", cfg.Addr, err)
		testenv.Require(t, msg)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "autoimport_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// MySQL opens a store on a throwaway MySQL/MariaDB database (see
// MySQLURL); its audit chains are keyed with AuditKey.
func MySQL(t testing.TB) *store.Store {
	t.Helper()
	return MySQLWith(t)
}

// MySQLWith is MySQL with options after the test key's.
func MySQLWith(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), MySQLURL(t), options(opts)...)
	if err != nil {
		t.Fatalf("open mysql store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Each runs fn as a subtest against a fresh store of each dialect.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	EachWith(t, fn)
}

// EachWith is Each with options after the test key's.
func EachWith(t *testing.T, fn func(t *testing.T, s *store.Store), opts ...store.Option) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteWith(t, opts...)) })
	t.Run("mysql", func(t *testing.T) { fn(t, MySQLWith(t, opts...)) })
}

// URLs runs fn as a subtest with the URL of a fresh database of each
// dialect, for a test that opens (and reopens) stores itself.
func URLs(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "autoimport.db")) })
	t.Run("mysql", func(t *testing.T) { fn(t, MySQLURL(t)) })
}

// IsMySQL reports whether a subtest name is the MySQL one.
func IsMySQL(t testing.TB) bool { return strings.HasSuffix(t.Name(), "/mysql") }

// MySQLURLOf returns the URL a MySQL store was opened with, so a test can
// open a second store (a second replica) on the same database.
func MySQLURLOf(s *store.Store) string { return s.URL() }

// Reopen opens another store on s's database with the test audit key, as
// a second replica or a restarted process would; it is closed when the
// test ends.
func Reopen(t testing.TB, s *store.Store) *store.Store {
	t.Helper()
	s2, err := store.Open(context.Background(), s.URL(), store.WithAuditKey(AuditKey))
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/msp-tools/autoimport/sources"
)

// OpenAt opens a database migrated up to migration last only, as a
// release from before the later migrations left it (nothing re-chained),
// for tests of what the later ones do to it.
func OpenAt(ctx context.Context, url string, last int) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := s.migrateUpTo(ctx, last); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate up to %04d: %w", last, err)
	}
	return s, nil
}

// CheckBinlogFormat is checkBinlogFormat, for tests.
var CheckBinlogFormat = checkBinlogFormat

// ApplyCopyCounting is ApplyCopy, also saying how many statements it sent.
func ApplyCopyCounting(s *Store, ctx context.Context, customer, source string, d sources.CopyDelta) (int, error) {
	return s.applyCopy(ctx, customer, source, d)
}

// PoolStats is the store's connection pool statistics, for tests.
func PoolStats(s *Store) sql.DBStats { return s.db.Stats() }

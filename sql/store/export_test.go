package store

import (
	"context"

	"github.com/msp-tools/autoimport/sources"
)

// ApplyCopyCounting is ApplyCopy, also saying how many statements it sent.
func ApplyCopyCounting(s *Store, ctx context.Context, customer, source string, d sources.CopyDelta) (int, error) {
	return s.applyCopy(ctx, customer, source, d)
}

package store

import (
	"context"
	"fmt"
	"iter"
)

// readAhead yields the rows of successive pages, reading each page while
// the caller works through the one before it, so that the database's
// work and the caller's overlap. page reads the page after the given
// last row (nil: the first page); a page shorter than size is the last.
// The first error ends the sequence; so does the end of ctx, as an error,
// never as a shorter sequence. When the caller stops early, the read
// under way is cancelled and waited for before readAhead returns.
func readAhead[T any](ctx context.Context, size int, page func(ctx context.Context, last *T) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		type result struct {
			rows []T
			err  error
		}
		pages := make(chan result)
		go func() {
			defer close(pages)
			var last *T
			for ctx.Err() == nil {
				rows, err := page(ctx, last)
				select {
				case pages <- result{rows, err}:
				case <-ctx.Done():
					return
				}
				if err != nil || len(rows) < size {
					return
				}
				last = &rows[len(rows)-1]
			}
		}()
		defer func() {
			cancel()
			for range pages { // wait for the reader to end
			}
		}()
		var zero T
		for r := range pages {
			if r.err != nil {
				yield(zero, r.err)
				return
			}
			for _, row := range r.rows {
				if !yield(row, nil) {
					return
				}
			}
			if len(r.rows) < size {
				return // the last page
			}
		}
		// The reader gave up before the last page: the context ended. Say
		// so, or the caller would take what it got for all there is.
		yield(zero, fmt.Errorf("read stopped before its last page: %w", context.Cause(ctx)))
	}
}

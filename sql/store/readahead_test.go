package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

// A context that ends while rows are read ends them with an error, never
// as a shorter list of rows that looks complete.
func TestReadAheadEndsWithAnErrorWhenTheContextEnds(t *testing.T) {
	for try := range 50 { // the reader may see the end while sending or while reading
		ctx, cancel := context.WithCancel(context.Background())
		rows := readAhead(ctx, 2, func(ctx context.Context, last *int) ([]int, error) {
			from := 0
			if last != nil {
				from = *last + 1
			}
			return []int{from, from + 1}, nil // never a last page
		})
		n, failed := 0, false
		for _, err := range rows {
			if err != nil {
				failed = true
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("try %d: %v, want the context's end", try, err)
				}
				continue
			}
			if n++; n == 3 {
				cancel()
			}
		}
		cancel()
		if !failed {
			t.Fatalf("try %d: %d rows and no error after the context ended", try, n)
		}
	}
}

// readAhead yields every row of every page in order, reads the next page
// while the caller works, stops at a short page or the first error, and
// when the caller stops early ends its reader before returning.
func TestReadAhead(t *testing.T) {
	const size = 3
	for _, tc := range []struct {
		name      string
		rows      int
		failAfter int // the page read after this many rows fails; -1: none
		stopAfter int // the caller stops after this many rows; -1: never
		want      string
	}{
		{"nothing", 0, -1, -1, "[]"},
		{"one short page", 2, -1, -1, "[0 1]"},
		{"a full page, then an empty one", 3, -1, -1, "[0 1 2]"},
		{"several pages", 7, -1, -1, "[0 1 2 3 4 5 6]"},
		{"a page that fails", 7, 3, -1, "[0 1 2 error]"},
		{"the first page fails", 7, 0, -1, "[error]"},
		{"the caller stops early", 20, -1, 4, "[0 1 2 3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reading atomic.Int32 // page reads under way
			var pages int
			rows := readAhead(context.Background(), size, func(ctx context.Context, last *int) ([]int, error) {
				reading.Add(1)
				defer reading.Add(-1)
				pages++
				from := 0
				if last != nil {
					from = *last + 1
				}
				if from == tc.failAfter {
					return nil, errors.New("connection reset")
				}
				var page []int
				for i := from; i < min(tc.rows, from+size); i++ {
					page = append(page, i)
				}
				return page, nil
			})
			var got []string
			for r, err := range rows {
				if err != nil {
					got = append(got, "error")
					continue
				}
				got = append(got, fmt.Sprint(r))
				if len(got) == tc.stopAfter {
					break
				}
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
			if n := reading.Load(); n != 0 {
				t.Errorf("%d page reads still under way after the rows ended", n)
			}
			if tc.stopAfter > 0 && pages > tc.stopAfter/size+2 {
				t.Errorf("%d pages read for %d rows: more than one page ahead", pages, tc.stopAfter)
			}
		})
	}
}

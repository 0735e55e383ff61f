// Package fence lets the holder of a customer's lease stop a write to an
// outside system at the last moment before it leaves this process.
//
// A vault, PSA or mail server cannot check autoimport's lease the way the
// database does, so a write that waited (on a rate limiter, behind a
// Retry-After, in a process that was paused) could reach it after another
// process took the customer over and wrote the same thing. The caller
// attaches its lease's check to the context (With); the clients that send
// writes call Check right before each attempt goes out, after every wait,
// and send nothing when it fails.
package fence

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotSent marks a write that a fence stopped before it was sent: the
// outside system never saw it, so it is safe to leave for the next run.
var ErrNotSent = errors.New("not sent")

type checkKey struct{}

// With returns ctx carrying check, which Check calls. A check already on
// ctx is kept and called first.
func With(ctx context.Context, check func() error) context.Context {
	if check == nil {
		return ctx
	}
	if outer, ok := ctx.Value(checkKey{}).(func() error); ok {
		inner := check
		check = func() error {
			if err := outer(); err != nil {
				return err
			}
			return inner()
		}
	}
	return context.WithValue(ctx, checkKey{}, check)
}

// Check calls ctx's check, if it carries one: nil means the write may be
// sent now; an error wraps ErrNotSent and the check's own error.
func Check(ctx context.Context) error {
	check, ok := ctx.Value(checkKey{}).(func() error)
	if !ok {
		return nil
	}
	if err := check(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return nil
}

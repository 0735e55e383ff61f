package fence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/msp-tools/autoimport/internal/fence"
)

func TestCheck(t *testing.T) {
	lost := errors.New("the lease is another holder's")
	holding := func() error { return nil }
	gone := func() error { return lost }
	for _, c := range []struct {
		name   string
		checks []func() error
		want   error
	}{
		{"no check", nil, nil},
		{"a nil check", []func() error{nil}, nil},
		{"holding", []func() error{holding}, nil},
		{"lost", []func() error{gone}, lost},
		{"the outer one lost", []func() error{gone, holding}, lost},
		{"the inner one lost", []func() error{holding, gone}, lost},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			for _, check := range c.checks {
				ctx = fence.With(ctx, check)
			}
			err := fence.Check(ctx)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, fence.ErrNotSent) || !errors.Is(err, c.want) {
				t.Fatalf("Check = %v, want it to wrap ErrNotSent and %v", err, c.want)
			}
		})
	}
}

// Each Check asks again: a check that starts failing stops the writes
// after it.
func TestCheckAsksEachTime(t *testing.T) {
	calls := 0
	ctx := fence.With(context.Background(), func() error {
		if calls++; calls > 1 {
			return errors.New("lost")
		}
		return nil
	})
	if err := fence.Check(ctx); err != nil {
		t.Fatalf("first Check: %v", err)
	}
	if err := fence.Check(ctx); !errors.Is(err, fence.ErrNotSent) {
		t.Fatalf("second Check: %v, want ErrNotSent", err)
	}
}

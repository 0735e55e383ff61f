package main

import (
	"runtime/debug"
	"testing"
)

// An operator's GOMEMLIMIT is kept as it is, whatever the container's
// limit; AUTOMEMLIMIT=off leaves the limit alone too.
func TestSetMemoryLimitKeepsTheOperatorsChoice(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	t.Setenv("GOMEMLIMIT", "123MiB")
	debug.SetMemoryLimit(123 << 20) // what the runtime read at start
	if got := setMemoryLimit(); got != 123<<20 {
		t.Errorf("with GOMEMLIMIT=123MiB the limit is %d", got)
	}

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "off")
	debug.SetMemoryLimit(77 << 20)
	if got := setMemoryLimit(); got != 77<<20 {
		t.Errorf("with AUTOMEMLIMIT=off the limit is %d", got)
	}
}

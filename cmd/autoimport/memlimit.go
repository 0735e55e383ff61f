package main

import (
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setMemoryLimit sets Go's soft memory limit to 90 % of the container's
// memory limit (its cgroup's), unless GOMEMLIMIT is set, so that a full
// directory read (its groups, the LDAP answers being decoded, the
// indexes of a first import) makes the collector work harder near the
// limit instead of letting the heap grow past it. Outside a container
// with a memory limit nothing changes. It returns the limit in force, 0
// for none.
func setMemoryLimit() int64 {
	memlimit.Set(memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithRatio(0.9)) // an error leaves the limit as it was
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit
	}
	return 0
}

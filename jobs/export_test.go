package jobs

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// SetRotationStep makes r call f after each step of a rotation ("pending",
// "directory", "set", "vault", "done"); an error from f stops the pass
// there, as a crash would.
func SetRotationStep(r *Rotator, f func(step string) error) { r.step = f }

// SealedPlace is where a rotation's sealed password opens.
var SealedPlace = sealedPlace

// HolderFor names a lease holder as process pid of this host would, with
// the given start time and boot id ("" for this host's own).
func HolderFor(pid int, start, boot string) string {
	p := thisProcess()
	if boot == "" {
		boot = p.boot
	}
	return fmt.Sprintf("%s/%d/test boot=%s start=%s pidns=%s", p.host, pid, boot, start, p.pidns)
}

// ThisProcessStart is this process's start time, as a holder name says it.
func ThisProcessStart() string { return thisProcess().start }

// ApplyWorkers is how many accounts an import creates in the sinks at once.
const ApplyWorkers = applyWorkers

// SettledPassesMetric is the counter of settled passes.
func SettledPassesMetric(m *Metrics) *prometheus.CounterVec { return m.settled }

// PassStepsMetric is the counter of the time passes spent by step.
func PassStepsMetric(m *Metrics) *prometheus.CounterVec { return m.steps }

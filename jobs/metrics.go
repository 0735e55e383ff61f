package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runner's Prometheus metrics.
type Metrics struct {
	runs      *prometheus.CounterVec
	duration  prometheus.Histogram
	accounts  *prometheus.CounterVec
	sinks     *prometheus.CounterVec
	lastRun   prometheus.Gauge
	rotations *prometheus.CounterVec
	reads     *prometheus.CounterVec
	requests  *prometheus.CounterVec
	settled   *prometheus.CounterVec
	steps     *prometheus.CounterVec
}

// NewMetrics registers the runner's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_runs_total", Help: "Import runs by status."}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "autoimport_run_duration_seconds", Help: "Duration of import runs.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		accounts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_accounts_total", Help: "Accounts by customer and outcome (imported, skipped, failed, ...)."}, []string{"customer", "outcome"}),
		sinks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_sink_operations_total", Help: "Vault and PSA matches and creates by customer and sink."}, []string{"customer", "sink", "op"}),
		lastRun:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "autoimport_last_run_finished_timestamp_seconds", Help: "When the last run finished."}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_rotations_total",
			Help: "Administrator password rotations by customer and outcome (rotated, failed, pending, vault-pending, skipped)."}, []string{"customer", "outcome"}),
	}
	m.reads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_directory_reads_total",
		Help: "Reads of a customer's directory by source and mode (full or incremental)."}, []string{"customer", "source", "mode"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_directory_read_requests_total",
		Help: "Directory round trips of those reads by source and mode."}, []string{"customer", "source", "mode"})
	m.settled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_settled_passes_total",
		Help: "Import passes that found nothing changed since the customer's last pass and repeated its report (see settled.go)."}, []string{"customer"})
	m.steps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoimport_pass_step_seconds_total",
		Help: "Time import passes spent by customer and step (directories, selection, indexes, new_accounts; see PassTimes)."}, []string{"customer", "step"})
	reg.MustRegister(m.runs, m.duration, m.accounts, m.sinks, m.lastRun, m.rotations, m.reads, m.requests, m.settled, m.steps)
	return m
}

func (m *Metrics) observeRun(rep *Report) {
	if m == nil || rep.DryRun {
		return
	}
	m.runs.WithLabelValues(rep.Status).Inc()
	m.duration.Observe(rep.Finished.Sub(rep.Started).Seconds())
	m.lastRun.Set(float64(rep.Finished.Unix()))
	for _, c := range rep.Customers {
		for outcome, n := range map[string]int{"imported": c.Counts.Imported, "skipped": c.Counts.Skipped, "failed": c.Counts.Failed, "ambiguous": c.Counts.Ambiguous, "held": c.Counts.Held} {
			if n > 0 {
				m.accounts.WithLabelValues(c.Customer, outcome).Add(float64(n))
			}
		}
		for _, r := range c.Reads {
			m.reads.WithLabelValues(c.Customer, string(r.Source), r.Mode).Inc()
			m.requests.WithLabelValues(c.Customer, string(r.Source), r.Mode).Add(float64(r.Requests))
		}
		if c.Settled() {
			m.settled.WithLabelValues(c.Customer).Inc()
		}
		for step, d := range map[string]time.Duration{"directories": c.Times.Directories, "selection": c.Times.Selection, "indexes": c.Times.Indexes, "new_accounts": c.Times.NewAccounts} {
			if d > 0 {
				m.steps.WithLabelValues(c.Customer, step).Add(d.Seconds())
			}
		}
	}
}

// observeAccount counts an applied account's sink operations.
func (m *Metrics) observeAccount(customer string, p *AccountPlan) {
	if m == nil || p.Action != ActionImport {
		return
	}
	if p.Vault.Op != OpNone {
		m.sinks.WithLabelValues(customer, p.Vault.Integration, p.Vault.Op).Inc()
	}
	if p.PSA.Op != OpNone {
		m.sinks.WithLabelValues(customer, p.PSA.Integration, p.PSA.Op).Inc()
	}
}

// observeRotation counts a customer's rotation outcomes; accounts not due
// are not counted.
func (m *Metrics) observeRotation(rep *RotationReport) {
	if m == nil || rep.DryRun {
		return
	}
	for outcome, n := range rep.Outcomes {
		if outcome != OutcomeNotDue && n > 0 {
			m.rotations.WithLabelValues(rep.Customer, outcome).Add(float64(n))
		}
	}
}

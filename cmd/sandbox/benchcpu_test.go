package main

import (
	"math"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

func TestCPUUntil(t *testing.T) {
	samples := []cpuSample{{At: 1}, {At: 2, CPU: 0.5}, {At: 3, CPU: 1.5}, {At: 3, CPU: 1.6}}
	for _, c := range []struct {
		at, want float64
	}{{0, 0}, {1, 0}, {1.5, 0.25}, {2, 0.5}, {2.75, 1.25}, {3, 1.5}, {9, 1.6}} {
		if got := cpuUntil(samples, c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("cpuUntil(%v) = %v, want %v", c.at, got, c.want)
		}
	}
	if got := cpuUntil(nil, 1); got != 0 {
		t.Errorf("cpuUntil of no samples = %v", got)
	}
}

func TestCPUOf(t *testing.T) {
	// The job's run began a second into the measurement (a process's
	// start); the fakes' CPU before it is not the run's.
	job := []cpuSample{{At: 1}, {At: 2, CPU: 0.9}, {At: 3, CPU: 1.8}, {At: 4, CPU: 2.2}}
	fakes := []cpuSample{{At: 0}, {At: 1, CPU: 0.1}, {At: 2, CPU: 0.8}, {At: 3, CPU: 1.5}, {At: 4, CPU: 1.9}}
	importing := customerFigure{ID: "a", Counts: jobs.Counts{Imported: 3}, Times: jobs.PassTimes{Directories: 1500 * time.Millisecond, Selection: 300 * time.Millisecond, Indexes: 200 * time.Millisecond, NewAccounts: time.Second}}
	settled := customerFigure{ID: "b", Times: jobs.PassTimes{Directories: time.Second, NewAccounts: time.Millisecond}}
	for _, c := range []struct {
		name      string
		fakes     []cpuSample
		customers []customerFigure
		want      cpuFigure
	}{
		{"one customer that imported, job apart", fakes, []customerFigure{importing}, cpuFigure{Job: 2.2, Fakes: 1.9, BeforeImport: &cpuBefore{Seconds: 2, Job: 1.8, Fakes: 1.4}}},
		{"job and fakes in one process", nil, []customerFigure{importing}, cpuFigure{Job: 2.2, BeforeImport: &cpuBefore{Seconds: 2, Job: 1.8}}},
		{"one customer that imported nothing", fakes, []customerFigure{settled}, cpuFigure{Job: 2.2, Fakes: 1.9}},
		{"two customers: their steps overlap", fakes, []customerFigure{importing, importing}, cpuFigure{Job: 2.2, Fakes: 1.9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cpuOf(jobFigures{CPU: job, RunStart: 1, Customers: c.customers}, c.fakes)
			if got == nil || got.Cores < 1 || got.Job != c.want.Job || got.Fakes != c.want.Fakes {
				t.Fatalf("cpuOf = %+v, want %+v", got, c.want)
			}
			near := func(a, b cpuBefore) bool {
				return a.Seconds == b.Seconds && math.Abs(a.Job-b.Job) < 1e-9 && math.Abs(a.Fakes-b.Fakes) < 1e-9
			}
			if (got.BeforeImport == nil) != (c.want.BeforeImport == nil) || got.BeforeImport != nil && !near(*got.BeforeImport, *c.want.BeforeImport) {
				t.Errorf("before its new accounts: %+v, want %+v", got.BeforeImport, c.want.BeforeImport)
			}
		})
	}
	if got := cpuOf(jobFigures{}, fakes); got != nil {
		t.Errorf("no job samples: %+v, want none", got)
	}
}

// The CPU a process uses shows in its samples, counted from the run's
// start.
func TestTraceCPU(t *testing.T) {
	start := time.Now().Add(-time.Second)
	stop := traceCPU(start)
	for x, deadline := 0, time.Now().Add(250*time.Millisecond); time.Now().Before(deadline); x++ {
		_ = x * x
	}
	samples := stop()
	if len(samples) < 3 {
		t.Fatalf("%d samples", len(samples))
	}
	last := samples[len(samples)-1]
	if samples[0].At < 1 || samples[0].CPU != 0 || last.CPU <= 0 || last.At < samples[0].At {
		t.Errorf("samples %+v: want them counted from a second before, the busy loop's CPU in the last", samples)
	}
}

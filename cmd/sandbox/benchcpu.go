package main

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// cpuSample is a process's CPU time (user and system) some time into a
// run: the two in seconds since the run began.
type cpuSample struct {
	At  float64 `json:"at_s"`
	CPU float64 `json:"cpu_s"`
}

// traceCPU samples this process's CPU time every 100 ms from now on, each
// sample's time counted from start (the run's, which a job process is
// told); the returned function stops and gives the samples, the last one
// taken as it stops.
func traceCPU(start time.Time) func() []cpuSample {
	base := processCPU()
	var mu sync.Mutex
	samples := []cpuSample{{At: time.Since(start).Seconds()}}
	take := func() {
		s := cpuSample{At: time.Since(start).Seconds(), CPU: (processCPU() - base).Seconds()}
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	stop := sampling(100*time.Millisecond, take)
	return func() []cpuSample {
		stop()
		mu.Lock()
		defer mu.Unlock()
		return samples
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuUntil is the CPU time the samples show used by at seconds into the
// run, read between the samples around it (before the first: 0; after
// the last: the last).
func cpuUntil(samples []cpuSample, at float64) float64 {
	prev := cpuSample{}
	for _, s := range samples {
		if s.At >= at {
			if s.At == prev.At {
				return s.CPU
			}
			return prev.CPU + (s.CPU-prev.CPU)*(at-prev.At)/(s.At-prev.At)
		}
		prev = s
	}
	return prev.CPU
}

// cpuFigure is where a run's CPU went: the job's and, when the job ran in
// a process of its own, the fakes' (the benchmark's own process: every
// fake API and its seeded data). BeforeImport is for a run of one
// customer that imported: the CPU both used from the run's start until
// its new accounts began (its directories read, its accounts selected,
// its indexes listed) — work that, on Cores cores, takes at least its CPU
// over Cores, whatever its order.
type cpuFigure struct {
	Cores int     `json:"cores"`
	Job   float64 `json:"job_s"`
	// Fakes is 0 when the job ran in the benchmark's process: Job is then
	// both.
	Fakes        float64    `json:"fakes_s,omitempty"`
	BeforeImport *cpuBefore `json:"before_new_accounts,omitempty"`
}

type cpuBefore struct {
	Seconds float64 `json:"seconds"`
	Job     float64 `json:"job_s"`
	Fakes   float64 `json:"fakes_s,omitempty"`
}

// cpuOf reads a run's CPU figure from the job's figures and the fakes'
// samples (nil when the job ran in this process).
func cpuOf(jf jobFigures, fakes []cpuSample) *cpuFigure {
	job := jf.CPU
	if len(job) == 0 {
		return nil
	}
	f := &cpuFigure{Cores: runtime.NumCPU(), Job: job[len(job)-1].CPU}
	if len(fakes) > 0 {
		f.Fakes = fakes[len(fakes)-1].CPU
	}
	if len(jf.Customers) == 1 && jf.Customers[0].Counts.Imported > 0 {
		t := jf.Customers[0].Times
		before := (t.Directories + t.Selection + t.Indexes).Seconds()
		at := jf.RunStart + before
		f.BeforeImport = &cpuBefore{Seconds: before, Job: cpuUntil(job, at), Fakes: cpuUntil(fakes, at) - cpuUntil(fakes, jf.RunStart)}
	}
	return f
}

// print writes the figure's lines of a run's report.
func (f *cpuFigure) print(w io.Writer, seconds float64) {
	if f == nil {
		return
	}
	avail := float64(f.Cores) * seconds
	if f.Fakes == 0 {
		fmt.Fprintf(w, "  CPU: %.2fs, job and fakes in one process (%d cores x %.2fs = %.2fs)\n", f.Job, f.Cores, seconds, avail)
	} else {
		fmt.Fprintf(w, "  CPU: job %.2fs, fakes %.2fs (%d cores x %.2fs = %.2fs)\n", f.Job, f.Fakes, f.Cores, seconds, avail)
	}
	if b := f.BeforeImport; b != nil {
		used := b.Job + b.Fakes
		fmt.Fprintf(w, "  CPU before its new accounts began (directories, selection, indexes: %.2fs): ", b.Seconds)
		if f.Fakes == 0 {
			fmt.Fprintf(w, "%.2fs", b.Job)
		} else {
			fmt.Fprintf(w, "job %.2fs, fakes %.2fs", b.Job, b.Fakes)
		}
		fmt.Fprintf(w, ", of the %.2fs its %d cores had; on %d cores that work takes at least %.2fs\n", float64(f.Cores)*b.Seconds, f.Cores, f.Cores, used/float64(f.Cores))
	}
}

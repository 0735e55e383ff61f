package jobs

import (
	"fmt"
	"strings"
	"time"
)

// PassTimes says where a pass's time went, step by step, so that a slow
// customer can be told apart: a directory that reads slowly, a selection
// over a large copy, a vault or PSA that lists slowly, or the new
// accounts themselves (bound by the vault's and PSA's rate limits).
type PassTimes struct {
	// Directories is bringing the directories' copies up to date,
	// waiting for a turn to read in full included (see Reads for each
	// directory's own time and wait).
	Directories time.Duration `json:"directories_ns,omitempty"`
	// Selection is choosing the accounts from the copies (or from the
	// directories themselves) and deciding, against the ledger, which
	// are new.
	Selection time.Duration `json:"selection_ns,omitempty"`
	// Indexes is reading the vault's and PSA's indexes for the new
	// accounts.
	Indexes time.Duration `json:"indexes_ns,omitempty"`
	// NewAccounts is importing the new accounts: matching or creating
	// their entries and contacts, and recording each.
	NewAccounts time.Duration `json:"new_accounts_ns,omitempty"`
}

// String says, for a pass that took elapsed, how long each step took and
// what the rest (connecting, reading the ledger, ending the pass) took.
func (t PassTimes) String(elapsed time.Duration) string {
	var parts []string
	for _, s := range []struct {
		name string
		d    time.Duration
	}{{"directories", t.Directories}, {"selection", t.Selection}, {"indexes", t.Indexes}, {"new accounts", t.NewAccounts}} {
		if s.d > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", s.name, seconds(s.d)))
		}
	}
	rest := elapsed - t.Directories - t.Selection - t.Indexes - t.NewAccounts
	parts = append(parts, "the rest "+seconds(max(rest, 0)))
	return strings.Join(parts, ", ")
}

// seconds writes d in seconds, to the hundredth.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// timed adds the time until the returned function is called to *d.
func timed(d *time.Duration) func() {
	start := time.Now()
	return func() { *d += time.Since(start) }
}

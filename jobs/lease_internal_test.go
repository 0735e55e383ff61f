package jobs

import (
	"strings"
	"testing"
)

// An import checks its lease's time itself before each sink call and
// record, not only whether the timer that ends the lease has fired: a
// process paused past its lease wakes with the timer not yet run, and its
// first check must already say the lease is lost.
func TestImportReadsTheLeaseTimeNotOnlyItsTimer(t *testing.T) {
	l, pause := heldLease(t)
	opt := ImportOptions{Lease: l}
	if err := opt.leaseLost(); err != nil {
		t.Fatalf("a lease with an hour left: %v", err)
	}
	pause()
	err := opt.leaseLost()
	if err == nil || !strings.Contains(err.Error(), "ran out") {
		t.Fatalf("a lease whose time is up reads as held: %v", err)
	}
	ws := &welcomeSender{lease: l}
	if ws.lost() == nil {
		t.Error("the welcome sender would hand an email to the relay")
	}
	if (&ImportOptions{}).leaseLost() != nil || (&welcomeSender{}).lost() != nil {
		t.Error("no lease reads as lost")
	}
}

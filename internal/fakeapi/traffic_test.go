package fakeapi

import (
	"testing"
	"time"
)

func TestTrafficRateLimitFaultsAndCounters(t *testing.T) {
	var tr Traffic
	tr.SetLatency(5 * time.Millisecond)
	tr.SetRateLimit(2, time.Hour)
	tr.Inject(Fault{Status: 503}) // any kind, once
	tr.Note("list")               // refused before admission: counted, nothing else

	f, lat, wait := tr.Admit("token")
	if f == nil || f.Status != 503 || lat != 5*time.Millisecond || wait != 0 {
		t.Fatalf("first: %+v %v %v", f, lat, wait)
	}
	if f, _, wait := tr.Admit("list"); f != nil || wait != 0 {
		t.Fatalf("second: %+v %v", f, wait)
	}
	if _, _, wait := tr.Admit("list"); wait <= 59*time.Minute {
		t.Fatalf("third is over the limit of 2 an hour: wait %v", wait)
	}
	if tr.Count("list") != 3 || tr.Total() != 4 || tr.Throttled() != 1 || len(tr.Arrivals()) != 3 || tr.MaxInWindow(time.Minute) != 3 {
		t.Fatalf("counts %v total %d throttled %d arrivals %d", tr.Counts(), tr.Total(), tr.Throttled(), len(tr.Arrivals()))
	}

	tr.ResetCounts()
	tr.SetRateLimit(0, 0)
	tr.Inject(Fault{Status: 500})
	if f, _, _ := tr.AdmitExact("token"); f != nil {
		t.Fatalf("a fault of any kind applied to an exact kind: %+v", f)
	}
	if f, _, wait := tr.Admit("create"); f == nil || wait != 0 {
		t.Fatalf("after reset, no limit: %+v %v", f, wait)
	}
	tr.ClearFaults()
	tr.Inject(Fault{Kind: "create", Status: 409})
	tr.ClearFaults()
	if f, _, _ := tr.Admit("create"); f != nil || tr.Total() != 3 || tr.Throttled() != 0 {
		t.Fatalf("cleared faults: %+v; total %d throttled %d", f, tr.Total(), tr.Throttled())
	}
}

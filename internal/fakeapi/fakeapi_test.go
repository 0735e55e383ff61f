package fakeapi

import "testing"

func TestFaultsTake(t *testing.T) {
	var fs Faults
	fs.Add(Fault{Kind: "create", After: 1, Status: 503}) // once, after one create
	fs.Add(Fault{Kind: "list", Times: -1, Status: 429})  // every list
	fs.Add(Fault{Times: 2, Malformed: true})             // the next two of any kind
	steps := []struct {
		kind string
		want int // status, -1 malformed, 0 none
	}{
		{"create", -1}, // the first create passes the 503 fault, the catch-all takes it
		{"create", 503},
		{"create", -1},
		{"create", 0},
		{"list", 429},
		{"list", 429},
		{"other", 0},
	}
	for i, s := range steps {
		f := fs.Take(s.kind)
		got := 0
		switch {
		case f == nil:
		case f.Malformed:
			got = -1
		default:
			got = f.Status
		}
		if got != s.want {
			t.Fatalf("step %d (%s): got %d, want %d", i, s.kind, got, s.want)
		}
	}
}

func TestTakeExact(t *testing.T) {
	var fs Faults
	fs.Add(Fault{Status: 500})
	if fs.TakeExact("token") != nil {
		t.Fatal("a fault of any kind applied to an exact kind")
	}
	if f := fs.Take("token"); f == nil || f.Status != 500 {
		t.Fatalf("Take = %+v", f)
	}
}

func TestCounts(t *testing.T) {
	c := Counts{"a": 2, "b": 3}
	cp := c.Copy()
	cp["a"] = 9
	if c["a"] != 2 || c.Total() != 5 {
		t.Fatalf("counts %v total %d", c, c.Total())
	}
}

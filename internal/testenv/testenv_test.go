package testenv

import "testing"

func TestCIValue(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "false": false, "FALSE": false, "0": false, " ": false,
		"true": true, "1": true, "yes": true, "True": true, "on": true, "github": true,
	} {
		if got := ciValue(v); got != want {
			t.Errorf("ciValue(%q) = %v, want %v", v, got, want)
		}
	}
}

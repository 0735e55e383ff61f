package sources_test

import (
	"testing"

	"github.com/msp-tools/autoimport/sources"
)

func TestReadReportString(t *testing.T) {
	cases := []struct {
		r    sources.ReadReport
		want string
	}{
		{sources.ReadReport{Source: sources.KindAD, Mode: sources.ReadIncremental, Requests: 1}, "ad incremental, 1 request, 0 changes"},
		{sources.ReadReport{Source: sources.KindM365, Mode: sources.ReadFull, Reason: "no state", Requests: 12, Changes: 530, Waited: 0.4},
			"m365 full (no state), 12 requests, 530 changes"},
		{sources.ReadReport{Source: sources.KindAD, Mode: sources.ReadFull, Reason: "asked for", Requests: 104, Changes: 189390, Waited: 18.53},
			"ad full (asked for), 104 requests, 189390 changes, after waiting 19s for its turn to read in full"},
	}
	for _, c := range cases {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}

package ad

import (
	"testing"
	"time"
)

func TestFiletime(t *testing.T) {
	cases := []struct {
		ft   int64
		want time.Time
	}{
		{0, time.Time{}},
		{116444736000000000, time.Unix(0, 0).UTC()},
		{132539328000000000, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{132539328000000001, time.Date(2021, 1, 1, 0, 0, 0, 100, time.UTC)},
		{1, time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC)},
	}
	for _, c := range cases {
		got := FiletimeToTime(c.ft)
		if !got.Equal(c.want) {
			t.Errorf("FiletimeToTime(%d) = %v, want %v", c.ft, got, c.want)
		}
		if back := TimeToFiletime(got); back != c.ft {
			t.Errorf("TimeToFiletime(%v) = %d, want %d", got, back, c.ft)
		}
	}
}

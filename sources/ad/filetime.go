package ad

import "time"

// filetimeUnixEpoch is 1970-01-01 in FILETIME ticks (100 ns since
// 1601-01-01 UTC).
const filetimeUnixEpoch = 116444736000000000

// FiletimeToTime converts a FILETIME (pwdLastSet, lastLogonTimestamp, ...)
// to a UTC time. 0 gives the zero time.
func FiletimeToTime(ft int64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	d := ft - filetimeUnixEpoch
	return time.Unix(d/10_000_000, d%10_000_000*100).UTC()
}

// TimeToFiletime is the inverse of FiletimeToTime (the zero time gives 0).
func TimeToFiletime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()*10_000_000 + int64(t.Nanosecond()/100) + filetimeUnixEpoch
}

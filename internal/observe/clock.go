package observe

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoNow reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock id
	return uint64(ts.Nano())
}

// wallClock converts kernel monotonic timestamps to wall-clock time with an
// offset taken once at start (NTP slew after that is ignored: events are
// timestamped, not ordered, by it).
type wallClock struct{ offset int64 }

func newWallClock() wallClock {
	return wallClock{offset: time.Now().UnixNano() - int64(monoNow())}
}

func (c wallClock) at(mono uint64) time.Time { return time.Unix(0, int64(mono)+c.offset) }

package dataplane

import (
	"runtime/debug"
	"sync"
	"time"
)

// releaseEvery is the shortest time between two hand-backs of free heap to
// the OS after applying a configuration.
const releaseEvery = 30 * time.Second

// releaseDelay is how long after the apply the hand-back runs: after the
// proxy's deferred tidy (200 ms after the last Apply, at most 2 s; see
// proxy/tidy.go), whose garbage (3 MB at 10,000 routes) would otherwise
// stay resident. Released at once, a data plane serving 10,000 routes kept
// 6.5 MiB of free heap it had touched after the release.
const releaseDelay = 3 * time.Second

// heapRelease returns the heap freed after applying a configuration to the
// OS at once. Decoding and compiling a large Config needs about twice the
// heap of what is served afterwards (10,000 HTTPRoutes: the frame alone is
// 8.5 MiB), and Go's background scavenger hands the difference back only
// over minutes, so the pod's RSS would stay at the peak. Each release is a
// full collection; a controller streaming route changes sends Configs far
// more often than that is worth, so releases are at least every apart (the
// first Config, the big one, is always released), each delay after the
// apply that was due.
type heapRelease struct {
	every time.Duration
	delay time.Duration
	now   func() time.Time
	free  func()
	// after runs f once d has passed (time.AfterFunc).
	after func(d time.Duration, f func())

	mu   sync.Mutex
	last time.Time // zero: never
}

func newHeapRelease() *heapRelease {
	return &heapRelease{every: releaseEvery, delay: releaseDelay, now: time.Now, free: debug.FreeOSMemory,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// applied is called after each applied Config; it reports whether it
// scheduled a release.
func (h *heapRelease) applied() bool {
	h.mu.Lock()
	now := h.now()
	due := h.last.IsZero() || now.Sub(h.last) >= h.every
	if due {
		h.last = now
	}
	h.mu.Unlock()
	if due {
		h.after(h.delay, h.free)
	}
	return due
}

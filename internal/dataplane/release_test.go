package dataplane

import (
	"testing"
	"time"
)

// TestHeapReleaseSpacing: the first applied Config releases, later ones
// only once releaseEvery has passed since the last release; each release
// runs releaseDelay after its apply, later than the proxy's deferred tidy.
func TestHeapReleaseSpacing(t *testing.T) {
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	frees := 0
	var delays []time.Duration
	h := newHeapRelease()
	h.now, h.free = func() time.Time { return now }, func() { frees++ }
	h.after = func(d time.Duration, f func()) { delays = append(delays, d); f() }
	steps := []struct {
		after time.Duration
		want  bool
	}{
		{0, true},                 // the first Config
		{time.Second, false},      // a route change right after
		{28 * time.Second, false}, // 29 s after the release
		{time.Second, true},       // 30 s after
		{29 * time.Second, false},
		{time.Hour, true},
	}
	wantFrees := 0
	for i, s := range steps {
		now = now.Add(s.after)
		if got := h.applied(); got != s.want {
			t.Fatalf("step %d: released %v, want %v", i, got, s.want)
		}
		if s.want {
			wantFrees++
		}
		if frees != wantFrees {
			t.Fatalf("step %d: %d releases, want %d", i, frees, wantFrees)
		}
	}
	for _, d := range delays {
		// The proxy's tidy runs at most 2 s after an Apply (tidyMaxDelay).
		if d <= 2*time.Second {
			t.Errorf("a release %v after its apply, not after the proxy's tidy", d)
		}
	}
}

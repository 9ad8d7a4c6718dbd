package dataplane

import (
	"testing"
	"time"
)

// TestHeapReleaseSpacing: the first applied Config releases, later ones
// only once releaseEvery has passed since the last release.
func TestHeapReleaseSpacing(t *testing.T) {
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	frees := 0
	h := &heapRelease{every: 30 * time.Second, now: func() time.Time { return now }, free: func() { frees++ }}
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
}

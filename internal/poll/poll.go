// Package poll waits, in tests, for a condition that another goroutine or
// process makes true: checking it at once and then at growing intervals,
// so a fast condition is seen within a millisecond and a slow one (an API
// server, an informer) is not asked more than ten times a second.
package poll

import (
	"testing"
	"time"
)

// first and most are the shortest and longest pause between two checks.
const (
	first = time.Millisecond
	most  = 100 * time.Millisecond
)

// Until reports whether cond became true within d. cond is checked once
// more at the deadline, so a condition that holds then is not missed by a
// pause that overran it.
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for pause := first; ; pause = min(2*pause, most) {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(pause, left))
	}
}

// Require fails t, naming what was awaited, unless cond becomes true
// within d.
func Require(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(d, cond) {
		t.Fatalf("%s: not true within %s", what, d)
	}
}

// NoError fails t unless check returns nil within d; the failure names
// what was awaited and check's last error.
func NoError(t testing.TB, d time.Duration, what string, check func() error) {
	t.Helper()
	var err error
	if !Until(d, func() bool { err = check(); return err == nil }) {
		t.Fatalf("%s (after %s): %v", what, d, err)
	}
}

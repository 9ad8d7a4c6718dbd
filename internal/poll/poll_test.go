package poll

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A condition that turns true after some checks is seen; one that never
// does is given up on, after at least d and after being checked at the
// deadline.
func TestUntil(t *testing.T) {
	var n atomic.Int32
	if !Until(5*time.Second, func() bool { return n.Add(1) == 4 }) {
		t.Fatal("condition true on the 4th check not seen")
	}
	if got := n.Load(); got != 4 {
		t.Fatalf("checked %d times, want 4 (stop at the first true)", got)
	}

	n.Store(0)
	start := time.Now()
	if Until(30*time.Millisecond, func() bool { n.Add(1); return false }) {
		t.Fatal("a condition that never holds reported true")
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("gave up after %s, before the 30ms deadline", waited)
	}
	if got := n.Load(); got < 3 {
		t.Fatalf("checked %d times within 30ms, want the growing pauses (1, 2, 4, 8, 16 ms) to check at least 3 times", got)
	}
}

// fatalT records Fatalf instead of stopping the test.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = format
	if len(args) > 0 {
		f.msg = args[0].(string)
	}
}

func TestRequireAndNoErrorFail(t *testing.T) {
	ft := &fatalT{TB: t}
	Require(ft, 5*time.Millisecond, "the thing", func() bool { return false })
	if ft.msg != "the thing" {
		t.Fatalf("Require did not fail naming what it awaited: %q", ft.msg)
	}

	ft = &fatalT{TB: t}
	NoError(ft, 5*time.Millisecond, "the other thing", func() error { return errors.New("boom") })
	if ft.msg != "the other thing" {
		t.Fatalf("NoError did not fail naming what it awaited: %q", ft.msg)
	}

	ft = &fatalT{TB: t}
	NoError(ft, time.Second, "x", func() error { return nil })
	Require(ft, time.Second, "x", func() bool { return true })
	if ft.msg != "" {
		t.Fatalf("a condition that holds failed the test: %q", ft.msg)
	}
}

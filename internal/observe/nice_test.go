package observe

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice is the nice value of the calling thread (getpriority returns
// 20 - nice for PRIO_PROCESS on Linux).
func threadNice() (int, error) {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	return 20 - p, err
}

// TestSetThreadNiceTouchesOneThread: the reader's nice value lands on its
// own thread and not on the others of the process.
func TestSetThreadNiceTouchesOneThread(t *testing.T) {
	type result struct {
		nice int
		err  error
	}
	onThread := func() result {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		n, err := threadNice()
		return result{n, err}
	}
	base := onThread()
	if base.err != nil {
		t.Fatal(base.err)
	}
	if base.nice > 7 {
		t.Skipf("SKIP: the test runs at nice %d; going back to 7 needs CAP_SYS_NICE", base.nice)
	}
	reader := make(chan result, 1)
	release := make(chan struct{})
	go func() {
		// Locked and never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		if err := setThreadNice(7); err != nil {
			reader <- result{err: err}
			return
		}
		n, err := threadNice()
		reader <- result{n, err}
		<-release // hold the thread so the check below runs on another
	}()
	defer close(release)
	r := <-reader
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.nice != 7 {
		t.Fatalf("reader thread nice %d, want 7", r.nice)
	}
	// The reader holds its thread, so this runs on another one.
	if o := onThread(); o.err != nil || o.nice != base.nice {
		t.Fatalf("another thread has nice %d (%v), want %d as before", o.nice, o.err, base.nice)
	}
}

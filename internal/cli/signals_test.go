package cli

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExits: the first SIGTERM ends the context (the graceful
// stop), the second calls exit at once with 143.
func TestSecondSignalExits(t *testing.T) {
	var log syncBuffer
	exited := make(chan int, 1)
	ctx, stop := ShutdownContext(context.Background(), &log, func(code int) { exited <- code })
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGTERM did not end the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) after the first signal", code)
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit(%d), want 143", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second SIGTERM did not exit")
	}
	if !strings.Contains(log.String(), `"msg":"second signal`) {
		t.Errorf("no log line for the second signal: %q", log.String())
	}
}

// syncBuffer is written by the signal goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

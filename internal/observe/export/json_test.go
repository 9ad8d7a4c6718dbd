package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/detect"
)

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestAsyncJSONNeverBlocks (issue 16 point 8): a slow stdout reader used
// to block the pipeline goroutine in Write, so the ring buffer filled and
// the kernel dropped events for every output. Now lines beyond the queue
// are dropped and counted, and the caller never waits.
func TestAsyncJSONNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	const queue, n = 100, 10000
	j := NewAsyncJSON(w, queue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			_ = j.Event(&detect.Event{Kind: "slow_response", Service: "web", SlowCount: i})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Event blocked behind a writer that does not write")
	}
	// The writer holds one line, the queue up to queue more.
	if d := j.Dropped(); d < n-queue-1 || d > n-queue {
		t.Fatalf("dropped %d, want %d or %d", d, n-queue-1, n-queue)
	}
	close(w.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&w.buf)
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if uint64(lines)+j.Dropped() != n {
		t.Fatalf("%d lines written + %d dropped != %d", lines, j.Dropped(), n)
	}
}

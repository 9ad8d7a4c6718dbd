package proxy

import (
	"slices"
	"sync"
	"time"
)

// workers runs the function serving an accepted connection on a goroutine
// that served an earlier connection, when one is waiting, and on a new
// goroutine otherwise.
//
// Why: a new goroutine starts on a small stack, and serving a connection
// (a TLS handshake, then the HTTP/1.1 engine and the backend exchange)
// needs more, so every new connection paid for its stack to be grown and
// copied, several times: 6 % of the CPU of resumed TLS 1.2 handshakes
// (docs/performance.md, round 21). A goroutine that served a connection
// keeps its grown stack while it waits for the next one; the collector
// halves the stack of one that stays idle, so a burst leaves nothing big
// behind.
//
// At most maxIdle goroutines wait, each for at most idleFor; a goroutine
// done with its connection exits when maxIdle are already waiting.
type workers struct {
	maxIdle int
	idleFor time.Duration

	mu sync.Mutex
	// idle are the goroutines waiting, the most recent last: run takes
	// that one (likeliest still warm in the caches), so under a steady
	// load the ones at the bottom wait out idleFor and end.
	idle   []*worker
	closed bool
}

// worker is one goroutine of workers; run hands it a function on jobs
// after taking it out of idle, so the send never blocks.
type worker struct{ jobs chan func() }

// Defaults of workers: enough waiting goroutines for the connections a
// busy listener opens between two of its bursts, each kept long enough to
// see the next burst but not to pin memory for long.
const (
	maxIdleWorkers  = 128
	workersIdleTime = 10 * time.Second
)

func newWorkers(maxIdle int, idleFor time.Duration) *workers {
	return &workers{maxIdle: maxIdle, idleFor: idleFor}
}

// run runs f on a waiting goroutine or a new one; it never blocks.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		wk.jobs <- f
		return
	}
	w.mu.Unlock()
	go w.work(&worker{jobs: make(chan func(), 1)}, f)
}

// work runs f, then the functions run hands wk, until wk has waited
// idleFor for one, maxIdle others are waiting, or close was called.
func (w *workers) work(wk *worker, f func()) {
	var t *time.Timer
	for {
		f()
		f = nil // a waiting goroutine keeps no connection alive
		w.mu.Lock()
		if w.closed || len(w.idle) >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, wk)
		w.mu.Unlock()
		if t == nil {
			t = time.NewTimer(w.idleFor)
		} else {
			t.Reset(w.idleFor)
		}
		select {
		case f = <-wk.jobs:
			t.Stop()
		case <-t.C:
			w.mu.Lock()
			if i := slices.Index(w.idle, wk); i >= 0 {
				w.idle = slices.Delete(w.idle, i, i+1)
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			f = <-wk.jobs // run took wk out of idle: its function is on the way
		}
		if f == nil {
			return // close
		}
	}
}

// close ends the waiting goroutines; those running a function end after
// it. run still works after close, on new goroutines that end after their
// function.
func (w *workers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, wk := range w.idle {
		wk.jobs <- nil
	}
	w.idle = nil
}

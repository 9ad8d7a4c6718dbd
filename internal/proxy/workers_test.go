package proxy

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// waiting is the number of goroutines waiting for a function.
func (w *workers) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settledGoroutines is runtime.NumGoroutine once it stayed the same for
// 50 ms: goroutines of earlier tests may still be ending.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for stable := 0; stable < 50; stable++ {
		time.Sleep(time.Millisecond)
		if m := runtime.NumGoroutine(); m != n {
			n, stable = m, 0
		}
	}
	return n
}

func TestWorkersReuseWaitingGoroutine(t *testing.T) {
	w := newWorkers(4, time.Minute)
	defer w.close()
	done := make(chan struct{})
	w.run(func() { close(done) })
	<-done
	eventually(t, "1 waiting", func() bool { return w.waiting() == 1 })
	before := settledGoroutines()
	release := make(chan struct{})
	started := make(chan struct{})
	w.run(func() { close(started); <-release })
	<-started
	if got := w.waiting(); got != 0 {
		t.Errorf("waiting while the only worker serves: %d, want 0", got)
	}
	if got := runtime.NumGoroutine(); got != before {
		t.Errorf("goroutines %d after run, %d before: run started a new one with one waiting", got, before)
	}
	close(release)
	eventually(t, "1 waiting again", func() bool { return w.waiting() == 1 })
}

func TestWorkersKeepAtMostMaxIdle(t *testing.T) {
	w := newWorkers(2, time.Minute)
	defer w.close()
	before := settledGoroutines()
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 6 {
		started.Add(1)
		w.run(func() { started.Done(); <-release }) // none waits: 6 new goroutines
	}
	started.Wait()
	if got := runtime.NumGoroutine() - before; got != 6 {
		t.Fatalf("%d new goroutines for 6 blocked functions, want 6", got)
	}
	close(release)
	eventually(t, "back to 2 goroutines", func() bool { return runtime.NumGoroutine()-before == 2 })
	if got := w.waiting(); got != 2 {
		t.Errorf("waiting %d, want maxIdle 2", got)
	}
}

func TestWorkersIdleEndAndClose(t *testing.T) {
	w := newWorkers(4, 20*time.Millisecond)
	done := make(chan struct{})
	w.run(func() { close(done) })
	<-done
	eventually(t, "the idle worker gone", func() bool { return w.waiting() == 0 })

	w = newWorkers(4, time.Hour)
	before := settledGoroutines()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		w.run(wg.Done)
	}
	wg.Wait()
	eventually(t, "3 waiting", func() bool { return w.waiting() == 3 })
	w.close()
	eventually(t, "every waiting worker gone after close", func() bool { return runtime.NumGoroutine() <= before })
	// run still serves after close, on a goroutine that then ends.
	ran := make(chan struct{})
	w.run(func() { close(ran) })
	<-ran
	eventually(t, "the worker started after close gone", func() bool { return runtime.NumGoroutine() <= before && w.waiting() == 0 })
}

// deepStack uses about n KiB of stack.
//
//go:noinline
func deepStack(n int) byte {
	var b [1024]byte
	b[n%1024] = byte(n)
	if n == 0 {
		return b[0]
	}
	return deepStack(n-1) + b[n%1024]
}

// BenchmarkWorkersDeepStack runs a function that needs 32 KiB of stack, as
// serving a TLS connection does, on a new goroutine per call and through
// workers: the new goroutine grows and copies its stack every time.
func BenchmarkWorkersDeepStack(b *testing.B) {
	for _, c := range []struct {
		name string
		run  func(f func())
	}{
		{"go", func(f func()) { go f() }},
		{"workers", newWorkers(maxIdleWorkers, workersIdleTime).run},
	} {
		b.Run(c.name, func(b *testing.B) {
			done := make(chan struct{})
			f := func() { deepStack(32); done <- struct{}{} }
			b.ReportAllocs()
			for b.Loop() {
				c.run(f)
				<-done
			}
		})
	}
}

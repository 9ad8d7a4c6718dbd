package kube

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of events that arrive faster than the hold-off is at most two
// runs: one at once (the first event after a quiet spell) and one after the
// burst.
func TestCoalescerMergesABurst(t *testing.T) {
	c := NewCoalescer(200*time.Millisecond, 10*time.Second)
	var runs atomic.Int32
	done := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func() { runs.Add(1); done <- struct{}{} })
	for range 100 {
		c.Poke()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the hold-off passes in quiet
	if n := runs.Load(); n < 1 || n > 2 {
		t.Fatalf("a burst of 100 events produced %d runs, want 1 or 2", n)
	}
}

// An event after a quiet spell runs at once, not after the hold-off; one
// right after a run waits for the hold-off.
func TestCoalescerRunsALoneEventAtOnce(t *testing.T) {
	c := NewCoalescer(time.Hour, time.Hour)
	done := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func() { done <- struct{}{} })
	c.Poke()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a lone event waited for the hour-long hold-off")
	}
	c.Poke()
	select {
	case <-done:
		t.Fatal("an event right after a run did not wait for the hold-off")
	case <-time.After(200 * time.Millisecond):
	}
}

// A steady stream of events never goes quiet, yet MaxDelay still forces runs.
func TestCoalescerMaxDelayBoundsAStream(t *testing.T) {
	c := NewCoalescer(time.Second, 100*time.Millisecond)
	var runs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func() { runs.Add(1) })
	deadline := time.Now().Add(10 * time.Second)
	for runs.Load() < 3 && time.Now().Before(deadline) {
		c.Poke()
		time.Sleep(10 * time.Millisecond) // far below the 1s hold-off
	}
	if runs.Load() < 3 {
		t.Fatalf("a continuous stream of events produced %d runs in 10s; MaxDelay is not enforced", runs.Load())
	}
}

func TestCoalescerPokeNeverBlocks(t *testing.T) {
	c := NewCoalescer(time.Second, time.Second) // not running
	for range 1000 {
		c.Poke()
	}
}

// A run that costs more than the hold-off stretches the hold-off for events
// that arrived while it ran: they wait at least as long as the run took.
func TestCoalescerHoldOffFollowsCost(t *testing.T) {
	c := NewCoalescer(time.Millisecond, 10*time.Second)
	runs := make(chan time.Time, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int32
	go c.Run(ctx, func() {
		if n.Add(1) == 1 {
			c.Poke() // an event while the expensive first run runs
		}
		time.Sleep(300 * time.Millisecond) // an expensive translation
		runs <- time.Now()
	})
	c.Poke()
	first := <-runs
	select {
	case second := <-runs:
		if gap := second.Sub(first); gap < 500*time.Millisecond {
			t.Errorf("second run %s after the first; want at least the first's cost (300 ms) as hold-off plus its own 300 ms", gap)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no second run")
	}
}

// An event that arrives after a costly run has finished, with nothing
// queued meanwhile, runs at once: it does not wait for the run's cost
// again (that wait was most of a route change's propagation at 1,000
// routes).
func TestCoalescerEventAfterACostlyRunRunsAtOnce(t *testing.T) {
	c := NewCoalescer(10*time.Millisecond, 10*time.Second)
	starts := make(chan time.Time, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func() {
		starts <- time.Now()
		time.Sleep(2 * time.Second) // a costly translation
	})
	c.Poke()
	<-starts
	time.Sleep(2200 * time.Millisecond) // the run ends, then 200 ms of quiet
	poked := time.Now()
	c.Poke()
	select {
	case second := <-starts:
		if wait := second.Sub(poked); wait > time.Second {
			t.Errorf("the event waited %s; want it run at once, not after the last run's 2 s cost", wait)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no second run")
	}
}

package kube

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of events that arrive faster than the hold-off is one run.
func TestCoalescerMergesABurst(t *testing.T) {
	c := NewCoalescer(200*time.Millisecond, 10*time.Second)
	var runs atomic.Int32
	done := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func() { runs.Add(1); done <- struct{}{} })
	for range 100 {
		c.Poke()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no run after a burst of events")
	}
	// No further run may follow: nothing happened after the burst.
	select {
	case <-done:
		t.Fatalf("a single burst produced %d runs", runs.Load())
	case <-time.After(500 * time.Millisecond):
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

package kube

import (
	"context"
	"time"
)

// Coalescer turns bursts of events into few runs. An event after a quiet
// spell (no run for the hold-off) runs at once: a single change, the common
// case, is not delayed. Events that arrive while runs are recent wait for
// the hold-off of quiet, but never longer than MaxDelay in total, so a burst
// costs at most one more run and a steady stream still produces regular
// runs. The hold-off is HoldOff or, when longer, the last run's duration:
// batching grows with the cost of a run, so runs never take more than about
// half of a core however fast events come, while small configurations
// propagate within a short HoldOff.
type Coalescer struct {
	HoldOff  time.Duration
	MaxDelay time.Duration
	events   chan struct{}
}

// NewCoalescer returns a Coalescer; Poke may be called before Run.
func NewCoalescer(holdOff, maxDelay time.Duration) *Coalescer {
	return &Coalescer{HoldOff: holdOff, MaxDelay: maxDelay, events: make(chan struct{}, 1)}
}

// Poke records an event. It never blocks.
func (c *Coalescer) Poke() {
	select {
	case c.events <- struct{}{}:
	default:
	}
}

// Run calls fn for bursts of events until ctx ends.
func (c *Coalescer) Run(ctx context.Context, fn func()) {
	var lastRun time.Time
	var lastCost time.Duration
	run := func() {
		start := time.Now()
		fn()
		lastRun = time.Now()
		lastCost = lastRun.Sub(start)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.events:
		}
		hold := max(c.HoldOff, min(lastCost, c.MaxDelay))
		if time.Since(lastRun) >= hold {
			run()
			continue
		}
		deadline := time.NewTimer(c.MaxDelay)
		quiet := time.NewTimer(hold)
	wait:
		for {
			select {
			case <-ctx.Done():
				deadline.Stop()
				quiet.Stop()
				return
			case <-c.events:
				quiet.Reset(hold)
			case <-quiet.C:
				break wait
			case <-deadline.C:
				break wait
			}
		}
		deadline.Stop()
		quiet.Stop()
		run()
	}
}

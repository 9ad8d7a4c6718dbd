package kube

import (
	"context"
	"time"
)

// Coalescer turns bursts of events into few runs. An event after a quiet
// spell (no run for HoldOff) runs at once: a single change, the common case,
// is not delayed by the hold-off. Events that arrive while runs are recent
// wait for HoldOff of quiet, but never longer than MaxDelay in total, so a
// burst costs at most one more run and a steady stream still produces
// regular runs.
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.events:
		}
		if time.Since(lastRun) >= c.HoldOff {
			fn()
			lastRun = time.Now()
			continue
		}
		deadline := time.NewTimer(c.MaxDelay)
		quiet := time.NewTimer(c.HoldOff)
	wait:
		for {
			select {
			case <-ctx.Done():
				deadline.Stop()
				quiet.Stop()
				return
			case <-c.events:
				quiet.Reset(c.HoldOff)
			case <-quiet.C:
				break wait
			case <-deadline.C:
				break wait
			}
		}
		deadline.Stop()
		quiet.Stop()
		fn()
		lastRun = time.Now()
	}
}

package kube

import (
	"context"
	"time"
)

// Coalescer turns bursts of events into few runs. An event after a quiet
// spell (no run for HoldOff, and nothing arrived while the last run ran)
// runs at once: a single change, the common case, is not delayed. Events
// that arrive while runs are recent wait for a hold-off of quiet, but never
// longer than MaxDelay in total, so a burst costs at most one more run and
// a steady stream still produces regular runs. After a run during which
// events arrived (they come faster than runs finish) the hold-off is the
// last run's duration when that is longer than HoldOff: batching grows
// with the cost of a run, so a flood keeps runs to about half of a core,
// while a change that merely follows a costly run is not made to wait for
// that cost again.
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
	// busy: an event arrived while the last run ran.
	busy := false
	run := func() {
		start := time.Now()
		fn()
		lastRun = time.Now()
		lastCost = lastRun.Sub(start)
		select {
		case <-c.events:
			busy = true
		default:
			busy = false
		}
	}
	for {
		hold := c.HoldOff
		if busy {
			hold = max(c.HoldOff, min(lastCost, c.MaxDelay))
		} else {
			select {
			case <-ctx.Done():
				return
			case <-c.events:
			}
			if time.Since(lastRun) >= c.HoldOff {
				run()
				continue
			}
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

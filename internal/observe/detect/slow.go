package detect

import (
	"slices"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// SlowConfig configures slow-response detection.
type SlowConfig struct {
	// Multiplier: a response is slow when its latency exceeds
	// Multiplier x the service's p99 (default 2).
	Multiplier float64
	// MinSamples: no verdicts before the service has this many completed
	// exchanges in its window (default 100).
	MinSamples int
	// Window: how many recent latencies form the baseline (default 1000).
	Window int
	// MaxServices bounds the per-service state (default 1024).
	MaxServices int
}

func (c SlowConfig) withDefaults() SlowConfig {
	if c.Multiplier <= 0 {
		c.Multiplier = 2
	}
	if c.MinSamples <= 0 {
		c.MinSamples = 100
	}
	if c.Window <= 0 {
		c.Window = 1000
	}
	if c.MinSamples > c.Window {
		c.Window = c.MinSamples
	}
	if c.MaxServices <= 0 {
		c.MaxServices = 1024
	}
	return c
}

// The cached p99 is recomputed after window/p99Fraction new samples (at
// least minP99Every): sorting the window on every exchange would dominate
// the pipeline, and a baseline that lags by an eighth of its window is
// still a baseline.
const (
	p99Fraction = 8
	minP99Every = 16
)

type latencyWindow struct {
	samples []uint64 // ring of latencies in ns
	next    int
	filled  int
	since   int // samples since p99 was computed
	p99     uint64
	scratch []uint64
}

func (w *latencyWindow) add(ns uint64) {
	w.samples[w.next] = ns
	w.next = (w.next + 1) % len(w.samples)
	if w.filled < len(w.samples) {
		w.filled++
	}
	w.since++
}

func (w *latencyWindow) percentile99() uint64 {
	if w.since >= max(len(w.samples)/p99Fraction, minP99Every) || w.p99 == 0 {
		w.scratch = append(w.scratch[:0], w.samples[:w.filled]...)
		slices.Sort(w.scratch)
		// Nearest-rank p99.
		idx := (99*len(w.scratch) + 99) / 100
		w.p99 = w.scratch[max(idx-1, 0)]
		w.since = 0
	}
	return w.p99
}

// Slow flags responses slower than Multiplier x the service's p99.
type Slow struct {
	cfg SlowConfig
	svc map[string]*latencyWindow
}

// NewSlow returns the slow-response processor.
func NewSlow(cfg SlowConfig) *Slow {
	return &Slow{cfg: cfg.withDefaults(), svc: make(map[string]*latencyWindow)}
}

// Observe compares the exchange with its service's baseline, then adds it
// to the baseline. Only complete exchanges count.
func (s *Slow) Observe(o *Observation, emit func(*Event)) {
	if o.Outcome != pair.Complete {
		return
	}
	w := s.svc[o.Service]
	if w == nil {
		if len(s.svc) >= s.cfg.MaxServices {
			return
		}
		w = &latencyWindow{samples: make([]uint64, s.cfg.Window)}
		s.svc[o.Service] = w
	}
	lat := uint64(o.Latency())
	if w.filled >= s.cfg.MinSamples {
		p99 := w.percentile99()
		if float64(lat) > s.cfg.Multiplier*float64(p99) {
			ev := eventFrom(KindSlowResponse, o)
			ev.BaselineP99MS = float64(p99) / 1e6
			emit(&ev)
		}
	}
	w.add(lat)
}

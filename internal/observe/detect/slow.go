package detect

import (
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
		w.p99, w.scratch = nearestRankP99(w.samples[:w.filled], w.scratch)
		w.since = 0
	}
	return w.p99
}

// nearestRankP99 returns the nearest-rank 99th percentile of xs (0 for
// none): the k-th largest value with k = n - rank + 1, found with a min-heap
// of the k largest seen so far. k is about n/100, so this is one compare
// per sample instead of sorting them all (a sort of the 1000-sample window
// was a fifth of the observer's CPU). heap is reused scratch space.
func nearestRankP99(xs []uint64, heap []uint64) (uint64, []uint64) {
	n := len(xs)
	if n == 0 {
		return 0, heap
	}
	rank := max((99*n+99)/100, 1) // 1-based position in ascending order
	k := n - rank + 1
	heap = append(heap[:0], xs[:k]...)
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(heap, i)
	}
	for _, v := range xs[k:] {
		if v > heap[0] {
			heap[0] = v
			siftDown(heap, 0)
		}
	}
	return heap[0], heap
}

// siftDown restores the min-heap property below i.
func siftDown(h []uint64, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
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

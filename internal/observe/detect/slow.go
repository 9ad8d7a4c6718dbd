package detect

import (
	"math"
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// SlowConfig configures slow-response detection.
type SlowConfig struct {
	// Multiplier: a response is slow when its latency exceeds
	// max(Floor, Multiplier x the route's baseline p99) (default 2).
	Multiplier float64
	// MinSamples: no verdicts before the route has this many completed
	// exchanges in its baseline (default 100).
	MinSamples int
	// Window: the baseline p99 is taken over blocks of this many latencies
	// (default 1000).
	Window int
	// BaselinePeriod: a block spans at least this long (default 5m): at
	// most one latency per BaselinePeriod/Window is taken into it. Without
	// it a route at 100 requests/s filled a block in 10 s, and a slowdown
	// became its own baseline before anyone looked.
	BaselinePeriod time.Duration
	// Floor: nothing faster than this is slow, whatever the baseline
	// (default 50ms). A route answering in 2 ms has a p99 of a few ms, and
	// doubling that is scheduling noise, not a slowdown anyone acts on.
	Floor time.Duration
	// Interval: at most one event per route per Interval, carrying how many
	// of the interval's responses were slow (default 30s).
	Interval time.Duration
	// MinCount: slow responses an interval needs before an event (default 3).
	MinCount int
	// Alpha: the interval's slow count must have a binomial probability
	// below Alpha if at most 1% of responses exceeded the threshold, as the
	// baseline p99 says (default 1e-4).
	Alpha float64
	// MaxRoutes bounds the per-route state (default 2048); the route seen
	// least recently makes room for a new one.
	MaxRoutes int
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
	if c.BaselinePeriod <= 0 {
		c.BaselinePeriod = 5 * time.Minute
	}
	if c.Floor < 0 {
		c.Floor = 0
	} else if c.Floor == 0 {
		c.Floor = 50 * time.Millisecond
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.MinCount <= 0 {
		c.MinCount = 3
	}
	if c.Alpha <= 0 {
		c.Alpha = 1e-4
	}
	if c.MaxRoutes <= 0 {
		c.MaxRoutes = 2048
	}
	return c
}

// exceedP99 is the share of responses above the baseline p99 when nothing
// changed; above Multiplier x p99 (Multiplier > 1) it can only be less.
// Testing against it needs no model of the latency distribution.
const exceedP99 = 0.01

// The partial block's p99 is recomputed after len/p99Fraction new samples
// (at least minP99Every): a baseline that lags by an eighth of its block is
// still a baseline, and selecting on every exchange would dominate the
// pipeline.
const (
	p99Fraction = 8
	minP99Every = 16
)

// routeKey: baselines are per route and method (GET and POST on one path
// are different work); Route is already bounded per service by the label
// limiter.
type routeKey struct{ service, method, route string }

type routeState struct {
	// Baseline: latencies (µs) of the block being filled; when it holds
	// Window of them its p99 joins bases and it starts again. The baseline
	// is the median of the last three blocks' p99s: a slowdown is judged
	// against the blocks before it, one block's slowdown does not become
	// the baseline, and the p99 of 1,000 samples, which on healthy traffic
	// with a few 100 ms hiccups swung between 32 and 78 ms from block to
	// block, swings less.
	block   []uint32
	bases   [3]uint64 // ns, ring
	nbases  int
	base    uint64 // ns; median of bases, 0 until the first block completed
	partial uint64 // ns; p99 of the partial block while base is 0
	since   int    // samples since partial was computed
	sampled uint64 // kernel ns of the last latency taken into block

	// The current interval.
	start   uint64 // kernel ns
	n, k    int    // exchanges and slow ones
	alerted bool

	lastSeen uint64
}

// baseline returns the p99 the route is judged against, 0 for none yet.
func (s *Slow) baseline(r *routeState) uint64 {
	if r.base != 0 {
		return r.base
	}
	if len(r.block) < s.cfg.MinSamples {
		return 0
	}
	if r.partial == 0 || r.since >= max(len(r.block)/p99Fraction, minP99Every) {
		r.partial = s.p99(r.block)
		r.since = 0
	}
	return r.partial
}

func (s *Slow) add(r *routeState, now, lat uint64) {
	if r.sampled != 0 && now-r.sampled < uint64(s.cfg.BaselinePeriod)/uint64(s.cfg.Window) {
		return
	}
	r.sampled = now
	r.block = append(r.block, uint32(min(lat/1000, math.MaxUint32)))
	r.since++
	if len(r.block) >= s.cfg.Window {
		r.bases[r.nbases%len(r.bases)] = s.p99(r.block)
		r.nbases++
		r.base = medianOfBases(r)
		r.block = r.block[:0]
		r.partial, r.since = 0, 0
	}
}

// medianOfBases: the median of three, the larger of two (the cautious
// choice), or the only one.
func medianOfBases(r *routeState) uint64 {
	a, b, c := r.bases[0], r.bases[1], r.bases[2]
	switch r.nbases {
	case 1:
		return a
	case 2:
		return max(a, b)
	}
	return max(min(a, b), min(max(a, b), c))
}

// p99 is the nearest-rank p99 of µs samples, in ns (at least 1 so that 0
// keeps meaning "none").
func (s *Slow) p99(block []uint32) uint64 {
	s.scratch = s.scratch[:0]
	for _, v := range block {
		s.scratch = append(s.scratch, uint64(v))
	}
	var p uint64
	p, s.heap = nearestRankP99(s.scratch, s.heap)
	return max(p*1000, 1)
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

// Marks the processors set on an exchange while it is pending, so that
// the same request is counted once (pair carries them opaquely).
const (
	markSlow  uint8 = 1 << 0
	markProbe uint8 = 1 << 1
)

// Slow reports routes whose responses turn slow: more responses above
// max(Floor, Multiplier x p99) in an interval than the baseline allows.
type Slow struct {
	cfg     SlowConfig
	routes  map[routeKey]*routeState
	scratch []uint64
	heap    []uint64
}

// NewSlow returns the slow-response processor.
func NewSlow(cfg SlowConfig) *Slow {
	return &Slow{cfg: cfg.withDefaults(), routes: make(map[routeKey]*routeState)}
}

// Observe judges an exchange against its route's baseline, counts it in
// the route's interval, and adds complete exchanges to the baseline.
// Pending observations (requests still unanswered, from the pairer's
// sweep) count as slow once they are older than the threshold; timeouts
// count as slow unless a sweep already counted them. Resets carry no
// latency and are the error-spike processor's business.
func (s *Slow) Observe(o *Observation, emit func(*Event)) {
	if o.Outcome == pair.Reset || o.Marks&markSlow != 0 && o.Outcome != pair.Complete {
		return
	}
	k := routeKey{o.Service, o.Method, o.Route}
	r := s.routes[k]
	if r == nil {
		if o.Outcome == pair.Pending {
			return // no baseline to judge it by
		}
		r = s.newRoute(k)
	}
	r.lastSeen = o.EndNS
	p99 := s.baseline(r)
	lat := uint64(o.Latency())
	threshold := uint64(s.cfg.Floor)
	if p99 != 0 {
		threshold = max(threshold, uint64(s.cfg.Multiplier*float64(p99)))
	}
	switch o.Outcome {
	case pair.Complete:
		if o.Marks&markSlow == 0 {
			// Judged only with a baseline: before it, the floor alone
			// would flag every route that is simply slow by nature.
			s.count(r, o, p99 != 0 && lat > threshold, p99, threshold, emit)
		}
		s.add(r, o.EndNS, lat)
	case pair.Timeout:
		s.count(r, o, lat > threshold, p99, threshold, emit)
	case pair.Pending:
		if p99 != 0 && lat > threshold {
			o.Marks |= markSlow
			s.count(r, o, true, p99, threshold, emit)
		}
	}
}

func (s *Slow) newRoute(k routeKey) *routeState {
	if len(s.routes) >= s.cfg.MaxRoutes {
		// O(routes), only when a new route arrives at capacity.
		var oldK routeKey
		var old *routeState
		for rk, r := range s.routes {
			if old == nil || r.lastSeen < old.lastSeen {
				oldK, old = rk, r
			}
		}
		delete(s.routes, oldK)
	}
	r := &routeState{}
	s.routes[k] = r
	return r
}

// count adds one exchange (slow or not) to the route's interval and emits
// when the interval's slow count is improbable under the baseline.
func (s *Slow) count(r *routeState, o *Observation, slow bool, p99, threshold uint64, emit func(*Event)) {
	now := o.EndNS
	if iv := uint64(s.cfg.Interval); now >= r.start+iv || r.start == 0 {
		r.start = now
		r.n, r.k, r.alerted = 0, 0, false
	}
	r.n++
	if !slow {
		return
	}
	r.k++
	if r.alerted || r.k < s.cfg.MinCount {
		return
	}
	p := binomialTail(r.n, r.k, exceedP99)
	if p >= s.cfg.Alpha {
		return
	}
	r.alerted = true
	ev := eventFrom(KindSlowResponse, o)
	ev.BaselineP99MS = float64(p99) / 1e6
	ev.ThresholdMS = float64(threshold) / 1e6
	ev.SlowCount = r.k
	ev.WindowRequests = r.n
	ev.PValue = p
	emit(&ev)
}

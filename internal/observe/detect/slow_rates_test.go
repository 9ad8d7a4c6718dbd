package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// trafficRoute is one route of the synthetic service.
type trafficRoute struct {
	name   string
	median time.Duration
	perSec float64
}

// healthyRoutes: eight routes from a 3 ms lookup at 100/s to a 250 ms
// report at 2/s, 240 requests/s in all.
var healthyRoutes = []trafficRoute{
	{"/r0", 3 * time.Millisecond, 100}, {"/r1", 5 * time.Millisecond, 60},
	{"/r2", 8 * time.Millisecond, 40}, {"/r3", 15 * time.Millisecond, 20},
	{"/r4", 30 * time.Millisecond, 10}, {"/r5", 60 * time.Millisecond, 5},
	{"/r6", 120 * time.Millisecond, 3}, {"/r7", 250 * time.Millisecond, 2},
}

// slowdown changes a route's latencies during [from, to).
type slowdown struct {
	route    string
	from, to time.Duration
	factor   float64 // this much slower
	share    float64 // this share of requests (1: all)
}

// healthyLatency is log-normal around the route's median (sigma 0.5), with
// jitter: +-20% multiplicative noise on every request, and 0.5% of requests
// delayed by up to 100 ms more (GC pauses, CPU throttling, a slow disk).
func healthyLatency(rng *rand.Rand, median time.Duration) time.Duration {
	l := float64(median) * math.Exp(0.5*rng.NormFloat64())
	l *= 1 + 0.2*(2*rng.Float64()-1)
	if rng.Float64() < 0.005 {
		l += rng.Float64() * float64(100*time.Millisecond)
	}
	return time.Duration(l)
}

// simulateSlow runs Poisson traffic on the routes for d and returns the
// events per route of the detector and of the rule before issue 16 (per
// service, one event per response above 2 x the p99 of the last 1000).
func simulateSlow(routes []trafficRoute, d time.Duration, sd []slowdown, seed uint64) (newEvents, oldEvents map[string]int) {
	newEvents, oldEvents, _ = simulateSlowDetected(routes, d, sd, seed)
	return newEvents, oldEvents
}

// simulateSlowDetected also returns how many of the slowdowns had an event
// on their route while they lasted.
func simulateSlowDetected(routes []trafficRoute, d time.Duration, sd []slowdown, seed uint64) (newEvents, oldEvents map[string]int, detected int) {
	hit := make([]bool, len(sd))
	rng := rand.New(rand.NewPCG(seed, 99))
	det := NewSlow(SlowConfig{})
	old := &oldSlowRule{}
	newEvents, oldEvents = map[string]int{}, map[string]int{}
	t0 := uint64(time.Hour)
	next := make([]float64, len(routes)) // next arrival, seconds
	for i, r := range routes {
		next[i] = rng.ExpFloat64() / r.perSec
	}
	for {
		// The route with the earliest next arrival.
		i := 0
		for j := range next {
			if next[j] < next[i] {
				i = j
			}
		}
		at := time.Duration(next[i] * float64(time.Second))
		if at >= d {
			for _, h := range hit {
				detected += btoi(h)
			}
			return newEvents, oldEvents, detected
		}
		r := routes[i]
		next[i] += rng.ExpFloat64() / r.perSec
		lat := healthyLatency(rng, r.median)
		for _, s := range sd {
			if s.route == r.name && at >= s.from && at < s.to && rng.Float64() < s.share {
				lat = time.Duration(float64(lat) * s.factor)
			}
		}
		o := obs("svc", t0+uint64(at+lat), lat, 200)
		o.Route = r.name
		det.Observe(o, func(e *Event) {
			newEvents[e.Route]++
			for j, s := range sd {
				if s.route == e.Route && at >= s.from && at < s.to {
					hit[j] = true
				}
			}
		})
		if old.observe(uint64(lat)) {
			oldEvents[r.name]++
		}
	}
}

// oldSlowRule is the slow-response rule before issue 16, for comparison.
type oldSlowRule struct {
	win    [1000]uint64
	n      int
	p99    uint64
	since  int
	scrach []uint64
}

func (o *oldSlowRule) observe(lat uint64) bool {
	slow := false
	if o.n >= 100 {
		if o.since >= 125 || o.p99 == 0 {
			o.p99, o.scrach = nearestRankP99(o.win[:min(o.n, len(o.win))], o.scrach)
			o.since = 0
		}
		slow = float64(lat) > 2*float64(o.p99)
	}
	o.win[o.n%len(o.win)] = lat
	o.n++
	o.since++
	return slow
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestSlowQuietOnHealthyTraffic is the regression test for issue 16 point
// 4: the per-service, per-response rule gave 17-125 events a minute on
// healthy traffic.
func TestSlowQuietOnHealthyTraffic(t *testing.T) {
	const d = 20 * time.Minute
	got, old := simulateSlow(healthyRoutes, d, nil, 1)
	if n := sum(got); n != 0 {
		t.Errorf("%d slow_response events in %v of healthy traffic, want 0: %v", n, d, got)
	}
	// The old rule on the same traffic is noisy: the simulation can fail.
	if perMin := float64(sum(old)) / d.Minutes(); perMin < 10 {
		t.Errorf("old rule: %.1f events/min; the simulation no longer reproduces the noise", perMin)
	}
}

func TestSlowReportsRealSlowdowns(t *testing.T) {
	sd := []slowdown{
		{route: "/r2", from: 10 * time.Minute, to: 12 * time.Minute, factor: 10, share: 1},   // busy route, 8 -> 80 ms
		{route: "/r5", from: 15 * time.Minute, to: 17 * time.Minute, factor: 10, share: 0.2}, // a fifth of requests 10x
		{route: "/r7", from: 20 * time.Minute, to: 25 * time.Minute, factor: 4, share: 1},    // 2 requests/s, all 4x for 5 minutes
	}
	got, _, detected := simulateSlowDetected(healthyRoutes, 26*time.Minute, sd, 2)
	if detected != len(sd) {
		t.Errorf("%d of %d slowdowns reported: %v", detected, len(sd), got)
	}
	for _, s := range sd {
		// At most one event per 30 s interval.
		if max := int((s.to - s.from) / (30 * time.Second)); got[s.route] > max+1 {
			t.Errorf("%s: %d events in %v", s.route, got[s.route], s.to-s.from)
		}
	}
	if n := sum(got) - got["/r2"] - got["/r5"] - got["/r7"]; n != 0 {
		t.Errorf("events on healthy routes: %v", got)
	}
}

// TestSlowRates prints the events per minute quoted in docs/observer.md.
func TestSlowRates(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("measurement; run with -v")
	}
	d := time.Duration(*rateWindows) * 10 * time.Second
	got, old := simulateSlow(healthyRoutes, d, nil, 3)
	t.Logf("healthy traffic, 240 req/s on 8 routes, %v: %d events (%.3f/min); old rule %d (%.1f/min)",
		d, sum(got), float64(sum(got))/d.Minutes(), sum(old), float64(sum(old))/d.Minutes())
	// Slowdowns of one route for two minutes each, 40 minutes apart: the
	// baseline (the median of three blocks' p99s) of a route at 2
	// requests/s spans 25 minutes, and a slowdown must not be judged
	// against the previous one.
	for _, c := range []struct {
		route  string
		factor float64
		share  float64
	}{{"/r0", 3, 1}, {"/r0", 20, 1}, {"/r2", 4, 1}, {"/r2", 10, 1}, {"/r5", 10, 0.05}, {"/r5", 10, 0.1}, {"/r5", 10, 0.2}, {"/r7", 2, 1}, {"/r7", 4, 1}, {"/r7", 10, 1}} {
		var sd []slowdown
		const n = 10
		for i := range n {
			from := time.Duration(40*i+30) * time.Minute
			sd = append(sd, slowdown{route: c.route, from: from, to: from + 2*time.Minute, factor: c.factor, share: c.share})
		}
		got, _, detected := simulateSlowDetected(healthyRoutes, time.Duration(40*n+30)*time.Minute, sd, 4)
		t.Logf("%s (median %v) x%.0f for %.0f%% of requests, %d two-minute slowdowns: %d detected, %d events on it, %d elsewhere",
			c.route, medianOf(c.route), c.factor, 100*c.share, n, detected, got[c.route], sum(got)-got[c.route])
	}
}

func medianOf(route string) time.Duration {
	for _, r := range healthyRoutes {
		if r.name == route {
			return r.median
		}
	}
	return 0
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

func obs(svc string, endNS uint64, lat time.Duration, status int) *Observation {
	return &Observation{
		Exchange: &pair.Exchange{Method: "GET", Target: "/x", Status: status, StartNS: endNS - uint64(lat), EndNS: endNS},
		Service:  svc,
		Route:    "/x",
	}
}

type sink struct{ evs []Event }

func (s *sink) emit(e *Event) { s.evs = append(s.evs, *e) }

func TestSlowNeedsMinSamplesThenFlagsAboveMultiplier(t *testing.T) {
	var s sink
	d := NewSlow(SlowConfig{MinSamples: 50, Window: 100})
	now := uint64(time.Hour)
	// A latency far above anything, before the baseline exists: no verdict.
	d.Observe(obs("a", now, time.Second, 200), s.emit)
	if len(s.evs) != 0 {
		t.Fatalf("verdict before MinSamples: %+v", s.evs)
	}
	for i := range 200 {
		d.Observe(obs("a", now, time.Duration(1+i%10)*time.Millisecond, 200), s.emit)
	}
	if len(s.evs) != 0 {
		t.Fatalf("baseline traffic flagged: %+v", s.evs)
	}
	// p99 of 1..10 ms is 10 ms; 2x is 20 ms.
	d.Observe(obs("a", now, 19*time.Millisecond, 200), s.emit)
	if len(s.evs) != 0 {
		t.Fatalf("19ms flagged against a 10ms p99 with 2x: %+v", s.evs)
	}
	d.Observe(obs("a", now, 25*time.Millisecond, 503), s.emit)
	if len(s.evs) != 1 {
		t.Fatalf("25ms not flagged: %+v", s.evs)
	}
	e := s.evs[0]
	if e.Kind != KindSlowResponse || e.Service != "a" || e.Status != 503 || e.LatencyMS != 25 || e.BaselineP99MS != 10 || e.Route != "/x" || e.Method != "GET" {
		t.Fatalf("event %+v", e)
	}
	// Another service has its own baseline.
	d.Observe(obs("b", now, time.Second, 200), s.emit)
	if len(s.evs) != 1 {
		t.Fatalf("service b flagged without baseline")
	}
}

func TestSlowIgnoresResetsAndTimeouts(t *testing.T) {
	var s sink
	d := NewSlow(SlowConfig{MinSamples: 1, Window: 1})
	o := obs("a", uint64(time.Hour), time.Hour, 0)
	o.Outcome = pair.Timeout
	for range 10 {
		d.Observe(o, s.emit)
	}
	if len(s.evs) != 0 || len(d.svc) != 0 {
		t.Fatalf("timeouts entered the baseline")
	}
}

func TestSpikeAgainstRollingBaseline(t *testing.T) {
	var s sink
	d := NewSpike(SpikeConfig{Window: time.Second, BaselineWindows: 5, MinRequests: 10, Multiplier: 3, MinRate: 0.1})
	t0 := uint64(time.Hour)
	at := func(sec float64) uint64 { return t0 + uint64(sec*float64(time.Second)) }
	// Two windows at a 5% error rate: the baseline.
	for w := range 2 {
		for i := range 40 {
			st := 200
			if i%20 == 0 {
				st = 500
			}
			d.Observe(obs("a", at(float64(w)+float64(i)/50), time.Millisecond, st), s.emit)
		}
	}
	if len(s.evs) != 0 {
		t.Fatalf("baseline flagged: %+v", s.evs)
	}
	// Third window: 50% errors, once MinRequests is reached -> one event.
	for i := range 40 {
		st := 200
		if i%2 == 0 {
			st = 503
		}
		d.Observe(obs("a", at(2+float64(i)/50), time.Millisecond, st), s.emit)
	}
	if len(s.evs) != 1 {
		t.Fatalf("want one spike event per window, got %d", len(s.evs))
	}
	e := s.evs[0]
	if e.Kind != KindErrorSpike || e.BaselineErrorRate != 0.05 || e.ErrorRate < 0.4 || e.WindowRequests < 10 {
		t.Fatalf("event %+v", e)
	}
	// Next window at baseline rate: no event.
	for i := range 40 {
		st := 200
		if i%20 == 0 {
			st = 500
		}
		d.Observe(obs("a", at(3+float64(i)/50), time.Millisecond, st), s.emit)
	}
	if len(s.evs) != 1 {
		t.Fatalf("baseline window flagged")
	}
}

func TestSpikeNeedsBaseline(t *testing.T) {
	var s sink
	d := NewSpike(SpikeConfig{Window: time.Second, MinRequests: 5})
	for i := range 50 {
		d.Observe(obs("a", uint64(time.Hour)+uint64(i), time.Millisecond, 500), s.emit)
	}
	if len(s.evs) != 0 {
		t.Fatalf("flagged without a baseline: %+v", s.evs)
	}
}

func TestProbeFailures(t *testing.T) {
	cases := []struct {
		name    string
		ua      string
		status  int
		outcome pair.Outcome
		want    string
	}{
		{"ok", "kube-probe/1.36", 200, pair.Complete, ""},
		{"redirect counts as success for the kubelet", "kube-probe/1.36", 302, pair.Complete, ""},
		{"503", "kube-probe/1.36", 503, pair.Complete, "status 503"},
		{"404", "kube-probe/1.30", 404, pair.Complete, "status 404"},
		{"reset", "kube-probe/1.36", 0, pair.Reset, "connection reset"},
		{"timeout", "kube-probe/1.36", 0, pair.Timeout, "no response before timeout"},
		{"not a probe", "curl/8.0", 503, pair.Complete, ""},
	}
	for _, tc := range cases {
		var s sink
		o := obs("a", uint64(time.Hour), time.Millisecond, tc.status)
		o.UserAgent, o.Outcome = tc.ua, tc.outcome
		Probe{}.Observe(o, s.emit)
		if tc.want == "" {
			if len(s.evs) != 0 {
				t.Errorf("%s: unexpected %+v", tc.name, s.evs)
			}
			continue
		}
		if len(s.evs) != 1 || s.evs[0].Reason != tc.want || s.evs[0].Kind != KindProbeFailure || s.evs[0].Outcome != tc.outcome.String() {
			t.Errorf("%s: got %+v", tc.name, s.evs)
		}
	}
}

// TestNearestRankP99MatchesSort checks the heap selection against sorting
// for window sizes around the rank boundaries, with ties.
func TestNearestRankP99MatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var scratch []uint64
	for _, n := range []int{1, 2, 3, 50, 98, 99, 100, 101, 199, 1000, 1001, 4096} {
		for _, spread := range []uint64{3, 1 << 40} { // many ties, few ties
			xs := make([]uint64, n)
			for i := range xs {
				xs[i] = rng.Uint64N(spread)
			}
			sorted := slices.Clone(xs)
			slices.Sort(sorted)
			want := sorted[(99*n+99)/100-1]
			var got uint64
			got, scratch = nearestRankP99(xs, scratch)
			if got != want {
				t.Errorf("n=%d spread=%d: p99 %d, sorting gives %d", n, spread, got, want)
			}
		}
	}
	if got, _ := nearestRankP99(nil, nil); got != 0 {
		t.Errorf("empty window: %d", got)
	}
}

func BenchmarkNearestRankP99(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]uint64, 1000)
	for i := range xs {
		xs[i] = rng.Uint64N(1e9)
	}
	var scratch []uint64
	for b.Loop() {
		_, scratch = nearestRankP99(xs, scratch)
	}
}

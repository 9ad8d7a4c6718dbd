package detect

import (
	"math/rand/v2"
	"net/netip"
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

func TestSlowNeedsBaselineFloorAndCount(t *testing.T) {
	var s sink
	d := NewSlow(SlowConfig{MinSamples: 50, Window: 100})
	t0 := uint64(time.Hour)
	// A latency far above anything, before the baseline exists: no verdict.
	for range 5 {
		d.Observe(obs("a", t0, time.Second, 200), s.emit)
	}
	if len(s.evs) != 0 {
		t.Fatalf("verdict before MinSamples: %+v", s.evs)
	}
	// Ten minutes of 1..10 ms: p99 10 ms, so the threshold is the 50 ms
	// floor, not 2 x 10 ms.
	for i := range 600 {
		d.Observe(obs("a", t0+uint64(i)*uint64(time.Second), time.Duration(1+i%10)*time.Millisecond, 200), s.emit)
	}
	t1 := t0 + uint64(20*time.Minute)
	for range 5 {
		d.Observe(obs("a", t1, 40*time.Millisecond, 200), s.emit)
	}
	if len(s.evs) != 0 {
		t.Fatalf("below the floor flagged: %+v", s.evs)
	}
	// A fresh interval: two slow responses are not enough, three are.
	t2 := t1 + uint64(time.Minute)
	d.Observe(obs("a", t2, 60*time.Millisecond, 200), s.emit)
	d.Observe(obs("a", t2, 70*time.Millisecond, 200), s.emit)
	if len(s.evs) != 0 {
		t.Fatalf("flagged below MinCount: %+v", s.evs)
	}
	d.Observe(obs("a", t2, 80*time.Millisecond, 503), s.emit)
	if len(s.evs) != 1 {
		t.Fatalf("three slow responses of three not flagged: %+v", s.evs)
	}
	e := s.evs[0]
	if e.Kind != KindSlowResponse || e.Service != "a" || e.Status != 503 || e.LatencyMS != 80 || e.BaselineP99MS != 10 ||
		e.ThresholdMS != 50 || e.SlowCount != 3 || e.WindowRequests != 3 || e.Route != "/x" || e.Method != "GET" || e.PValue <= 0 || e.PValue >= 1e-4 {
		t.Fatalf("event %+v", e)
	}
	// The rest of the interval is aggregated into that event.
	for range 20 {
		d.Observe(obs("a", t2+uint64(10*time.Second), 90*time.Millisecond, 200), s.emit)
	}
	if len(s.evs) != 1 {
		t.Fatalf("more than one event per interval: %d", len(s.evs))
	}
	// The next interval reports again.
	t3 := t2 + uint64(31*time.Second)
	for range 3 {
		d.Observe(obs("a", t3, 90*time.Millisecond, 200), s.emit)
	}
	if len(s.evs) != 2 {
		t.Fatalf("next interval not reported: %d events", len(s.evs))
	}
	// Another route of the same service has its own baseline (none yet).
	for range 10 {
		o := obs("a", t3, time.Second, 200)
		o.Route = "/y"
		d.Observe(o, s.emit)
	}
	if len(s.evs) != 2 {
		t.Fatalf("route /y flagged against /x's baseline")
	}
}

func TestSlowOnlyWhenImprobable(t *testing.T) {
	var s sink
	d := NewSlow(SlowConfig{MinSamples: 50, Window: 100})
	t0 := uint64(time.Hour)
	for i := range 300 {
		d.Observe(obs("a", t0+uint64(i)*uint64(time.Second), time.Duration(1+i%10)*time.Millisecond, 200), s.emit)
	}
	// 1,000 exchanges in one interval with 5 slow ones: 0.5%, under the
	// 1% the p99 allows.
	t1 := t0 + uint64(time.Hour)
	for i := range 1000 {
		lat := 5 * time.Millisecond
		if i%200 == 0 {
			lat = time.Second
		}
		d.Observe(obs("a", t1, lat, 200), s.emit)
	}
	if len(s.evs) != 0 {
		t.Fatalf("0.5%% slow flagged: %+v", s.evs)
	}
}

func TestSlowTimeoutsAndPendingCountOnce(t *testing.T) {
	var s sink
	d := NewSlow(SlowConfig{MinSamples: 50, Window: 100})
	t0 := uint64(time.Hour)
	for i := range 300 {
		d.Observe(obs("a", t0+uint64(i)*uint64(time.Second), time.Duration(1+i%10)*time.Millisecond, 200), s.emit)
	}
	r := d.routes[routeKey{"a", "GET", "/x"}]
	blockLen := len(r.block)
	t1 := t0 + uint64(time.Hour)
	// Resets say nothing about latency.
	for range 5 {
		o := obs("a", t1, time.Second, 0)
		o.Outcome = pair.Reset
		d.Observe(o, s.emit)
	}
	// Two requests hang: the sweep sees them past the threshold.
	pend := []*Observation{obs("a", t1, 100*time.Millisecond, 0), obs("a", t1, 200*time.Millisecond, 0)}
	for range 3 { // three sweeps: each request is counted once
		for _, o := range pend {
			o.Outcome = pair.Pending
			d.Observe(o, s.emit)
		}
	}
	if len(s.evs) != 0 || r.k != 2 {
		t.Fatalf("two hung requests: events %+v, slow count %d", s.evs, r.k)
	}
	// The first is answered at last (marked: counted already, but its
	// latency joins the baseline); the second times out (marked: not
	// counted again).
	pend[0].Outcome, pend[0].Status, pend[0].EndNS = pair.Complete, 200, t1+uint64(time.Millisecond)
	d.Observe(pend[0], s.emit)
	pend[1].Outcome = pair.Timeout
	d.Observe(pend[1], s.emit)
	if len(s.evs) != 0 || r.k != 2 || len(r.block) != blockLen+1 {
		t.Fatalf("marked requests counted twice: events %+v, slow %d, baseline %d -> %d", s.evs, r.k, blockLen, len(r.block))
	}
	// An unmarked timeout is slow, never part of the baseline.
	o := obs("a", t1, 30*time.Second, 0)
	o.Outcome = pair.Timeout
	d.Observe(o, s.emit)
	if len(s.evs) != 1 || s.evs[0].Outcome != "timeout" || s.evs[0].SlowCount != 3 || len(r.block) != blockLen+1 {
		t.Fatalf("events %+v, baseline %d", s.evs, len(r.block))
	}
	// A pending request of a route without a baseline is not judged.
	o = obs("b", t1, time.Minute, 0)
	o.Outcome = pair.Pending
	d.Observe(o, s.emit)
	if _, ok := d.routes[routeKey{"b", "GET", "/x"}]; ok || o.Marks != 0 {
		t.Fatal("pending request made a route or was marked")
	}
}

func TestSlowRouteStateIsBounded(t *testing.T) {
	d := NewSlow(SlowConfig{MaxRoutes: 10})
	for i := range 100 {
		o := obs("a", uint64(time.Hour)+uint64(i), time.Millisecond, 200)
		o.Route = "/r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		d.Observe(o, func(*Event) {})
	}
	if len(d.routes) != 10 {
		t.Fatalf("%d routes tracked, want 10", len(d.routes))
	}
	// The most recent survived.
	if _, ok := d.routes[routeKey{"a", "GET", "/rvd"}]; !ok {
		t.Fatal("newest route evicted")
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
		NewProbe(ProbeConfig{}).Observe(o, s.emit)
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

func probeObs(lat time.Duration, status int, outcome pair.Outcome) *Observation {
	o := obs("a", uint64(time.Hour), lat, status)
	o.UserAgent, o.Outcome = "kube-probe/1.36", outcome
	o.Client = netip.MustParseAddrPort("10.0.0.1:40000")
	o.Server = netip.MustParseAddrPort("10.0.0.2:8080")
	return o
}

func TestProbeTimeoutsHungAndLate(t *testing.T) {
	var s sink
	p := NewProbe(ProbeConfig{})
	// Answered 200 after 1.5 s: the kubelet gave up at 1 s.
	p.Observe(probeObs(1500*time.Millisecond, 200, pair.Complete), s.emit)
	if len(s.evs) != 1 || s.evs[0].Reason != "answered after the probe timeout (1s)" {
		t.Fatalf("late answer: %+v", s.evs)
	}
	// Hung: the sweep sees it at 0.5 s (nothing), at 1.2 s (failure), at
	// 1.5 s (already reported); then it ends as a timeout (not again).
	o := probeObs(500*time.Millisecond, 0, pair.Pending)
	p.Observe(o, s.emit)
	if len(s.evs) != 1 {
		t.Fatalf("young pending probe reported: %+v", s.evs)
	}
	o.EndNS = o.StartNS + uint64(1200*time.Millisecond)
	p.Observe(o, s.emit)
	o.EndNS = o.StartNS + uint64(1500*time.Millisecond)
	p.Observe(o, s.emit)
	if len(s.evs) != 2 || s.evs[1].Outcome != "pending" || s.evs[1].Reason != "no response within the probe timeout (1s)" || s.evs[1].LatencyMS != 1200 {
		t.Fatalf("hung probe: %+v", s.evs)
	}
	o.Outcome = pair.Timeout
	p.Observe(o, s.emit)
	if len(s.evs) != 2 {
		t.Fatalf("hung probe reported twice: %+v", s.evs)
	}
	// The pod's own probe spec says 5 s: 1.5 s is in time.
	p = NewProbe(ProbeConfig{TimeoutOf: func(srv netip.AddrPort, target string) (time.Duration, bool) {
		return 5 * time.Second, srv.Port() == 8080 && target == "/x"
	}})
	p.Observe(probeObs(1500*time.Millisecond, 200, pair.Complete), s.emit)
	if len(s.evs) != 2 {
		t.Fatalf("probe spec timeout ignored: %+v", s.evs)
	}
}

func TestProbeRefused(t *testing.T) {
	var s sink
	p := NewProbe(ProbeConfig{})
	refused := func(at uint64) *Observation {
		o := probeObs(0, 0, pair.Reset)
		o.Client = netip.MustParseAddrPort("10.0.0.1:40123") // a new connection
		o.UserAgent, o.Method, o.Target, o.Route = "", "", "", ""
		o.StartNS, o.EndNS = at, at
		return o
	}
	// Nobody probed this server yet: an ordinary refused connection.
	p.Refused(refused(uint64(time.Hour)), s.emit)
	if len(s.evs) != 0 {
		t.Fatalf("refusal without a probe history: %+v", s.evs)
	}
	p.Observe(probeObs(time.Millisecond, 200, pair.Complete), s.emit)
	at := uint64(2 * time.Hour)
	p.Refused(refused(at), s.emit)
	p.Refused(refused(at+uint64(time.Millisecond)), s.emit) // the same RST at another hook
	if len(s.evs) != 1 || s.evs[0].Reason != "connection refused" || s.evs[0].Outcome != "refused" || s.evs[0].Route != "/x" || s.evs[0].Method != "GET" || s.evs[0].Service != "a" {
		t.Fatalf("refused probe: %+v", s.evs)
	}
	p.Refused(refused(at+uint64(10*time.Second)), s.emit) // the next probe period
	if len(s.evs) != 2 {
		t.Fatalf("next refusal: %+v", s.evs)
	}
	// A client that never probed is not a kubelet.
	o := refused(at + uint64(time.Minute))
	o.Client = netip.MustParseAddrPort("10.0.0.9:40000")
	p.Refused(o, s.emit)
	if len(s.evs) != 2 {
		t.Fatalf("other client's refusal reported: %+v", s.evs)
	}
}

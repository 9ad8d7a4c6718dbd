package detect

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// rateWindows is how many windows the rate measurements simulate per case;
// raise it to measure small rates (the docs' numbers used 100000):
//
//	go test -run TestSpikeRates -v ./internal/observe/detect/ -args -rate-windows 100000
var rateWindows = flag.Int("rate-windows", 1000, "windows per case in the spike and slow rate measurements")

// simulateSpike feeds a service perWindow requests per window, each an
// error with probability errRate(window), at uniformly random times, and
// returns which windows raised an event.
func simulateSpike(cfg SpikeConfig, windows, perWindow int, errRate func(w int) float64, rng *rand.Rand) []bool {
	cfg = cfg.withDefaults()
	d := NewSpike(cfg)
	alerted := make([]bool, windows)
	t0 := uint64(time.Hour)
	win := uint64(cfg.Window)
	times := make([]uint64, perWindow)
	for w := range windows {
		// Sorted uniform arrival times inside the window; the very first
		// at 0, so that the detector's windows (which start at a service's
		// first exchange) line up with the simulated ones.
		for i := range times {
			times[i] = uint64(w)*win + uint64(i)*win/uint64(perWindow) + rng.Uint64N(win/uint64(perWindow))
		}
		if w == 0 {
			times[0] = 0
		}
		r := errRate(w)
		for _, at := range times {
			o := obs("svc", t0+at, time.Millisecond, 200)
			switch u := rng.Float64(); {
			case u < r/3:
				o.Status = 503
			case u < 2*r/3:
				o.Status, o.Outcome = 0, pair.Reset
			case u < r:
				o.Status, o.Outcome = 0, pair.Timeout
			}
			d.Observe(o, func(*Event) { alerted[w] = true })
		}
	}
	return alerted
}

func count(bs []bool, from int) (n int) {
	for _, b := range bs[from:] {
		if b {
			n++
		}
	}
	return n
}

// TestSpikeSteadyErrorRateNeverAlarms is the regression test for issue 16
// point 3: with windows judged after 20 requests on the rate alone, a
// steady 1% error rate alarmed in 8-11% of windows.
func TestSpikeSteadyErrorRateNeverAlarms(t *testing.T) {
	for _, perWindow := range []int{50, 200, 1000} {
		for _, rate := range []float64{0.01, 0.05} {
			rng := rand.New(rand.NewPCG(uint64(perWindow), uint64(rate*1000)))
			got := simulateSpike(SpikeConfig{}, 1000, perWindow, func(int) float64 { return rate }, rng)
			if n := count(got, 0); n != 0 {
				t.Errorf("%d requests/window at a steady %.0f%% errors: %d events in 1000 windows, want 0", perWindow, rate*100, n)
			}
		}
	}
	// The old rule on the same traffic does alarm: the simulation can fail.
	rng := rand.New(rand.NewPCG(50, 10))
	old := simulateSpike(SpikeConfig{MinRequests: 20, Alpha: 1}, 1000, 50, func(int) float64 { return 0.01 }, rng)
	if n := count(old, 0); n < 30 {
		t.Errorf("the rate-only rule with 20 requests alarmed in only %d of 1000 windows; the simulation no longer reproduces the bug", n)
	}
}

// spikeEvery: every spikeEvery-th window has the spike's error rate, the
// rest the baseline's; spikes are further apart than the baseline is long,
// so each is judged against a clean baseline.
const spikeEvery = 40

func spikeDetection(perWindow int, base, spike float64, seed uint64) (detected, spikes int) {
	rng := rand.New(rand.NewPCG(seed, uint64(perWindow)))
	rate := func(w int) float64 {
		if w%spikeEvery == spikeEvery-1 {
			return spike
		}
		return base
	}
	got := simulateSpike(SpikeConfig{}, spikeEvery*50, perWindow, rate, rng)
	for w := spikeEvery - 1; w < len(got); w += spikeEvery {
		spikes++
		if got[w] {
			detected++
		}
	}
	return detected, spikes
}

func TestSpikeDetectsRealSpikes(t *testing.T) {
	cases := []struct {
		perWindow   int
		base, spike float64
		minDetected float64
	}{
		{50, 0.01, 0.20, 0.6},
		{200, 0.01, 0.20, 0.99},
		{1000, 0.01, 0.10, 0.99},
		{1000, 0.05, 0.20, 0.99},
	}
	for _, c := range cases {
		d, n := spikeDetection(c.perWindow, c.base, c.spike, 7)
		if float64(d)/float64(n) < c.minDetected {
			t.Errorf("%d requests/window, %.0f%% -> %.0f%%: detected %d of %d spikes, want >= %.0f%%", c.perWindow, c.base*100, c.spike*100, d, n, c.minDetected*100)
		}
	}
}

// TestSpikeRates prints the false-positive and detection rates quoted in
// docs/observer.md.
func TestSpikeRates(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("measurement; run with -v")
	}
	for _, perWindow := range []int{50, 100, 1000, 10000} {
		// At most 1e8 simulated requests per case.
		windows := min(*rateWindows, 100_000_000/perWindow)
		for _, rate := range []float64{0.01, 0.05} {
			rng := rand.New(rand.NewPCG(uint64(perWindow), uint64(rate*1000)+1))
			got := simulateSpike(SpikeConfig{}, windows, perWindow, func(int) float64 { return rate }, rng)
			rngOld := rand.New(rand.NewPCG(uint64(perWindow), uint64(rate*1000)+1))
			old := simulateSpike(SpikeConfig{MinRequests: 20, Alpha: 1}, windows, perWindow, func(int) float64 { return rate }, rngOld)
			t.Logf("false positives: %5d req/window, steady %2.0f%% errors: %d of %d windows (old rule: %d = %.2f%%)",
				perWindow, rate*100, count(got, 0), windows, count(old, 0), 100*float64(count(old, 0))/float64(windows))
		}
	}
	for _, perWindow := range []int{50, 100, 1000} {
		for _, c := range [][2]float64{{0.01, 0.05}, {0.01, 0.10}, {0.01, 0.20}, {0.05, 0.10}, {0.05, 0.20}, {0.05, 0.50}} {
			d, n := spikeDetection(perWindow, c[0], c[1], 11)
			t.Logf("detection: %5d req/window, %2.0f%% -> %2.0f%%: %d of %d spikes (%.0f%%)", perWindow, c[0]*100, c[1]*100, d, n, 100*float64(d)/float64(n))
		}
	}
}

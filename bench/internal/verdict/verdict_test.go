package verdict

import (
	"math"
	"testing"
)

func TestEstimateAndVerdict(t *testing.T) {
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-3 }
	if e := Of([]float64{0.5, 2}); !near(e.Geomean, 1) || e.Low >= 1 || e.High <= 1 {
		t.Errorf("0.5 and 2: %+v, want geometric mean 1 inside a wide interval", e)
	}
	// Two ratios 1.1 and 1.2: mean of logs 0.1388, sd 0.0615, t(1) 12.706.
	e := Of([]float64{1.1, 1.2})
	if !near(e.Geomean, math.Sqrt(1.1*1.2)) || !near(e.Low, math.Exp(0.13880-12.706*0.061526/math.Sqrt2)) {
		t.Errorf("1.1 and 1.2: %+v", e)
	}
	steady := Of([]float64{1.10, 1.12, 1.08, 1.11, 1.09})
	noisy := Of([]float64{0.9, 1.1, 0.9, 1.1, 1.3, 0.8})
	for _, c := range []struct {
		e              Estimate
		largerIsBetter bool
		want           string
	}{
		{steady, true, "ahead"},   // req/s 10 % higher in every pair
		{steady, false, "behind"}, // p99 10 % higher in every pair
		{Of([]float64{0.9, 0.92, 0.88}), true, "behind"},
		{Of([]float64{0.9, 0.92, 0.88}), false, "ahead"},
		{noisy, true, "level"},
		{noisy, false, "level"},
		{Of([]float64{1.5}), true, "too few pairs"},
		{Of([]float64{1, 0}), true, "too few pairs"}, // a zero ratio is not a measurement
	} {
		if got := c.e.Verdict(c.largerIsBetter); got != c.want {
			t.Errorf("%v larger-is-better %v: %q, want %q", c.e, c.largerIsBetter, got, c.want)
		}
	}
}

func TestMeanOf(t *testing.T) {
	// 10, 20, 30: mean 20, sd 10, t(2) 4.303, half 4.303*10/sqrt(3).
	m := MeanOf([]float64{10, 20, 30})
	half := 4.303 * 10 / math.Sqrt(3)
	if m.N != 3 || math.Abs(m.Mean-20) > 1e-9 || math.Abs(m.Low-(20-half)) > 1e-9 || math.Abs(m.High-(20+half)) > 1e-9 {
		t.Errorf("10 20 30: %+v, want 20 +- %.3f", m, half)
	}
	// Values across zero are fine (a ratio's logarithm is not).
	if m := MeanOf([]float64{-50, 150}); m.Mean != 50 || m.Low >= -50 || m.High <= 150 {
		t.Errorf("-50 150: %+v", m)
	}
	if got := MeanOf([]float64{1}).Format("%.0f"); got != "too few pairs" {
		t.Errorf("one value: %q", got)
	}
}

package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/bench/internal/verdict"
)

// TestHopsAndRatios: the hop is each mesh path minus plain of the same
// round, the cut compares the two hops of that round, and a zero
// denominator is no measurement.
func TestHopsAndRatios(t *testing.T) {
	cl := allCells()[0]
	at := func(p50 ...int) map[string]map[cell]runResult {
		m := map[string]map[cell]runResult{}
		for i, path := range []string{"plain", "sockmap", "mesh"} {
			m[path] = map[cell]runResult{cl: {p50: time.Duration(p50[i]) * time.Microsecond, requests: 1, elapsed: time.Second}}
		}
		return m
	}
	// Round 1: hops 30 and 60 us (cut 50%); round 2: 40 and 50 us (cut 20%).
	res := results{at(100, 130, 160), at(200, 240, 250)}
	on, off, cut := res.hops(cl)
	near := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Abs(x-y) < 1e-9 })
	}
	if !near(on, []float64{30, 40}) || !near(off, []float64{60, 50}) || !near(cut, []float64{50, 20}) {
		t.Errorf("hops on %v off %v cut %v, want [30 40] [60 50] [50 20]", on, off, cut)
	}
	if got := ratios([]float64{1, 2}, []float64{2, 0}); !slices.Equal(got, []float64{0.5, 0}) {
		t.Errorf("ratios: %v", got)
	}
	if v := verdict.Of(ratios([]float64{1, 2}, []float64{2, 0})).Verdict(false); v != "too few pairs" {
		t.Errorf("a zero denominator counted as a measurement: %q", v)
	}
}

// TestTailKeepsTheEnd: a child's stderr is bounded and keeps its last bytes.
func TestTailKeepsTheEnd(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"0123", "456789", "abc"} {
		if n, err := tl.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d, %v", s, n, err)
		}
	}
	if got := tl.String(); got != "56789abc" || !strings.HasSuffix(got, "abc") {
		t.Errorf("tail %q, want 56789abc", got)
	}
}

package main

import (
	"io"
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

// TestCutOf: the cut is a ratio of the mean hops, its interval comes from
// resampling rounds, and a hop that is not there gives no cut.
func TestCutOf(t *testing.T) {
	// Every round saves half the hop: the cut is 50% whatever is resampled.
	c := cutOf([]float64{10, 20, 30}, []float64{20, 40, 60})
	if math.Abs(c.cut-50) > 1e-9 || math.Abs(c.low-50) > 1e-9 || math.Abs(c.high-50) > 1e-9 || c.goal(30) != "met" {
		t.Errorf("constant cut: %+v, %s", c, c.goal(30))
	}
	// A ratio of means, not a mean of ratios: (1+50)/(2+60) = 0.82, where
	// the per-round ratios 0.5 and 0.83 average 0.67.
	if c := cutOf([]float64{1, 50}, []float64{2, 60}); math.Abs(c.cut-100*(1-51.0/62)) > 1e-9 {
		t.Errorf("ratio of means: %+v", c)
	}
	// Rounds that disagree: an interval around the point, a goal not shown.
	c = cutOf([]float64{5, 40, 10, 35, 20}, []float64{40, 45, 50, 40, 45})
	if !(c.low < c.cut && c.cut < c.high) || c.goal(30) != "not shown (the interval spans it)" {
		t.Errorf("noisy: %v, %s", c, c.goal(30))
	}
	if c := cutOf([]float64{30, 30}, []float64{29, 31}); c.goal(30) != "missed" {
		t.Errorf("no cut: %v, %s", c, c.goal(30))
	}
	if c := cutOf([]float64{1, 2}, []float64{-5, 1}); c.rounds != 0 || !strings.HasPrefix(c.goal(30), "not measurable") {
		t.Errorf("no hop without sockmap: %+v, %s", c, c.goal(30))
	}
}

// TestPickCells: -cells keeps allCells' order whatever the list's, and
// refuses a name it does not know.
func TestPickCells(t *testing.T) {
	got, err := pickCells("new64,ka1")
	if err != nil {
		t.Fatal(err)
	}
	all := allCells()
	if want := []cell{all[0], all[3]}; !slices.Equal(got, want) {
		t.Errorf("pickCells(new64,ka1) = %v, want %v", got, want)
	}
	if _, err := pickCells("ka1,new2"); err == nil {
		t.Error("pickCells(ka1,new2): want an error for new2")
	}
}

// TestOtherAgentPaths: mesh-b and sockmap-b are mesh and sockmap with
// -agent-bin's agent, and are refused without it.
func TestOtherAgentPaths(t *testing.T) {
	specs := pathSpecs()
	for _, p := range []string{"mesh", "sockmap"} {
		a, b := specs[p], specs[p+"-b"]
		if !b.otherAgent || a.otherAgent {
			t.Errorf("%s-b: otherAgent %v, %s: %v", p, b.otherAgent, p, a.otherAgent)
		}
		b.otherAgent = false
		if a != b {
			t.Errorf("%s-b differs from %s beyond the agent: %+v, %+v", p, p, b, a)
		}
	}
	if err := runBench([]string{"-paths", "plain,mesh-b"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-agent-bin") {
		t.Errorf("mesh-b without -agent-bin: %v, want an error naming -agent-bin", err)
	}
}

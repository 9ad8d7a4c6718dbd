package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEstimateAndVerdict(t *testing.T) {
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-3 }
	if e := estimateOf([]float64{0.5, 2}); !near(e.Geomean, 1) || e.Low >= 1 || e.High <= 1 {
		t.Errorf("0.5 and 2: %+v, want geometric mean 1 inside a wide interval", e)
	}
	// Two ratios 1.1 and 1.2: mean of logs 0.1388, sd 0.0615, t(1) 12.706.
	e := estimateOf([]float64{1.1, 1.2})
	if !near(e.Geomean, math.Sqrt(1.1*1.2)) || !near(e.Low, math.Exp(0.13880-12.706*0.061526/math.Sqrt2)) {
		t.Errorf("1.1 and 1.2: %+v", e)
	}
	steady := estimateOf([]float64{1.10, 1.12, 1.08, 1.11, 1.09})
	noisy := estimateOf([]float64{0.9, 1.1, 0.9, 1.1, 1.3, 0.8})
	for _, c := range []struct {
		e              estimate
		largerIsBetter bool
		want           string
	}{
		{steady, true, "ahead"},   // req/s 10 % higher in every pair
		{steady, false, "behind"}, // p99 10 % higher in every pair
		{estimateOf([]float64{0.9, 0.92, 0.88}), true, "behind"},
		{estimateOf([]float64{0.9, 0.92, 0.88}), false, "ahead"},
		{noisy, true, "level"},
		{noisy, false, "level"},
		{estimateOf([]float64{1.5}), true, "too few pairs"},
		{estimateOf([]float64{1, 0}), true, "too few pairs"}, // a zero ratio is not a measurement
	} {
		if got := c.e.verdict(c.largerIsBetter); got != c.want {
			t.Errorf("%v larger-is-better %v: %q, want %q", c.e, c.largerIsBetter, got, c.want)
		}
	}
}

// TestComparePoolsRuns: runs from two files pair within their own file only,
// although both number their repeats from 0.
func TestComparePoolsRuns(t *testing.T) {
	c := headlineCell.name()
	dir := t.TempDir()
	write := func(name string, rautaRPS, nginxRPS []float64) string {
		r := &report{Cells: []string{c}, Contenders: []*contender{{Name: "rauta"}, {Name: "nginx"}}}
		for i := range rautaRPS {
			r.add(sample{Contender: "rauta", Cell: c, Repeat: i, result: result{RPS: rautaRPS[i], P99ms: 1, Requests: 1}})
			r.add(sample{Contender: "nginx", Cell: c, Repeat: i, result: result{RPS: nginxRPS[i], P99ms: 1, Requests: 1}})
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Paired within each file, RAUTA is 10 % ahead every time; paired
	// across files (repeat 0 with repeat 0) it would look 45 % behind
	// or 120 % ahead.
	a := write("a.json", []float64{110, 220}, []float64{100, 200})
	b := write("b.json", []float64{1100, 2200, 3300}, []float64{1000, 2000, 3000})
	out, err := compare([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "median [least, greatest] of 5: req/s 1.10 [1.10, 1.10]") || !strings.Contains(out, "req/s 1.100 (95% CI 1.100-1.100) ahead") {
		t.Errorf("pooled output:\n%s", out)
	}
	if _, err := compare([]string{filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("a missing file gave no error")
	}
}

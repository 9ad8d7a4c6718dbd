package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

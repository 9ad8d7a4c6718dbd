package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// results maps "pkg.BenchmarkName/sub" to every run's metrics by unit
// ("ns/op", "B/op", "allocs/op", custom units from b.ReportMetric).
type results map[string][]map[string]float64

// parse reads `go test -bench` output. The "-N" GOMAXPROCS suffix is
// dropped so names are the same on every machine.
func (r results) parse(pkg, out string) error {
	found := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		if iters, err := strconv.ParseFloat(f[1], 64); err == nil {
			m["iterations"] = iters
		} else {
			return fmt.Errorf("parse %q: iterations %q", line, f[1])
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("parse %q: value %q", line, f[i])
			}
			m[f[i+1]] = v
		}
		key := pkg + "." + name
		r[key] = append(r[key], m)
		found++
	}
	if found == 0 {
		return fmt.Errorf("%s: no benchmark lines in the output", pkg)
	}
	return nil
}

// get is the median of unit over the runs of key; ok is false when absent.
func (r results) get(key, unit string) (float64, bool) {
	var v []float64
	for _, m := range r[key] {
		if x, ok := m[unit]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2, true
	}
	return v[len(v)/2], true
}

func (r results) medians() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for key, runs := range r {
		out[key] = map[string]float64{}
		for unit := range runs[0] {
			out[key][unit], _ = r.get(key, unit)
		}
	}
	return out
}

// cell formats one value; "-" when the benchmark did not report it.
func (r results) cell(key, unit string, scale float64, format string) string {
	v, ok := r.get(key, unit)
	if !ok {
		return "-"
	}
	return fmt.Sprintf(format, v*scale)
}

func (r results) tables() string {
	var b strings.Builder
	b.WriteString("\nScale: HTTPRoutes through translate and router.Compile (bench/routegen)\n")
	fmt.Fprintf(&b, "%-8s %9s %13s %15s %11s %14s %14s %13s %10s\n", "routes", "IR routes", "translate ms", "translate MiB/op", "compile ms",
		"data-plane MiB", "lookup ns/req", "router ns/req", "allocs/req")
	for _, n := range []string{"10", "1000", "10000"} {
		tr, co := "translate.BenchmarkTranslateRoutes/routes="+n, "router.BenchmarkCompileRoutes/routes="+n
		lk, rp := "router.BenchmarkLookupRoutes/routes="+n, "router.BenchmarkRequestPathRoutes/routes="+n
		fmt.Fprintf(&b, "%-8s %9s %13s %15s %11s %14s %14s %13s %10s\n", n,
			r.cell(co, "ir-routes", 1, "%.0f"),
			r.cell(tr, "ns/op", 1e-6, "%.2f"), r.cell(tr, "B/op", 1.0/(1<<20), "%.1f"),
			r.cell(co, "ns/op", 1e-6, "%.2f"), r.cell(co, "heap-MiB", 1, "%.2f"),
			r.cell(lk, "ns/op", 1, "%.0f"), r.cell(rp, "ns/op", 1, "%.0f"), r.cell(rp, "allocs/op", 1, "%.0f"))
	}
	b.WriteString("\nMaglev table build (internal/lb, table size 65537 or 100 slots per endpoint)\n")
	fmt.Fprintf(&b, "%-9s %10s %10s %10s\n", "backends", "build ms", "KiB/op", "allocs/op")
	for _, n := range []string{"3", "100", "1000"} {
		k := "lb.BenchmarkMaglevBuild/" + n
		fmt.Fprintf(&b, "%-9s %10s %10s %10s\n", n, r.cell(k, "ns/op", 1e-6, "%.2f"), r.cell(k, "B/op", 1.0/1024, "%.0f"), r.cell(k, "allocs/op", 1, "%.0f"))
	}
	b.WriteString("\nHot paths (per request)\n")
	fmt.Fprintf(&b, "%-44s %9s %7s %10s\n", "benchmark", "ns/op", "B/op", "allocs/op")
	var hot []string
	for k := range r {
		if !strings.Contains(k, "Routes") && !strings.Contains(k, "MaglevBuild") {
			hot = append(hot, k)
		}
	}
	slices.Sort(hot)
	for _, k := range hot {
		fmt.Fprintf(&b, "%-44s %9s %7s %10s\n", k, r.cell(k, "ns/op", 1, "%.1f"), r.cell(k, "B/op", 1, "%.0f"), r.cell(k, "allocs/op", 1, "%.0f"))
	}
	return b.String()
}

package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/false-systems/rauta/bench/internal/verdict"
)

func us(d time.Duration) string { return fmt.Sprintf("%.0f us", float64(d.Nanoseconds())/1e3) }

func printRun(out io.Writer, round int, path string, cl cell, r runResult) {
	proc, soft := r.cpuPerRequest()
	fmt.Fprintf(out, "round %d %-9s %-18v p50 %-7s p99 %-7s %6.0f req/s  CPU/req %4.0f us (processes %.0f + softirq %.0f)",
		round, path, cl, us(r.p50), us(r.p99), r.rps(), proc+soft, proc, soft)
	fmt.Fprint(out, "\n    CPU/req by cgroup:")
	for _, k := range slices.Sorted(maps.Keys(r.parts)) {
		if v := float64(r.parts[k].Nanoseconds()) / 1e3 / float64(r.requests); v >= 0.5 {
			fmt.Fprintf(out, " %s %.0f us", k, v)
		}
	}
	if len(r.bpf) > 0 {
		var total time.Duration
		for _, p := range r.bpf {
			total += p.runtime
		}
		fmt.Fprintf(out, "; agent's BPF %.1f us/req:", float64(total.Nanoseconds())/1e3/float64(r.requests))
		for _, k := range slices.Sorted(maps.Keys(r.bpf)) {
			p := r.bpf[k]
			fmt.Fprintf(out, " %s %.1f runs x %.0f ns", k, float64(p.runs)/float64(r.requests), float64(p.runtime.Nanoseconds())/float64(p.runs))
		}
	}
	if r.sockmap != nil {
		fmt.Fprint(out, "  sockmap")
		for _, k := range slices.Sorted(maps.Keys(r.sockmap)) {
			fmt.Fprintf(out, " %s %.0f", k, r.sockmap[k])
		}
	}
	fmt.Fprintln(out)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 1:
		return s[len(s)/2]
	default:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

// series is one figure of one path and cell over the rounds.
func (res results) series(path string, cl cell, f func(runResult) float64) []float64 {
	var out []float64
	for _, round := range res {
		if r, ok := round[path][cl]; ok {
			out = append(out, f(r))
		}
	}
	return out
}

func p50us(r runResult) float64 { return float64(r.p50.Nanoseconds()) / 1e3 }
func p99us(r runResult) float64 { return float64(r.p99.Nanoseconds()) / 1e3 }

// agentUs is the agent's CPU per request (its cgroup), in microseconds.
func agentUs(r runResult) float64 {
	return float64(r.parts["agent"].Nanoseconds()) / 1e3 / float64(r.requests)
}

func cpuUs(r runResult) float64 { p, s := r.cpuPerRequest(); return p + s }
func procUs(r runResult) float64 {
	p, _ := r.cpuPerRequest()
	return p
}

// ratios divides a's figure by b's, round by round (the pairs).
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if b[i] == 0 {
			out = append(out, 0) // not a measurement: the estimate says "too few"
			continue
		}
		out = append(out, a[i]/b[i])
	}
	return out
}

func spread(xs []float64, format string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(format+" ("+format+" to "+format+")", median(xs), slices.Min(xs), slices.Max(xs))
}

// report prints the medians per cell and path and the paired comparisons
// the goals are about.
func report(out io.Writer, c config, res results) {
	fmt.Fprintf(out, "\nmedians over %d rounds (CPU per request: every process on the path + the machine's softirq time, per request)\n\n", len(res))
	fmt.Fprintln(out, "| cell | path | p50 | p99 | req/s | CPU/req (processes + softirq) |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	for _, cl := range c.cells {
		for _, path := range c.paths {
			p50 := median(res.series(path, cl, p50us))
			p99 := median(res.series(path, cl, p99us))
			rps := median(res.series(path, cl, runResult.rps))
			proc := median(res.series(path, cl, procUs))
			cpu := median(res.series(path, cl, cpuUs))
			fmt.Fprintf(out, "| %v | %s | %.0f us | %.0f us | %.0f | %.0f us (%.0f + %.0f) |\n", cl, path, p50, p99, rps, cpu, proc, cpu-proc)
		}
	}
	has := func(p string) bool { return slices.Contains(c.paths, p) }
	fmt.Fprintln(out)
	for _, cl := range c.cells {
		var lines []string
		if has("plain") && has("sockmap") && has("mesh") {
			hopS, hopM, cut := res.hops(cl)
			hc := cutOf(hopS, hopM)
			lines = append(lines,
				fmt.Sprintf("p50 hop over plain: sockmap %s, mesh %s", spread(hopS, "%.0f us"), spread(hopM, "%.0f us")),
				fmt.Sprintf("sockmap's cut of the hop: 1 - mean hop on / mean hop off %s; goal (>= 30%%) %s; per round %s",
					hc, hc.goal(30), spread(cut, "%+.0f%%")))
		}
		if has("sockmap") && has("mesh") {
			r := verdict.Of(ratios(res.series("sockmap", cl, p50us), res.series("mesh", cl, p50us)))
			rc := verdict.Of(ratios(res.series("sockmap", cl, cpuUs), res.series("mesh", cl, cpuUs)))
			lines = append(lines, fmt.Sprintf("sockmap / mesh: p50 %s %s; CPU/req %s %s", r, r.Verdict(false), rc, rc.Verdict(false)))
		}
		for _, m := range []string{"sockmap", "mesh"} {
			if has(m) && has(m+"-b") {
				rp := verdict.Of(ratios(res.series(m+"-b", cl, p50us), res.series(m, cl, p50us)))
				rc := verdict.Of(ratios(res.series(m+"-b", cl, cpuUs), res.series(m, cl, cpuUs)))
				ra := verdict.Of(ratios(res.series(m+"-b", cl, agentUs), res.series(m, cl, agentUs)))
				lines = append(lines, fmt.Sprintf("%s-b / %s (-agent-bin's agent / this one's): p50 %s %s; CPU/req %s %s; agent CPU/req %s %s",
					m, m, rp, rp.Verdict(false), rc, rc.Verdict(false), ra, ra.Verdict(false)))
			}
			if has(m) && has("sidecar") {
				rc := verdict.Of(ratios(res.series(m, cl, cpuUs), res.series("sidecar", cl, cpuUs)))
				rp := verdict.Of(ratios(res.series(m, cl, p50us), res.series("sidecar", cl, p50us)))
				lines = append(lines, fmt.Sprintf("%s / sidecar: CPU/req %s %s; p50 %s %s (goal: CPU/req below the sidecar's, \"ahead\")",
					m, rc, rc.Verdict(false), rp, rp.Verdict(false)))
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(out, "%v:\n  %s\n", cl, strings.Join(lines, "\n  "))
		}
	}
}

// hops are the mesh hop's added p50 latency (the path minus plain, per
// round) with sockmap on and off, and sockmap's cut of it in percent:
// 1 - on/off, per round.
func (res results) hops(cl cell) (on, off, cut []float64) {
	plain := res.series("plain", cl, p50us)
	on = diff(res.series("sockmap", cl, p50us), plain)
	off = diff(res.series("mesh", cl, p50us), plain)
	for i := range min(len(on), len(off)) {
		cut = append(cut, 100*(1-on[i]/off[i]))
	}
	return on, off, cut
}

func diff(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]-b[i])
	}
	return out
}

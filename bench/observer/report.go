package main

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

func printRun(round int, r runResult) {
	label := "baseline"
	if r.obs != nil {
		label = "observed"
	}
	fmt.Printf("round %d %-8s %9.0f req/s  p99 %-9v", round, label, r.rps, r.p99)
	if r.obs != nil {
		fmt.Printf("\n    kernel events %d (%.0f/s), ring drops %d, exchanges %d (%.0f/s) of %d requests, userspace CPU %.1f%%, BPF %.0f ns/packet over %d packets in the sampled window (%.1f%% of a CPU)",
			r.obs.kernelEvents, r.obs.eventsPerSec, r.obs.ringDropped, r.obs.exchanges, r.obs.exchangesPerSec, int64(r.requests), r.obs.cpuPercent,
			r.kernelNsPerRun, r.kernelRuns, r.kernelCPUPercent)
		for _, name := range slices.Sorted(maps.Keys(r.kernelProgs)) {
			p := r.kernelProgs[name]
			fmt.Printf("; %s %.0f ns x %d", name, p.nsPerRun(), p.runs)
		}
		if r.obs.checked > 0 {
			fmt.Printf("\n    pairing: %d exchanges checked, %d mis-paired, %d not judged", r.obs.checked, r.obs.misPaired, r.obs.unjudged)
		}
	}
	fmt.Printf("\n    %v\n", r.cpu)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(ratio float64) string { return fmt.Sprintf("%+.2f%%", (ratio-1)*100) }

// printSummary prints the pairs side by side, the medians of each side,
// and the median of the per-pair ratios (each pair ran back to back, so
// its ratio is less exposed to drift than a ratio of medians).
func printSummary(title string, pairs []pairResult) {
	fmt.Printf("\n%s\n", title)
	fmt.Printf("| pair | first | baseline req/s | observed req/s | ratio | baseline p99 | observed p99 | p99 ratio |\n|---|---|---|---|---|---|---|---|\n")
	var bR, oR, bP, oP, rR, rP, events, exchPerSec, cpu, bpfNs, bpfCPU []float64
	var drops, exch, req, evicted, missing, checked, misPaired, unjudged int64
	for i, p := range pairs {
		first := "baseline"
		if p.observedFirst {
			first = "observed"
		}
		rr, rp := p.obs.rps/p.base.rps, float64(p.obs.p99)/float64(p.base.p99)
		fmt.Printf("| %d | %s | %.0f | %.0f | %s | %v | %v | %s |\n", i+1, first, p.base.rps, p.obs.rps, pct(rr), p.base.p99, p.obs.p99, pct(rp))
		bR, oR, rR = append(bR, p.base.rps), append(oR, p.obs.rps), append(rR, rr)
		bP, oP, rP = append(bP, float64(p.base.p99)), append(oP, float64(p.obs.p99)), append(rP, rp)
		s := p.obs.obs
		events, exchPerSec, cpu = append(events, s.eventsPerSec), append(exchPerSec, s.exchangesPerSec), append(cpu, s.cpuPercent)
		bpfNs, bpfCPU = append(bpfNs, p.obs.kernelNsPerRun), append(bpfCPU, p.obs.kernelCPUPercent)
		drops += s.ringDropped
		checked, misPaired, unjudged = checked+s.checked, misPaired+s.misPaired, unjudged+s.unjudged
		evicted += s.evictedPending
		exch += s.exchanges
		req += int64(p.obs.requests)
		// wrk counts completed requests; the observer may count up to
		// the in-flight ones more, never fewer.
		missing += max(0, int64(p.obs.requests)-s.exchanges)
	}
	printCPU(pairs)
	d := func(ns float64) time.Duration { return time.Duration(ns).Round(time.Microsecond) }
	fmt.Printf("medians: baseline %.0f req/s p99 %v | observed %.0f req/s p99 %v\n", median(bR), d(median(bP)), median(oR), d(median(oP)))
	fmt.Printf("throughput change: %s (median of per-pair ratios; range %s..%s; ratio of medians %s)\n",
		pct(median(rR)), pct(slices.Min(rR)), pct(slices.Max(rR)), pct(median(oR)/median(bR)))
	fmt.Printf("p99 change: %s (median of per-pair ratios; range %s..%s; ratio of medians %s)\n",
		pct(median(rP)), pct(slices.Min(rP)), pct(slices.Max(rP)), pct(median(oP)/median(bP)))
	fmt.Printf("lost events: ring drops %d, requests lost to evictions %d, requests without exchange %d; exchanges %d for %d wrk requests\n",
		drops, evicted, missing, exch, req)
	if checked > 0 {
		fmt.Printf("pairing (-check-pairing, the observer also encoding every exchange as JSON): %d exchanges checked, %d mis-paired, %d not judged\n", checked, misPaired, unjudged)
	}
	fmt.Printf("observer cost (medians): kernel events %.0f/s, exchanges %.0f/s, userspace %.1f%% of a CPU, BPF %.0f ns/packet = %.1f%% of a CPU\n",
		median(events), median(exchPerSec), median(cpu), median(bpfNs), median(bpfCPU))
}

// printCPU prints the median CPU use of each side: which processes and
// which CPUs carry the observer's cost.
func printCPU(pairs []pairResult) {
	side := func(get func(pairResult) cpuUse) string {
		var wrk, server, self, other []float64
		var busy, soft [][]float64
		for _, p := range pairs {
			u := get(p)
			wrk, server, self, other = append(wrk, u.wrk), append(server, u.server), append(self, u.self), append(other, u.other)
			for i := range u.busy {
				if len(busy) <= i {
					busy, soft = append(busy, nil), append(soft, nil)
				}
				busy[i], soft[i] = append(busy[i], u.busy[i]), append(soft[i], u.softirq[i])
			}
		}
		out := fmt.Sprintf("wrk %.1f%%, server %.1f%%, this process %.1f%%, other %.1f%%", median(wrk), median(server), median(self), median(other))
		for i := range busy {
			out += fmt.Sprintf("; cpu%d busy %.1f%% (softirq %.1f%%)", i, median(busy[i]), median(soft[i]))
		}
		return out
	}
	fmt.Printf("CPU (medians, %% of one CPU): baseline: %s\n", side(func(p pairResult) cpuUse { return p.base.cpu }))
	fmt.Printf("                              observed: %s\n", side(func(p pairResult) cpuUse { return p.obs.cpu }))
}

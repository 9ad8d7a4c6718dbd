package main

import (
	"fmt"
	"strings"
)

// idlePaired compares RAUTA's memory per idle connection with another
// contender's in the same repeat, as pairs() does for requests.
type idlePaired struct {
	Cell  string `json:"cell"`
	Other string `json:"other"`
	Pairs int    `json:"pairs"`
	// KiB holds the median, least and greatest ratio of KiB per connection.
	KiB    [3]float64 `json:"kib_per_conn_ratio"`
	KiBEst estimate   `json:"kib_per_conn_estimate"`
}

func (r *report) addIdle(s idleSample) { r.IdleSamples = append(r.IdleSamples, s) }

func (r *report) idlePairs(a string) []idlePaired {
	type key struct {
		name, cell string
		repeat     int
	}
	valid := map[key]idleSample{}
	for _, s := range r.IdleSamples {
		if s.Error == "" && s.KiBPerConn > 0 {
			valid[key{s.Contender, s.Cell, s.Repeat}] = s
		}
	}
	var out []idlePaired
	for _, cellName := range r.IdleCells {
		for _, ct := range r.Contenders {
			if ct.Name == a {
				continue
			}
			var kib []float64
			for k, x := range valid {
				if k.name != a || k.cell != cellName {
					continue
				}
				if y, ok := valid[key{ct.Name, cellName, k.repeat}]; ok {
					kib = append(kib, x.KiBPerConn/y.KiBPerConn)
				}
			}
			if len(kib) > 0 {
				out = append(out, idlePaired{Cell: cellName, Other: ct.Name, Pairs: len(kib), KiB: spread(kib), KiBEst: estimateOf(kib)})
			}
		}
	}
	return out
}

// idleTable prints the idle cells: medians over valid runs of RSS before
// and after, KiB per connection and CPU while idle, then RAUTA's ratios.
func (r *report) idleTable(b *strings.Builder) {
	for _, cellName := range r.IdleCells {
		fmt.Fprintf(b, "\n%s\n  (keep-alive HTTP/1.1 connections that each made one GET /1k, then held idle; RSS is VmRSS of the proxy's processes)\n", cellName)
		fmt.Fprintf(b, "%-9s %12s %11s %9s %12s %12s %5s\n", "contender", "RSS before", "RSS after", "KiB/conn", "idle CPU ms", "open s", "runs")
		for _, ct := range r.Contenders {
			var before, after, kib, cpu, open []float64
			runs, valid := 0, 0
			var why string
			for _, s := range r.IdleSamples {
				if s.Contender != ct.Name || s.Cell != cellName {
					continue
				}
				runs++
				if s.Error != "" {
					why = s.Error
					continue
				}
				valid++
				before, after = append(before, float64(s.RSSBefore)/(1<<20)), append(after, float64(s.RSSAfter)/(1<<20))
				kib, open = append(kib, s.KiBPerConn), append(open, s.OpenSeconds)
				cpu = append(cpu, 1e3*s.IdleCPU)
			}
			switch {
			case runs == 0:
				continue
			case valid == 0:
				fmt.Fprintf(b, "%-9s NO RESULT: every run invalid: %s\n", ct.Name, oneLine(why, 300))
				continue
			}
			fmt.Fprintf(b, "%-9s %8.1f MiB %7.1f MiB %9.2f %12.0f %12.1f %2d/%d\n", ct.Name, med(before), med(after), med(kib), med(cpu), med(open), valid, runs)
		}
		for _, s := range r.IdleSamples {
			if s.Cell == cellName && s.IdleSeconds > 0 {
				fmt.Fprintf(b, "  idle CPU ms is over %.0f s of holding the connections\n", s.IdleSeconds)
				break
			}
		}
		for _, p := range r.IdlePaired {
			if p.Cell != cellName {
				continue
			}
			fmt.Fprintf(b, "  rauta / %-8s same repeat, median [least, greatest] of %d: KiB per connection %s\n", p.Other, p.Pairs, ratios(p.KiB))
			fmt.Fprintf(b, "  %-16s geometric mean: KiB per connection %s %s\n", "", p.KiBEst, p.KiBEst.Verdict(false))
		}
	}
}

// extraLines adds what a client cell measured beyond the table's columns:
// the share of resumed handshakes, or the RSS with the routes loaded.
func (r *report) extraLines(b *strings.Builder, cellName string) {
	var parts []string
	for _, ct := range r.Contenders {
		var resumed, rss, pss, ready []float64
		for _, s := range r.Samples {
			if s.Contender != ct.Name || s.Cell != cellName || s.Error != "" || s.Requests == 0 {
				continue
			}
			if strings.Contains(cellName, "resumed") {
				resumed = append(resumed, 100*float64(s.Resumed)/float64(s.Requests))
			}
			if s.RSS > 0 {
				rss, ready = append(rss, float64(s.RSS)/(1<<20)), append(ready, s.ReadySeconds)
				pss = append(pss, float64(s.PSS)/(1<<20))
			}
		}
		switch {
		case len(resumed) > 0:
			parts = append(parts, fmt.Sprintf("%s %.0f%%", ct.Name, med(resumed)))
		case len(rss) > 0:
			parts = append(parts, fmt.Sprintf("%s %.1f/%.1f MiB (%.1f s)", ct.Name, med(rss), med(pss), med(ready)))
		}
	}
	if len(parts) == 0 {
		return
	}
	label := "handshakes resumed"
	if !strings.Contains(cellName, "resumed") {
		label = "RSS/PSS with the routes loaded, before the run (first answer after start)"
	}
	fmt.Fprintf(b, "  %s: %s\n", label, strings.Join(parts, ", "))
}

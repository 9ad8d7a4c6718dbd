package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// cell is one load shape: protocol, connections (h1) or streams (h2), and
// the file asked for or, for an upload, the size of the body sent.
type cell struct {
	Proto string // "h1": wrk, HTTP/1.1 keep-alive; "h2": h2load, HTTP/2 over TLS
	Conns int    // wrk connections, or h2load streams on one connection
	Body  string // "1k" or "64k": the file a GET asks for
	// Upload is the size of the body an h1 cell POSTs to uploadPath (0:
	// a GET of Body); the backend answers uploadAnswer once it has read it.
	Upload int
}

func (c cell) name() string {
	switch {
	case c.Proto == "h2":
		return fmt.Sprintf("h2 m=%d %s", c.Conns, c.Body)
	case c.Upload > 0:
		return fmt.Sprintf("h1 upload %dk c=%d", c.Upload/1000, c.Conns)
	}
	return fmt.Sprintf("h1 c=%d %s", c.Conns, c.Body)
}

// path is what the cell's requests ask for.
func (c cell) path() string {
	if c.Upload > 0 {
		return uploadPath
	}
	return "/" + c.Body
}

// answerSize is the body every answer must carry at least.
func (c cell) answerSize(bodies map[string][]byte) int {
	if c.Upload > 0 {
		return len(uploadAnswer)
	}
	return len(bodies[c.Body])
}

// scriptFile is the wrk Lua file of an h1 cell in the temp dir: the
// summary alone, or with the POST of an upload (uploadScript).
func (c cell) scriptFile() string {
	if c.Upload > 0 {
		return fmt.Sprintf("upload-%d.lua", c.Upload)
	}
	return "summary.lua"
}

// caption says what one request of an upload cell is; GETs need none.
func (c cell) caption() string {
	if c.Upload == 0 {
		return ""
	}
	return fmt.Sprintf("one op = POST %s with a %d-byte body over keep-alive, answered %q by the backend once it has read the whole body", uploadPath, c.Upload, uploadAnswer)
}

var defaultCells = []cell{
	{Proto: "h1", Conns: 1, Body: "1k"}, {Proto: "h1", Conns: 64, Body: "1k"}, {Proto: "h1", Conns: 256, Body: "1k"},
	{Proto: "h1", Conns: 1, Body: "64k"}, {Proto: "h1", Conns: 64, Body: "64k"}, {Proto: "h1", Conns: 256, Body: "64k"},
	{Proto: "h2", Conns: 64, Body: "1k"}, {Proto: "h2", Conns: 64, Body: "64k"},
	uploadCell,
}

// headlineCell is the cell the lead over nginx and HAProxy is judged on
// (HTTP/1.1, 64 connections, 1 KiB); -headline-repeats measures it more
// often than the others.
var headlineCell = cell{Proto: "h1", Conns: 64, Body: "1k"}

// quickCells keep one cell of each kind: small and large answers, HTTP/2,
// an upload.
var quickCells = []cell{headlineCell, {Proto: "h1", Conns: 64, Body: "64k"}, {Proto: "h2", Conns: 64, Body: "1k"}, uploadCell}

// sample is one measured run.
type sample struct {
	Contender string `json:"contender"`
	Cell      string `json:"cell"`
	Repeat    int    `json:"repeat"`
	result
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSS    uint64  `json:"peak_rss_bytes"`
	// RSSReset is false when VmHWM could not be reset (not root): PeakRSS is
	// then the peak since the contender started.
	RSSReset bool `json:"rss_reset"`
	// Machine is how busy both CPUs were during the run, by anyone.
	Machine cpuUse `json:"machine"`
	Error   string `json:"error,omitempty"`
	// Resumed counts handshakes that resumed a session (TLS cells).
	Resumed uint64 `json:"resumed,omitempty"`
	// RSS is the group's VmRSS just before the run, and ReadySeconds the
	// time from start to the first right answer (routes cell).
	RSS          uint64  `json:"rss_before_bytes,omitempty"`
	PSS          uint64  `json:"pss_before_bytes,omitempty"`
	ReadySeconds float64 `json:"ready_seconds,omitempty"`
}

// failure is a contender that did not start or answered wrongly.
type failure struct {
	Contender string `json:"contender"`
	Repeat    int    `json:"repeat"`
	Stage     string `json:"stage"`
	Error     string `json:"error"`
}

// median is the summary of one contender in one cell over its valid runs.
type median struct {
	Contender  string  `json:"contender"`
	Cell       string  `json:"cell"`
	Valid      int     `json:"valid_runs"`
	Runs       int     `json:"runs"`
	RPS        float64 `json:"rps"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPerReq  float64 `json:"cpu_us_per_request"`
	PeakRSS    float64 `json:"peak_rss_bytes"`
	LoadBusy   float64 `json:"load_cpu_busy_pct"`
	Steal      float64 `json:"steal_pct"`
	VsBest     float64 `json:"rps_vs_best"`
	VsDirect   float64 `json:"rps_vs_direct,omitempty"`
}

type report struct {
	Started    time.Time    `json:"started"`
	Finished   time.Time    `json:"finished"`
	LoadBefore string       `json:"loadavg_before"`
	LoadAfter  string       `json:"loadavg_after"`
	Host       hostInfo     `json:"host"`
	Repeats    int          `json:"repeats"`
	Headline   int          `json:"headline_repeats"`
	Duration   string       `json:"duration"`
	Cells      []string     `json:"cells"`
	Backend    string       `json:"backend_command"`
	Contenders []*contender `json:"contenders"`
	Failures   []failure    `json:"failures"`
	Samples    []sample     `json:"samples"`
	Medians    []median     `json:"medians"`
	Paired     []paired     `json:"paired"`
	// Captions say what one operation of a cell is (client cells), and
	// Groups which group a cell of issue 18 belongs to.
	Captions map[string]string `json:"captions,omitempty"`
	Groups   map[string]string `json:"groups,omitempty"`
	// IdleCells, IdleSamples and IdlePaired are the idle-connection cells,
	// which measure memory per connection instead of requests.
	IdleCells   []string     `json:"idle_cells,omitempty"`
	IdleSamples []idleSample `json:"idle_samples,omitempty"`
	IdlePaired  []idlePaired `json:"idle_paired,omitempty"`
}

// paired compares RAUTA with one other contender run by run: each ratio is
// RAUTA's number over the other's in the same repeat, where both are
// valid. Contenders of one repeat run back to back, so the slow drift of a
// shared machine cancels in a ratio; the median of the ratios is steadier
// than the ratio of the medians.
type paired struct {
	Cell  string `json:"cell"`
	Other string `json:"other"`
	Pairs int    `json:"pairs"`
	// RPS, P99 and CPUPerReq hold the median, the least and the greatest
	// ratio, in that order.
	RPS       [3]float64 `json:"rps_ratio"`
	P99       [3]float64 `json:"p99_ratio"`
	CPUPerReq [3]float64 `json:"cpu_per_request_ratio,omitempty"`
	// RPSEst, P99Est and CPUEst are the geometric means of the same ratios
	// with their 95 % confidence intervals (verdict.go).
	RPSEst estimate `json:"rps_estimate"`
	P99Est estimate `json:"p99_estimate"`
	CPUEst estimate `json:"cpu_per_request_estimate"`
}

type hostInfo struct {
	CPUs     int               `json:"cpus"`
	Kernel   string            `json:"kernel"`
	Versions map[string]string `json:"versions"`
}

func newReport(o options, cells []cell, xcells []xcell) *report {
	r := &report{Started: time.Now().UTC(), LoadBefore: loadavg(), Repeats: o.repeats, Headline: o.headline, Duration: o.duration.String(),
		Captions: map[string]string{}, Groups: map[string]string{}}
	for _, c := range cells {
		r.Cells = append(r.Cells, c.name())
		if cp := c.caption(); cp != "" {
			r.Captions[c.name()] = cp
		}
	}
	for _, c := range xcells {
		if c.Group == groupIdle {
			r.IdleCells = append(r.IdleCells, c.Name)
			continue
		}
		r.Cells = append(r.Cells, c.Name)
		r.Groups[c.Name] = c.Group
		if c.Caption != "" {
			r.Captions[c.Name] = c.Caption
		}
	}
	r.Host = hostInfo{CPUs: runtime.NumCPU(), Kernel: firstLine(cmdOut("uname", "-r")), Versions: map[string]string{
		"nginx":   firstLine(cmdOut("nginx", "-v")),
		"haproxy": firstLine(cmdOut("haproxy", "-v")),
		"caddy":   firstLine(cmdOut("caddy", "version")),
		"wrk":     firstLine(cmdOut("wrk", "-v")),
		"h2load":  firstLine(cmdOut("h2load", "--version")),
		"go":      runtime.Version(),
	}}
	if o.rautaBin != "" {
		r.Host.Versions["rauta"] = firstLine(cmdOut(o.rautaBin, "version"))
	}
	if o.rautaBBin != "" {
		r.Host.Versions[rautaB] = firstLine(cmdOut(o.rautaBBin, "version"))
	}
	return r
}

func (r *report) add(s sample) { r.Samples = append(r.Samples, s) }

func (r *report) fail(name string, rep int, stage string, err error) {
	fmt.Printf("  %s FAILED (%s): %v\n", name, stage, err)
	r.Failures = append(r.Failures, failure{Contender: name, Repeat: rep, Stage: stage, Error: err.Error()})
}

// finish computes medians over valid runs and the ratios to the best and to
// direct in every cell.
func (r *report) finish() {
	r.Finished, r.LoadAfter = time.Now().UTC(), loadavg()
	r.Medians = nil
	for _, cellName := range r.Cells {
		var ms []median
		for _, ct := range r.Contenders {
			if g := r.Groups[cellName]; g != "" && !takesPart(ct.Name, g) {
				continue
			}
			m := median{Contender: ct.Name, Cell: cellName}
			var rps, p50, p99, cpu, cpuReq, rss, loadBusy, steal []float64
			for _, s := range r.Samples {
				if s.Contender != ct.Name || s.Cell != cellName {
					continue
				}
				m.Runs++
				if s.Error != "" {
					continue
				}
				m.Valid++
				rps, p50, p99 = append(rps, s.RPS), append(p50, s.P50ms), append(p99, s.P99ms)
				cpu, rss = append(cpu, s.CPUSeconds), append(rss, float64(s.PeakRSS))
				cpuReq = append(cpuReq, s.CPUSeconds/float64(s.Requests)*1e6)
				loadBusy, steal = append(loadBusy, s.Machine.LoadBusy), append(steal, s.Machine.Steal)
			}
			m.RPS, m.P50ms, m.P99ms = med(rps), med(p50), med(p99)
			m.CPUSeconds, m.CPUPerReq, m.PeakRSS = med(cpu), med(cpuReq), med(rss)
			m.LoadBusy, m.Steal = med(loadBusy), med(steal)
			ms = append(ms, m)
		}
		var best, direct float64
		for _, m := range ms {
			best = max(best, m.RPS)
			if m.Contender == "direct" {
				direct = m.RPS
			}
		}
		for i := range ms {
			if best > 0 {
				ms[i].VsBest = ms[i].RPS / best
			}
			if direct > 0 {
				ms[i].VsDirect = ms[i].RPS / direct
			}
		}
		r.Medians = append(r.Medians, ms...)
	}
	r.Paired = r.pairs("rauta")
	r.IdlePaired = r.idlePairs("rauta")
}

// pairs compares contender a with every other contender in every cell.
func (r *report) pairs(a string) []paired {
	type key struct {
		name, cell string
		repeat     int
	}
	valid := map[key]sample{}
	for _, s := range r.Samples {
		if s.Error == "" {
			valid[key{s.Contender, s.Cell, s.Repeat}] = s
		}
	}
	var out []paired
	for _, cellName := range r.Cells {
		for _, ct := range r.Contenders {
			if ct.Name == a {
				continue
			}
			var rps, p99, cpu []float64
			for k, x := range valid {
				if k.name != a || k.cell != cellName {
					continue
				}
				y, ok := valid[key{ct.Name, cellName, k.repeat}]
				if !ok || y.RPS <= 0 || y.P99ms <= 0 {
					continue
				}
				rps, p99 = append(rps, x.RPS/y.RPS), append(p99, x.P99ms/y.P99ms)
				if y.CPUSeconds > 0 && x.Requests > 0 && y.Requests > 0 {
					cpu = append(cpu, (x.CPUSeconds/float64(x.Requests))/(y.CPUSeconds/float64(y.Requests)))
				}
			}
			if len(rps) > 0 {
				out = append(out, paired{Cell: cellName, Other: ct.Name, Pairs: len(rps), RPS: spread(rps), P99: spread(p99), CPUPerReq: spread(cpu),
					RPSEst: estimateOf(rps), P99Est: estimateOf(p99), CPUEst: estimateOf(cpu)})
			}
		}
	}
	return out
}

// spread is the median, least and greatest value; zeros for none.
func spread(v []float64) [3]float64 {
	if len(v) == 0 {
		return [3]float64{}
	}
	return [3]float64{med(v), slices.Min(v), slices.Max(v)}
}

// med is the median; 0 for no values.
func med(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nmedians of %d repeat(s), %s per run; load average before %s, after %s\n", r.Repeats, r.Duration, r.LoadBefore, r.LoadAfter)
	if r.Headline > 0 {
		fmt.Fprintf(&b, "%s: %d more repeats\n", headlineCell.name(), r.Headline)
	}
	for _, cellName := range r.Cells {
		if c := r.Captions[cellName]; c != "" {
			fmt.Fprintf(&b, "\n%s\n  (%s)", cellName, c)
		} else {
			b.WriteString("\n" + cellName)
		}
		fmt.Fprintf(&b, "\n%-9s %10s %8s %8s %7s %10s %9s %8s %9s %6s %6s %5s\n",
			"contender", "req/s", "p50 ms", "p99 ms", "CPU s", "CPU us/req", "RSS MiB", "vs best", "vs direct", "load%", "steal%", "runs")
		for _, m := range r.Medians {
			if m.Cell != cellName {
				continue
			}
			if m.Valid == 0 {
				fmt.Fprintf(&b, "%-9s %s\n", m.Contender, r.why(m))
				continue
			}
			cpu, cpuReq, rss := "-", "-", "-"
			if m.Contender != "direct" {
				cpu, cpuReq, rss = fmt.Sprintf("%.2f", m.CPUSeconds), fmt.Sprintf("%.1f", m.CPUPerReq), fmt.Sprintf("%.1f", m.PeakRSS/(1<<20))
			}
			vsDirect := "-"
			if m.VsDirect > 0 {
				vsDirect = fmt.Sprintf("%.2f", m.VsDirect)
			}
			fmt.Fprintf(&b, "%-9s %10.0f %8.2f %8.2f %7s %10s %9s %8.2f %9s %6.0f %6.0f %2d/%d\n", m.Contender, m.RPS, m.P50ms, m.P99ms,
				cpu, cpuReq, rss, m.VsBest, vsDirect, m.LoadBusy, m.Steal, m.Valid, m.Runs)
		}
		r.extraLines(&b, cellName)
		r.pairedLines(&b, cellName)
	}
	r.idleTable(&b)
	if len(r.Failures) > 0 {
		b.WriteString("\nfailures:\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  %s repeat %d (%s): %s\n", f.Contender, f.Repeat+1, f.Stage, oneLine(f.Error, 600))
		}
	}
	return b.String()
}

// pairedLines writes RAUTA's paired ratios in one cell: their spread, then
// their geometric means with 95 % intervals and what those say.
func (r *report) pairedLines(b *strings.Builder, cellName string) {
	for _, p := range r.Paired {
		if p.Cell != cellName {
			continue
		}
		fmt.Fprintf(b, "  rauta / %-8s same repeat, median [least, greatest] of %d: req/s %s  p99 %s", p.Other, p.Pairs, ratios(p.RPS), ratios(p.P99))
		if p.CPUPerReq[0] > 0 {
			fmt.Fprintf(b, "  CPU per request %s", ratios(p.CPUPerReq))
		}
		fmt.Fprintf(b, "\n  %-16s geometric mean: req/s %s %s; p99 %s %s", "", p.RPSEst, p.RPSEst.Verdict(true), p.P99Est, p.P99Est.Verdict(false))
		if p.CPUEst.Geomean > 0 {
			fmt.Fprintf(b, "; CPU per request %s %s", p.CPUEst, p.CPUEst.Verdict(false))
		}
		b.WriteString("\n")
	}
}

func ratios(v [3]float64) string { return fmt.Sprintf("%.2f [%.2f, %.2f]", v[0], v[1], v[2]) }

// why explains a cell without a valid number: the contender failed to start
// or answer, or every run was invalid.
func (r *report) why(m median) string {
	for _, f := range r.Failures {
		if f.Contender == m.Contender {
			return "NO RESULT: " + f.Stage + " failed: " + oneLine(f.Error, 160)
		}
	}
	for _, s := range r.Samples {
		if s.Contender == m.Contender && s.Cell == m.Cell && s.Error != "" {
			return "NO RESULT: every run invalid: " + s.Error
		}
	}
	if m.Runs == 0 {
		return "NO RESULT: not run (interrupted)"
	}
	return "NO RESULT"
}

// problems lists what makes this run untrustworthy as a whole.
func (r *report) problems() []string {
	var out []string
	for _, f := range r.Failures {
		out = append(out, fmt.Sprintf("%s repeat %d: %s: %s", f.Contender, f.Repeat+1, f.Stage, oneLine(f.Error, 300)))
	}
	for _, s := range r.Samples {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("%s %s repeat %d: %s", s.Contender, s.Cell, s.Repeat+1, s.Error))
		}
	}
	return out
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cmdOut(argv ...string) string {
	b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil && len(b) == 0 {
		return "unavailable: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// oneLine joins the lines of s and keeps its last n bytes, where tools put
// the reason they failed.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

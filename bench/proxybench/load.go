package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is what one load run measured, before CPU and memory are added.
type result struct {
	Requests   uint64  `json:"requests"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	BodyBytes  uint64  `json:"body_bytes"` // bytes read (wrk) or DATA bytes (h2load)
	Errors     uint64  `json:"errors"`     // socket errors, timeouts, failed streams
	BadStatus  uint64  `json:"bad_status"` // responses that were not 2xx
	Command    string  `json:"command"`
	RawSummary string  `json:"-"`
}

// check says whether a run can be trusted: no errors, no bad statuses, and
// at least one full body per request (so a proxy answering short or empty
// bodies fails instead of looking fast).
func (r result) check(body int) error {
	switch {
	case r.Requests == 0:
		return fmt.Errorf("no requests completed")
	case r.Errors > 0:
		return fmt.Errorf("%d errors", r.Errors)
	case r.BadStatus > 0:
		return fmt.Errorf("%d responses were not 2xx", r.BadStatus)
	case r.BodyBytes < r.Requests*uint64(body):
		return fmt.Errorf("%d bytes for %d requests: less than the %d-byte body each", r.BodyBytes, r.Requests, body)
	}
	return nil
}

// wrkScript prints wrk's summary as one JSON line with exact numbers, so the
// harness does not parse wrk's rounded, unit-suffixed text. It defines only
// done(), which adds no per-request Lua work.
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKRESULT {"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// writeWrkScripts writes the Lua file of every wrk cell into the temp dir,
// and summary.lua, which the warm-up and the headline repeats use.
func (e *env) writeWrkScripts(cells []cell) error {
	for _, c := range append([]cell{headlineCell}, cells...) {
		if c.Proto != "h1" {
			continue
		}
		script := wrkScript
		if c.Upload > 0 {
			script = uploadScript(c.Upload)
		}
		if _, err := e.write(c.scriptFile(), script); err != nil {
			return fmt.Errorf("write wrk script: %w", err)
		}
	}
	return nil
}

type wrkSummary struct {
	DurationUS uint64 `json:"duration_us"`
	Requests   uint64 `json:"requests"`
	Bytes      uint64 `json:"bytes"`
	Connect    uint64 `json:"connect"`
	Read       uint64 `json:"read"`
	Write      uint64 `json:"write"`
	Status     uint64 `json:"status"`
	Timeout    uint64 `json:"timeout"`
	P50us      uint64 `json:"p50_us"`
	P99us      uint64 `json:"p99_us"`
}

func wrkArgv(cpu, script, url string, conns int, d time.Duration) []string {
	return []string{"taskset", "-c", cpu, "wrk", "-t1", "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d.Seconds())) + "s", "--timeout", "5s", "-s", script, url}
}

func runWrk(ctx context.Context, argv []string, d time.Duration) (result, error) {
	out, err := runTool(ctx, d+30*time.Second, argv)
	if err != nil {
		return result{}, err
	}
	r, err := parseWrk(out)
	r.Command = strings.Join(argv, " ")
	return r, err
}

// parseWrk reads the WRKRESULT line that wrkScript prints.
func parseWrk(out []byte) (result, error) {
	for _, line := range strings.Split(string(out), "\n") {
		js, ok := strings.CutPrefix(line, "WRKRESULT ")
		if !ok {
			continue
		}
		var s wrkSummary
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			return result{}, fmt.Errorf("parse wrk summary %q: %w", js, err)
		}
		if s.DurationUS == 0 {
			return result{}, fmt.Errorf("parse wrk summary %q: zero duration", js)
		}
		secs := float64(s.DurationUS) / 1e6
		return result{
			Requests: s.Requests, Seconds: secs, RPS: float64(s.Requests) / secs,
			P50ms: float64(s.P50us) / 1e3, P99ms: float64(s.P99us) / 1e3,
			BodyBytes: s.Bytes, Errors: s.Connect + s.Read + s.Write + s.Timeout, BadStatus: s.Status,
			RawSummary: js,
		}, nil
	}
	return result{}, fmt.Errorf("parse wrk output: no WRKRESULT line in %q", tail(out, 400))
}

func h2loadArgv(cpu, logFile, url string, streams int, d time.Duration) []string {
	return []string{"taskset", "-c", cpu, "h2load", "-t1", "-c1", "-m" + strconv.Itoa(streams),
		"-D", strconv.Itoa(int(d.Seconds())), "--log-file", logFile, url}
}

func runH2load(ctx context.Context, argv []string, logFile string, d time.Duration) (result, error) {
	_ = os.Remove(logFile)
	out, err := runTool(ctx, d+30*time.Second, argv)
	if err != nil {
		return result{}, err
	}
	r, err := parseH2load(out)
	r.Command = strings.Join(argv, " ")
	if err != nil {
		return r, err
	}
	f, err := os.Open(logFile)
	if err != nil {
		return r, fmt.Errorf("h2load log: %w", err)
	}
	defer f.Close()
	lat, err := parseH2loadLog(f)
	if err != nil {
		return r, err
	}
	r.P50ms, r.P99ms = percentile(lat, 50)/1e3, percentile(lat, 99)/1e3
	return r, nil
}

var (
	h2Finished = regexp.MustCompile(`finished in ([0-9.]+)(ms|s), ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2Traffic  = regexp.MustCompile(`traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers .*?\((\d+)\) data`)
)

// parseH2load reads h2load's summary text.
func parseH2load(out []byte) (result, error) {
	s := string(out)
	fin := h2Finished.FindStringSubmatch(s)
	req := h2Requests.FindStringSubmatch(s)
	st := h2Status.FindStringSubmatch(s)
	tr := h2Traffic.FindStringSubmatch(s)
	if fin == nil || req == nil || st == nil || tr == nil {
		return result{}, fmt.Errorf("parse h2load output: summary lines missing in %q", tail(out, 600))
	}
	n := func(v string) uint64 { x, _ := strconv.ParseUint(v, 10, 64); return x }
	secs, _ := strconv.ParseFloat(fin[1], 64)
	if fin[2] == "ms" {
		secs /= 1e3
	}
	rps, _ := strconv.ParseFloat(fin[3], 64)
	done, ok2xx := n(req[3]), n(st[1])
	return result{
		Requests: n(req[4]), Seconds: secs, RPS: rps,
		BodyBytes: n(tr[3]),
		Errors:    n(req[5]) + n(req[6]) + n(req[7]),
		BadStatus: done - min(done, ok2xx),
	}, nil
}

// parseH2loadLog reads the per-request log (start µs, status, duration µs,
// tab separated) and returns the durations of 2xx responses, sorted.
func parseH2loadLog(f *os.File) ([]float64, error) {
	var lat []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) < 3 {
			continue
		}
		if !strings.HasPrefix(fs[1], "2") {
			continue
		}
		us, err := strconv.ParseFloat(fs[2], 64)
		if err != nil {
			return nil, fmt.Errorf("h2load log: bad duration %q", fs[2])
		}
		lat = append(lat, us)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("h2load log: no successful requests")
	}
	slices.Sort(lat)
	return lat, nil
}

// percentile returns the nearest-rank percentile p of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

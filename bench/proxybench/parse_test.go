package main

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/false-systems/rauta/bench/internal/procfs"
	"github.com/false-systems/rauta/bench/internal/procgroup"
)

const h2loadOut = `starting benchmark...
spawning thread #0: 1 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 5.00s, 24744.50 req/s, 25.55MB/s
requests: 123722 total, 123786 started, 123722 done, 123700 succeeded, 20 failed, 2 errored, 0 timeout
status codes: 123710 2xx, 0 3xx, 12 4xx, 0 5xx
traffic: 51.10MB (53583232) total, 1.04MB (1093826) headers (space savings 93.47%), 48.33MB (50676736) data
                     min         max         mean         sd        +/- sd
time for request:      593us     18.83ms      2.56ms      1.01ms    78.60%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load([]byte(h2loadOut))
	if err != nil {
		t.Fatal(err)
	}
	want := result{Requests: 123700, Seconds: 5, RPS: 24744.50, BodyBytes: 50676736, Errors: 22, BadStatus: 12}
	if r != want {
		t.Errorf("parseH2load = %+v, want %+v", r, want)
	}
	if _, err := parseH2load([]byte("finished in 5.00s, 1 req/s\n")); err == nil {
		t.Error("parseH2load accepted output without the requests line")
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 5s test @ http://127.0.0.1:18000/1k\n" +
		`WRKRESULT {"duration_us":5000000,"requests":500000,"bytes":600000000,"connect":0,"read":1,"write":2,"status":3,"timeout":4,"p50_us":650,"p99_us":2100}` + "\n"
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := result{Requests: 500000, Seconds: 5, RPS: 100000, P50ms: 0.65, P99ms: 2.1, BodyBytes: 600000000, Errors: 7, BadStatus: 3,
		RawSummary: strings.TrimPrefix(strings.Split(out, "\n")[1], "WRKRESULT ")}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
	for _, bad := range []string{"no summary here", `WRKRESULT {"duration_us":0,"requests":1}`, "WRKRESULT {"} {
		if _, err := parseWrk([]byte(bad)); err == nil {
			t.Errorf("parseWrk(%q) accepted bad output", bad)
		}
	}
}

func TestResultCheck(t *testing.T) {
	ok := result{Requests: 10, BodyBytes: 10 * 1100}
	for _, tc := range []struct {
		name string
		r    result
		ok   bool
	}{
		{"good", ok, true},
		{"no requests", result{}, false},
		{"errors", result{Requests: 10, BodyBytes: 11000, Errors: 1}, false},
		{"bad status", result{Requests: 10, BodyBytes: 11000, BadStatus: 1}, false},
		{"short bodies", result{Requests: 10, BodyBytes: 10 * 1000}, false},
	} {
		if err := tc.r.check(1024); (err == nil) != tc.ok {
			t.Errorf("%s: check = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParseH2loadLogAndPercentile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		b.WriteString("1700000000000000\t200\t")
		b.WriteString(itoa(i*10) + "\n")
	}
	b.WriteString("1700000000000000\t502\t999999\n") // not 2xx: left out
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lat, err := parseH2loadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 100 || percentile(lat, 50) != 500 || percentile(lat, 99) != 990 || percentile(lat, 100) != 1000 {
		t.Errorf("got %d values, p50 %v, p99 %v, p100 %v; want 100, 500, 990, 1000", len(lat), percentile(lat, 50), percentile(lat, 99), percentile(lat, 100))
	}
}

func TestMedianAndRatios(t *testing.T) {
	r := &report{Cells: []string{"h1 c=64 1k"}, Contenders: []*contender{{Name: "direct"}, {Name: "rauta"}, {Name: "caddy"}}}
	for i, rps := range []float64{100, 300, 200} {
		r.add(sample{Contender: "direct", Cell: "h1 c=64 1k", Repeat: i, result: result{RPS: rps, Requests: 1}})
	}
	r.add(sample{Contender: "rauta", Cell: "h1 c=64 1k", result: result{RPS: 100, Requests: 100}, CPUSeconds: 0.01})
	r.add(sample{Contender: "rauta", Cell: "h1 c=64 1k", result: result{RPS: 9999}, Error: "3 errors"}) // not counted
	r.fail("caddy", 0, "start", os.ErrNotExist)
	r.finish()
	got := map[string]median{}
	for _, m := range r.Medians {
		got[m.Contender] = m
	}
	if m := got["direct"]; m.RPS != 200 || m.VsBest != 1 || m.VsDirect != 1 || m.Valid != 3 {
		t.Errorf("direct = %+v", m)
	}
	if m := got["rauta"]; m.RPS != 100 || m.VsBest != 0.5 || m.VsDirect != 0.5 || m.Valid != 1 || m.Runs != 2 || m.CPUPerReq != 100 {
		t.Errorf("rauta = %+v", m)
	}
	if m := got["caddy"]; m.Valid != 0 {
		t.Errorf("caddy = %+v", m)
	}
	tbl := r.table()
	if !strings.Contains(tbl, "caddy     NO RESULT: start failed") {
		t.Errorf("table does not report the failed contender:\n%s", tbl)
	}
	if len(r.problems()) != 2 {
		t.Errorf("problems = %q, want the failure and the invalid run", r.problems())
	}
}

func TestPairedRatios(t *testing.T) {
	c := headlineCell.name()
	r := &report{Cells: []string{c}, Contenders: []*contender{{Name: "rauta"}, {Name: "nginx"}, {Name: "direct"}}}
	add := func(name string, repeat int, rps, p99, cpu float64, bad string) {
		r.add(sample{Contender: name, Cell: c, Repeat: repeat, CPUSeconds: cpu, Error: bad,
			result: result{RPS: rps, P99ms: p99, Requests: uint64(rps)}})
	}
	// Repeat 0 is slow for both, repeat 1 fast for both: each ratio is
	// 1.1 or 0.9 although the medians of the two columns are level.
	add("rauta", 0, 110, 9, 1.1, "")
	add("nginx", 0, 100, 10, 1, "")
	add("rauta", 1, 270, 8, 2.7, "")
	add("nginx", 1, 300, 5, 3, "")
	add("rauta", 2, 500, 1, 1, "")
	add("nginx", 2, 100, 1, 1, "2 errors") // invalid: no pair
	add("direct", 0, 1000, 1, 0, "")       // no CPU figure: no CPU ratio
	r.finish()
	if len(r.Paired) != 2 {
		t.Fatalf("paired = %+v, want rauta against nginx and direct", r.Paired)
	}
	p := r.Paired[0]
	if p.Other != "nginx" || p.Pairs != 2 {
		t.Fatalf("first pairing = %+v", p)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if !near(p.RPS[1], 0.9) || !near(p.RPS[2], 1.1) || !near(p.RPS[0], 1.0) {
		t.Errorf("req/s ratios = %v, want median 1.0 of 0.9 and 1.1", p.RPS)
	}
	if !near(p.P99[1], 0.9) || !near(p.P99[2], 1.6) {
		t.Errorf("p99 ratios = %v, want 0.9 and 1.6", p.P99)
	}
	if !near(p.CPUPerReq[0], 1.0) {
		t.Errorf("CPU per request ratios = %v, want 1.0 (the same CPU per request in both repeats)", p.CPUPerReq)
	}
	if d := r.Paired[1]; d.Other != "direct" || d.Pairs != 1 || d.CPUPerReq != [3]float64{} {
		t.Errorf("direct pairing = %+v", d)
	}
	if tbl := r.table(); !strings.Contains(tbl, "rauta / nginx    same repeat, median [least, greatest] of 2: req/s 1.00 [0.90, 1.10]") {
		t.Errorf("table lacks the paired line:\n%s", tbl)
	}
}

func FuzzParsers(f *testing.F) {
	f.Add([]byte(h2loadOut))
	f.Add([]byte(`WRKRESULT {"duration_us":1,"requests":1}`))
	f.Add([]byte("1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseH2load(b)
		_, _ = parseWrk(b)
		_, _ = procgroup.StatusKB(b, "VmHWM:")
	})
}

func TestCPUUse(t *testing.T) {
	a := parseCPUTimes(t, "cpu  100 0 100 700 0 0 0 100 0 0\ncpu0 50 0 50 350 0 0 0 50 0 0\ncpu1 50 0 50 350 0 0 0 50 0 0\nintr 1 2 3\n")
	// 1000 more ticks on cpu1: 600 busy, 300 idle, 100 stolen; cpu0 idle.
	b := parseCPUTimes(t, "cpu  700 0 100 2000 0 0 0 200 0 0\ncpu0 50 0 50 1350 0 0 0 50 0 0\ncpu1 650 0 50 650 0 0 0 150 0 0\n")
	u := cpuUseBetween(a, b, "0", "1")
	if u.ProxyBusy != 0 || u.LoadBusy != 60 || u.Steal != 5 {
		t.Errorf("cpuUseBetween = %+v, want proxy 0%%, load 60%%, steal 5%%", u)
	}
}

func parseCPUTimes(t *testing.T, s string) map[string]procfs.CPUTimes {
	t.Helper()
	lines, err := procfs.ParseCPUTimes(s)
	if err != nil {
		t.Fatal(err)
	}
	return cpuTimesByName(lines)
}

func TestPortsFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := portsFree(l.Addr().(*net.TCPAddr).Port); err == nil {
		t.Error("portsFree accepted a port with a listener on it")
	}
	free := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := portsFree(free); err != nil {
		t.Errorf("portsFree after close: %v", err)
	}
}

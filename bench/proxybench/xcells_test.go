package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/bench/routegen"
)

func TestParseGroups(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"all", allGroups},
		{"tls", []string{"tls"}},
		{" idle, routes ,idle", []string{"idle", "routes"}},
	} {
		got, err := parseGroups(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseGroups(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", ",", "tls,bogus"} {
		if _, err := parseGroups(bad); err == nil {
			t.Errorf("parseGroups(%q) accepted it", bad)
		}
	}
}

func TestTakesPart(t *testing.T) {
	if takesPart("direct", groupTLS) || takesPart("direct", groupIdle) || takesPart("direct", groupRoutes) || takesPart("caddy", groupRoutes) {
		t.Error("a contender without a proxy to measure takes part")
	}
	if !takesPart("direct", groupGRPC) || !takesPart("caddy", groupWS) || !takesPart("haproxy", groupRoutes) {
		t.Error("a contender that should take part does not")
	}
}

// Quick mode must stay cheap: no 50,000-connection cell.
func TestQuickCells(t *testing.T) {
	for _, g := range allGroups {
		for _, c := range xcellsOf(g, true) {
			if c.Idle > 10000 {
				t.Errorf("quick mode runs %s", c.Name)
			}
		}
	}
	if len(xcellsOf(groupIdle, false)) != 2 {
		t.Error("the full run has no 50,000-connection idle cell")
	}
}

func TestClientArgv(t *testing.T) {
	e := &env{certFile: "/c.pem", rsaCert: "/r.pem"}
	ct := &contender{TLSAddr: "127.0.0.1:1", TLSRSAAddr: "127.0.0.1:2", GRPCAddr: "127.0.0.1:3", WSAddr: "127.0.0.1:4"}
	argv := strings.Join(clientArgv("/pb", "1", ct, e, tlsCell("1.2", true, true), 2*time.Second), " ")
	for _, want := range []string{"taskset -c 1 /pb client", "-kind tls", "-addr 127.0.0.1:2", "-tls 1.2", "-resume", "-ca /c.pem,/r.pem", "-d 2s"} {
		if !strings.Contains(argv, want) {
			t.Errorf("tls argv %q lacks %q", argv, want)
		}
	}
	for _, c := range append(xcellsOf(groupGRPC, false), xcellsOf(groupWS, false)...) {
		argv := strings.Join(clientArgv("/pb", "1", ct, e, c, time.Second), " ")
		want := map[string]string{"grpc-unary": "127.0.0.1:3", "grpc-stream": "127.0.0.1:3", "ws": "127.0.0.1:4"}[c.Kind]
		if !strings.Contains(argv, "-addr "+want) {
			t.Errorf("%s: argv %q does not load %s", c.Name, argv, want)
		}
	}
}

func TestParseClientResult(t *testing.T) {
	out := "noise\n" + clientResultPrefix + `{"ops":300,"seconds":2,"bytes":307200,"errors":1,"bad_status":2,"resumed":290,"p50_us":1500,"p99_us":9000}` + "\n"
	r, err := parseClientResult([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	res := r.asResult([]string{"pb", "client"})
	want := result{Requests: 300, Seconds: 2, RPS: 150, P50ms: 1.5, P99ms: 9, BodyBytes: 307200, Errors: 1, BadStatus: 2, Command: "pb client"}
	if res != want || r.Resumed != 290 {
		t.Errorf("asResult = %+v (resumed %d), want %+v", res, r.Resumed, want)
	}
	for _, bad := range []string{"", clientResultPrefix + "{", clientResultPrefix + `{"ops":1}`} {
		if _, err := parseClientResult([]byte(bad)); err == nil {
			t.Errorf("parseClientResult(%q) accepted it", bad)
		}
	}
}

// fakeWorker fails every tenth operation.
type fakeWorker struct{ calls atomic.Int64 }

func (w *fakeWorker) do(ctx context.Context, id int) (op, error) {
	if w.calls.Add(1)%10 == 0 {
		return op{}, errors.New("boom")
	}
	return op{ops: 2, bytes: 10, resumed: id == 0}, nil
}
func (w *fakeWorker) close() {}

// drive stops at -n operations, counts failed ones as errors and keeps
// their latency out.
func TestDriveBounded(t *testing.T) {
	w := &fakeWorker{}
	r := drive(clientOptions{conns: 4, n: 100, duration: time.Minute}, w)
	if w.calls.Load() != 100 {
		t.Fatalf("%d operations, want exactly -n = 100", w.calls.Load())
	}
	if r.Errors != 10 || r.Ops != 180 || r.Bytes != 900 || r.FirstError != "boom" {
		t.Errorf("drive = %+v, want 10 errors, 180 ops (2 per success), 900 bytes", r)
	}
}

func TestRoutesWrkScript(t *testing.T) {
	reqs := routegen.Requests(100, 4)
	s := routesWrkScript(reqs)
	if strings.Count(s, "HTTP/1.1") != len(reqs) || !strings.Contains(s, "request = function()") || !strings.Contains(s, "WRKRESULT") {
		t.Fatalf("script lacks requests, the request function or the summary:\n%s", s)
	}
	raw := rawRequest(routegen.Request{Method: "GET", Host: "h.example.com", Path: "/p", Header: http.Header{"X-Canary": {"true"}, "Accept": {"*/*"}}})
	if raw != "GET /p HTTP/1.1\r\nHost: h.example.com\r\nAccept: */*\r\nX-Canary: true\r\n\r\n" {
		t.Errorf("rawRequest = %q", raw)
	}
}

func TestIdlePairs(t *testing.T) {
	r := &report{IdleCells: []string{"idle 10000 conns"}, Contenders: []*contender{{Name: "rauta"}, {Name: "nginx"}}}
	for rep, kib := range [][2]float64{{10, 5}, {12, 6}, {8, 4}} {
		r.addIdle(idleSample{Contender: "rauta", Cell: "idle 10000 conns", Repeat: rep, KiBPerConn: kib[0]})
		r.addIdle(idleSample{Contender: "nginx", Cell: "idle 10000 conns", Repeat: rep, KiBPerConn: kib[1]})
	}
	// An invalid run has no pair.
	r.addIdle(idleSample{Contender: "nginx", Cell: "idle 10000 conns", Repeat: 3, KiBPerConn: 1, Error: "dropped"})
	r.addIdle(idleSample{Contender: "rauta", Cell: "idle 10000 conns", Repeat: 3, KiBPerConn: 1})
	ps := r.idlePairs("rauta")
	if len(ps) != 1 || ps[0].Pairs != 3 || ps[0].KiB[0] != 2 || ps[0].KiBEst.Verdict(false) != "behind" {
		t.Errorf("idlePairs = %+v, want 3 pairs at ratio 2, behind", ps)
	}
	r.IdlePaired = ps
	var b strings.Builder
	r.idleTable(&b)
	if !strings.Contains(b.String(), "KiB per connection 2.000") {
		t.Errorf("idle table lacks the geometric mean:\n%s", b.String())
	}
}

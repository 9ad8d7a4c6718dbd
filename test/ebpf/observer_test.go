package ebpf

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

type clientResult struct {
	target  string
	status  int
	latency time.Duration
}

func httpClient(tp *topology, keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         tp.dial,
			MaxIdleConnsPerHost: 4,
			DisableKeepAlives:   !keepAlive,
			DisableCompression:  true,
		},
	}
}

// do sends one request and measures, as the observer does, from the
// moment the client has its connection and starts writing the request to
// the first byte of the response (connection setup is not part of it).
func do(t *testing.T, c *http.Client, method, url, body string) clientResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
	}
	var start, first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { start = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	lat := first.Sub(start)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return clientResult{target: req.URL.RequestURI(), status: res.StatusCode, latency: lat}
}

// TestObserverMatchesClient sends real traffic (keep-alive and not, fast,
// delayed, 5xx, with a body) and checks that the observer reports each
// request exactly once with the client's status and latency (within 10%
// or 3 ms), in every attach mode.
func TestObserverMatchesClient(t *testing.T) {
	for _, mode := range []string{"tcx", "clsact", "xdp"} {
		t.Run(mode, func(t *testing.T) {
			tp := newTopology(t)
			addr := startServer(t, tp, 8080)
			obs := startObserver(t, tp, mode, nil)

			ka, noKA := httpClient(tp, true), httpClient(tp, false)
			var sent []clientResult
			for i := range 30 {
				sent = append(sent, do(t, ka, "GET", fmt.Sprintf("http://%s/ok?i=%d", addr, i), ""))
			}
			for i := range 5 {
				sent = append(sent, do(t, ka, "GET", fmt.Sprintf("http://%s/delay/20?i=%d", addr, i), ""))
				sent = append(sent, do(t, noKA, "GET", fmt.Sprintf("http://%s/delay/50?i=%d", addr, i), ""))
				sent = append(sent, do(t, ka, "GET", fmt.Sprintf("http://%s/status/503?i=%d", addr, i), ""))
				sent = append(sent, do(t, noKA, "GET", fmt.Sprintf("http://%s/status/500?i=%d", addr, i), ""))
				sent = append(sent, do(t, ka, "POST", fmt.Sprintf("http://%s/echo?i=%d", addr, i), strings.Repeat("b", 100)))
			}

			recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= len(sent) })
			got := map[string][]record{}
			for _, r := range exchanges(recs) {
				got[r.Target] = append(got[r.Target], r)
			}
			var outside []string
			for _, s := range sent {
				rs := got[s.target]
				if len(rs) != 1 {
					t.Errorf("%s: observed %d times, want once", s.target, len(rs))
					continue
				}
				r := rs[0]
				if r.Status != s.status || r.Outcome != "complete" {
					t.Errorf("%s: observed %d/%s, client got %d", s.target, r.Status, r.Outcome, s.status)
				}
				obsLat := time.Duration(r.LatencyNS)
				// The observer times a sub-interval of what the client
				// times (it sits between them), so it can never report
				// more; beyond clock granularity that is a pairing bug.
				if obsLat > s.latency+200*time.Microsecond {
					t.Errorf("%s: observed latency %v exceeds the client's %v", s.target, obsLat, s.latency)
				}
				tol := max(s.latency/10, 3*time.Millisecond)
				if d := s.latency - obsLat; d > tol {
					outside = append(outside, fmt.Sprintf("%s: observed %v, client %v", s.target, obsLat, s.latency))
				}
			}
			// Within 10% or 3 ms of the client: the client's own share is
			// user-space scheduling, which on a loaded 2-core machine
			// reaches a few milliseconds (CI saw 2 ms on sub-millisecond
			// requests and 4.7 ms on a 20 ms one, three of 55 at once),
			// so allow at most 5% of samples outside and show them. A
			// mispaired request is off by a delay class (20 or 50 ms),
			// and more than the client's latency is an error above.
			if len(outside) > len(sent)/20 {
				t.Errorf("%d of %d latencies outside 10%% / 3ms of the client's:\n%s", len(outside), len(sent), strings.Join(outside, "\n"))
			} else if len(outside) > 0 {
				t.Logf("%d of %d latencies outside tolerance (client scheduling):\n%s", len(outside), len(sent), strings.Join(outside, "\n"))
			}
			if n := len(exchanges(recs)); n != len(sent) {
				t.Errorf("observed %d exchanges, client sent %d", n, len(sent))
			}
			if d := obs.metric(t, "rauta_observer_ringbuf_dropped_total", ""); d != 0 {
				t.Errorf("ring buffer dropped %v events", d)
			}
			if n := obs.metric(t, "http_server_request_duration_seconds_count", ""); int(n) != len(sent) {
				t.Errorf("histogram count %v, want %d", n, len(sent))
			}
			if n := obs.metric(t, "http_server_request_duration_seconds_count", `http_response_status_code="503"`); n != 5 {
				t.Errorf("503 count %v, want 5", n)
			}
			if n := obs.metric(t, "http_server_request_duration_seconds_count", `http_route="/delay/:num"`); n != 10 {
				t.Errorf("/delay/:num count %v, want 10", n)
			}
			if mode != "xdp" {
				// TC sees each segment on both router interfaces.
				if n := obs.metric(t, "rauta_observer_duplicate_segments_total", ""); n < float64(len(sent)) {
					t.Errorf("duplicates %v: both hooks should have seen every message", n)
				}
			}
			obs.stop(t)
			assertDetached(t, tp, mode)
		})
	}
}

// assertDetached checks that Run removed its hooks.
func assertDetached(t *testing.T, tp *topology, mode string) {
	t.Helper()
	assertDetachedFrom(t, tp, mode, []string{tp.rClient, tp.rServer})
}

func assertDetachedFrom(t *testing.T, tp *topology, mode string, devs []string) {
	t.Helper()
	for _, dev := range devs {
		out, err := exec.Command("ip", "netns", "exec", tp.router, "bpftool", "net", "show", "dev", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("bpftool: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "observe_") {
			t.Errorf("%s still has observer programs after Run returned:\n%s", dev, out)
		}
		if mode == "clsact" {
			q, _ := exec.Command("ip", "netns", "exec", tp.router, "tc", "qdisc", "show", "dev", dev).CombinedOutput()
			if strings.Contains(string(q), "clsact") {
				t.Errorf("%s: clsact qdisc left behind:\n%s", dev, q)
			}
		}
	}
}

// TestPipelinedRequests writes requests back to back on one connection,
// each in its own segment and then several in one segment.
func TestPipelinedRequests(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	obs := startObserver(t, tp, "tc", nil)

	conn, err := tp.dial(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	req := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	// Separate segments, no waiting for responses.
	for _, p := range []string{"/ok?p=1", "/delay/10?p=2", "/status/404?p=3"} {
		if _, err := io.WriteString(conn, req(p)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Three in one segment.
	if _, err := io.WriteString(conn, req("/ok?p=4")+req("/status/502?p=5")+req("/ok?p=6")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for strings.Count(string(buf), "HTTP/1.1 ") < 6 {
		n, err := conn.Read(tmp)
		if err != nil {
			t.Fatalf("read responses: %v (got %q)", err, buf)
		}
		buf = append(buf, tmp[:n]...)
	}
	want := map[string]int{"/ok?p=1": 200, "/delay/10?p=2": 200, "/status/404?p=3": 404, "/ok?p=4": 200, "/status/502?p=5": 502, "/ok?p=6": 200}
	recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= len(want) })
	got := map[string]int{}
	for _, r := range exchanges(recs) {
		got[r.Target] = r.Status
	}
	for target, status := range want {
		if got[target] != status {
			t.Errorf("%s: observed status %d, want %d", target, got[target], status)
		}
	}
	if len(exchanges(recs)) != len(want) {
		t.Errorf("observed %d exchanges, want %d: %+v", len(exchanges(recs)), len(want), exchanges(recs))
	}
}

// TestProbeFailuresResetsAndTimeouts: kubelet-style probes that get a
// 503, a reset, and no answer at all.
func TestProbeFailuresResetsAndTimeouts(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	obs := startObserver(t, tp, "tc", func(c *observe.Config) { c.RequestTimeout = 300 * time.Millisecond })

	probe := func(path string, timeout time.Duration) {
		c := httpClient(tp, false)
		c.Timeout = timeout
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("User-Agent", "kube-probe/1.36")
		res, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	probe("/ok", time.Second)
	probe("/status/503", time.Second)
	probe("/reset", time.Second)
	probe("/hang", time.Second) // the observer's timeout (300ms) fires first

	recs := obs.waitRecords(t, func(r []record) bool { return len(events(r, "probe_failure")) >= 3 })
	reasons := map[string]bool{}
	for _, e := range events(recs, "probe_failure") {
		reasons[e.Route+" "+e.Reason] = true
	}
	for _, want := range []string{"/status/:num status 503", "/reset connection reset", "/hang no response before timeout"} {
		if !reasons[want] {
			t.Errorf("missing probe failure %q; got %v", want, reasons)
		}
	}
	if len(reasons) != 3 {
		t.Errorf("probe failures %v, want exactly 3 (the /ok probe passed)", reasons)
	}
}

// TestSlowResponseAndErrorSpike: a route's baseline of fast answers, then
// a run of slow answers on the same route, then a burst of 503s.
func TestSlowResponseAndErrorSpike(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	obs := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.Slow.MinSamples = 30
		// Every latency joins the baseline (by default one per 300 ms).
		c.Slow.BaselinePeriod = time.Millisecond
		c.Spike.Window = 400 * time.Millisecond
		c.Spike.MinRequests = 10
	})
	c := httpClient(tp, true)
	// The baseline: /delay/:num answering in about 1 ms.
	for i := range 40 {
		do(t, c, "GET", fmt.Sprintf("http://%s/delay/1?w=%d", addr, i), "")
	}
	// Six answers far above the 50 ms floor: one slow answer is what a
	// healthy p99 allows, six in ~46 exchanges (binomial tail ~1e-5
	// against 1%) are a slowdown.
	for i := range 6 {
		do(t, c, "GET", fmt.Sprintf("http://%s/delay/200?s=%d", addr, i), "")
	}
	// Start the burst on a fresh window so it is not diluted.
	time.Sleep(450 * time.Millisecond)
	// 40 so that even a burst split across two windows by a slow machine
	// leaves one window with MinRequests.
	for i := range 40 {
		do(t, c, "GET", fmt.Sprintf("http://%s/status/503?b=%d", addr, i), "")
	}
	recs := obs.waitRecords(t, func(r []record) bool {
		return len(events(r, "slow_response")) >= 1 && len(events(r, "error_spike")) >= 1
	})
	slow := events(recs, "slow_response")
	if len(slow) != 1 {
		t.Fatalf("slow_response events %+v, want one for the route's interval", slow)
	}
	// The event may come from a request still hanging (the pending sweep
	// judges it once it passes the threshold), so only the floor is sure.
	if s := slow[0]; s.Route != "/delay/:num" || s.LatencyMS < 50 {
		t.Errorf("slow event %+v is not the /delay/:num slowdown", s)
	}
	spikes := events(recs, "error_spike")
	if len(spikes) == 0 {
		t.Fatal("no error_spike event")
	}
	if spikes[0].Status != 503 || spikes[0].ErrorRate < 0.5 {
		t.Errorf("spike %+v", spikes[0])
	}
	if n := obs.metric(t, "rauta_observer_detections_total", `kind="error_spike"`); n < 1 {
		t.Errorf("detections metric %v", n)
	}
}

// TestIPv6Traffic: the same pairing over IPv6.
func TestIPv6Traffic(t *testing.T) {
	tp := newTopology(t)
	addr := startServerOn(t, tp, "[fd00:db8:2::2]:8080")
	obs := startObserver(t, tp, "tc", nil)
	c := httpClient(tp, true)
	var sent []clientResult
	for i := range 5 {
		sent = append(sent, do(t, c, "GET", fmt.Sprintf("http://%s/ok?v6=%d", addr, i), ""))
		sent = append(sent, do(t, c, "GET", fmt.Sprintf("http://%s/status/503?v6=%d", addr, i), ""))
	}
	recs := obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= len(sent) })
	got := map[string]int{}
	for _, r := range exchanges(recs) {
		got[r.Target] = r.Status
		if r.Service != "[fd00:db8:2::2]:8080" {
			t.Errorf("service %q, want the IPv6 server address", r.Service)
		}
	}
	for _, s := range sent {
		if got[s.target] != s.status {
			t.Errorf("%s: observed %d, client got %d", s.target, got[s.target], s.status)
		}
	}
	if len(exchanges(recs)) != len(sent) {
		t.Errorf("observed %d exchanges, sent %d", len(exchanges(recs)), len(sent))
	}
}

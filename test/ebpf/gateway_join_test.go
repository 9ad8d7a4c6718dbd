package ebpf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
	"github.com/false-systems/rauta/internal/observe/join"
)

// joinedRequest is what the client measured of one request.
type joinedRequest struct {
	id     string
	delay  time.Duration
	local  netip.AddrPort // the client's end of its connection
	client time.Duration  // connection in hand to the first response byte
}

// sendWithID sends GET /delay/{ms} through the gateway with its own
// X-Request-Id and measures it as the observer would: from the moment
// the client has its connection (it writes the request next) to the
// first byte of the response.
func sendWithID(t *testing.T, c *http.Client, gw, id string, delay time.Duration) joinedRequest {
	t.Helper()
	r := joinedRequest{id: id, delay: delay}
	var start, first time.Time
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			start = time.Now()
			r.local = netip.MustParseAddrPort(info.Conn.LocalAddr().String())
		},
		GotFirstResponseByte: func() { first = time.Now() },
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/delay/%d", gw, delay.Milliseconds()), nil)
	req.Header.Set("X-Request-Id", id)
	res, err := c.Do(req)
	if err != nil {
		t.Errorf("%s: %v", id, err)
		return r
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("%s: status %d", id, res.StatusCode)
	}
	r.client = first.Sub(start)
	return r
}

// sendNested sends three requests at once, each on a client from
// client, with IDs prefix-0..2: the 500 ms request first, the 300 ms one
// 100 ms later, the 100 ms one 100 ms after that, so the shorter
// requests lie inside the longer ones' windows (the sleeps order the
// sends; nothing is timed) and only their IDs, or their streams, tell
// them apart.
func sendNested(t *testing.T, client func() *http.Client, gw, prefix string) []joinedRequest {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var reqs []joinedRequest
	for i, d := range []time.Duration{500 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond} {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		wg.Go(func() {
			r := sendWithID(t, client(), gw, fmt.Sprintf("%s-%d", prefix, i), d)
			mu.Lock()
			reqs = append(reqs, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return reqs
}

// lookupJoined polls the observer's /debug/requests/{id} until the
// request is joined (or 10 s pass).
func lookupJoined(t *testing.T, o *runningObserver, id string) (join.Breakdown, bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + o.metricsAddr + "/debug/requests/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var b join.Breakdown
		ok := res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(&b) == nil
		res.Body.Close()
		if ok || time.Now().After(deadline) {
			return b, ok
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joinGap is the difference between the test requests' backend delays:
// a join that took another request's leg, or counted backend time as
// the gateway's, is off by at least that much, and each bound below is
// half of it, which a correct join meets with the gateway's and the
// kernel's real time (well under a millisecond here) far inside it.
const joinGap = 200 * time.Millisecond

// checkJoined asserts that the observer joined request r: the record
// names the client's own connection and the backend, puts the backend's
// sleep (and no more than half the gap besides) in the backend phase,
// and its parts add up to a total inside the client's own measurement.
// It returns the joined record (zero when it was not joined).
func checkJoined(t *testing.T, obs *runningObserver, r joinedRequest, backend netip.AddrPort) join.Breakdown {
	t.Helper()
	const gap = joinGap
	b, ok := lookupJoined(t, obs, r.id)
	if !ok {
		t.Errorf("%s: not joined within 10s", r.id)
		for _, reason := range join.ReasonNames {
			t.Logf("join result %s: %v", reason, obs.metric(t, "rauta_observer_join_records_total", `result="`+reason+`"`))
		}
		for _, x := range exchanges(obs.out.records(t)) {
			t.Logf("exchange seen: %+v", x)
		}
		return b
	}
	t.Logf("%s: delay %v client %v | stream %d total %v = kernel %v + gateway %v + backend %v (%d attempt)", r.id, r.delay, r.client, b.Stream,
		time.Duration(b.TotalNS), time.Duration(b.KernelNS), time.Duration(b.GatewayNS), time.Duration(b.BackendNS), b.Attempts)
	if b.RequestID != r.id || b.Client != r.local || b.Upstream != backend || b.Status != 200 || b.Attempts != 1 {
		t.Errorf("%s: joined %s from %v to %v, status %d, %d attempts; want the client's %v to %v, 200, 1",
			r.id, b.RequestID, b.Client, b.Upstream, b.Status, b.Attempts, r.local, backend)
	}
	if b.KernelNS+b.GatewayNS+b.BackendNS != b.TotalNS || b.KernelNS < 0 || b.GatewayNS < 0 {
		t.Errorf("%s: parts %d+%d+%d do not add up to %d", r.id, b.KernelNS, b.GatewayNS, b.BackendNS, b.TotalNS)
	}
	if bk := time.Duration(b.BackendNS); bk < r.delay || bk > r.delay+gap/2 {
		t.Errorf("%s: backend %v, want the backend's sleep %v to %v", r.id, bk, r.delay, r.delay+gap/2)
	}
	if g := time.Duration(b.KernelNS + b.GatewayNS); g > gap/2 {
		t.Errorf("%s: kernel+gateway %v above %v: backend time counted as the gateway's", r.id, g, gap/2)
	}
	if tot := time.Duration(b.TotalNS); tot > r.client || r.client-tot > gap/2 {
		t.Errorf("%s: total at the gateway %v, client measured %v: want inside it, within %v", r.id, tot, r.client, gap/2)
	}
	return b
}

// joinSetup varies startJoinedGateway: adjust, when not nil, changes the
// observer's configuration last; h2cBackend makes the backend speak h2c
// (prior knowledge), and the gateway speak it to the backend.
type joinSetup struct {
	adjust     func(*topology, *observe.Config)
	h2cBackend bool
}

// startJoinedGateway runs the backend in the server namespace, the RAUTA
// gateway in the router namespace (its listener on the router's
// client-side address, its admin port on the router's loopback), and the
// observer on the router's interfaces, joining with the gateway's timing
// records. It returns once a warm-up request has been joined: the
// observer keeps client legs only of listeners it learned from a record
// (on its pipeline's tick after the record arrived), so the test's
// requests may only start after that.
func startJoinedGateway(t *testing.T, setup joinSetup) (tp *topology, gw, admin string, obs *runningObserver) {
	t.Helper()
	tp = newTopology(t)
	appProtocol := ""
	if setup.h2cBackend {
		mux := http.NewServeMux()
		mux.HandleFunc("/delay/{ms}", serveDelay)
		serveH2c(t, tp, 8080, mux.ServeHTTP)
		appProtocol = "kubernetes.io/h2c"
	} else {
		startServer(t, tp, 8080)
	}
	gwIP := strings.TrimSuffix(tp.clientIP, ".2") + ".1" // the router's client-side address
	gw, admin = startGatewayWith(t, tp, tp.router, gwIP, appProtocol)
	obs = startObserver(t, tp, "tc", func(c *observe.Config) {
		c.GatewayAdmin = []string{"http://" + admin}
		c.GatewayNetns = tp.netnsPath(tp.router)
		c.JoinPollInterval = 50 * time.Millisecond
		if setup.adjust != nil {
			setup.adjust(tp, c)
		}
	})
	c := httpClient(tp, true)
	for i := 0; obs.metric(t, "rauta_observer_join_records_total", `result="joined"`) < 1; i++ {
		if i == 100 {
			t.Fatalf("no warm-up request joined within 100 requests (%v records received, %v failed fetches)",
				obs.metric(t, "rauta_observer_join_records_received_total", ""), obs.metric(t, "rauta_observer_join_poll_errors_total", ""))
		}
		sendWithID(t, c, gw, fmt.Sprintf("warmup-%d", i), 0)
		time.Sleep(50 * time.Millisecond)
	}
	return tp, gw, admin, obs
}

// TestGatewayJoinBreakdown: the RAUTA gateway runs in the router
// namespace, between the client and a backend that sleeps a known time;
// the observer on the router's two interfaces sees both legs of each
// request (client -> gateway, gateway -> backend) and joins them with the
// gateway's timing records, fetched from its admin port on the router's
// loopback. For each request ID the joined record names the client's own
// connection, puts at least the backend's sleep in the backend phase, and
// its parts add up to a total inside the client's own measurement.
//
// The bounds are correctness bounds: the delays are 200 ms apart, so a
// join that took another request's leg, or counted backend time as the
// gateway's, would be off by at least 200 ms; each bound is half that
// gap (100 ms), which a correct join meets with the gateway's and the
// kernel's real time (well under a millisecond here) far inside it.
// Three requests run one after another on one kept-alive connection (the
// join must pick the exchange open at the head read), three nested in
// time on three connections (the upstream legs are told apart by
// X-Request-Id: without it the longest request would take the shortest
// one's leg).
func TestGatewayJoinBreakdown(t *testing.T) {
	tp, gw, admin, obs := startJoinedGateway(t, joinSetup{})
	c := httpClient(tp, true)
	var reqs []joinedRequest
	for i, d := range []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond} {
		reqs = append(reqs, sendWithID(t, c, gw, fmt.Sprintf("seq-%d", i), d))
	}
	// On three connections (a client each).
	reqs = append(reqs, sendNested(t, func() *http.Client { return httpClient(tp, false) }, gw, "par")...)

	backend := netip.MustParseAddrPort(net.JoinHostPort(tp.serverIP, "8080"))
	for _, r := range reqs {
		checkJoined(t, obs, r, backend)
	}

	// The gateway's own record of one of them, on its admin port.
	res, err := nsClient(tp.router).Get("http://" + admin + "/debug/requests/par-0")
	if err != nil {
		t.Fatal(err)
	}
	var rec join.Record
	if err := json.NewDecoder(res.Body).Decode(&rec); err != nil || res.StatusCode != 200 || rec.RequestID != "par-0" || rec.Upstream != backend {
		t.Errorf("gateway admin /debug/requests/par-0: %d %+v %v", res.StatusCode, rec, err)
	}
	res.Body.Close()

	if n := obs.metric(t, "rauta_gateway_request_phase_duration_seconds_count", `phase="backend"`); n < float64(len(reqs)) {
		t.Errorf("backend phase observed %v times, want at least %d", n, len(reqs))
	}
	if n := obs.metric(t, "rauta_observer_join_records_total", `result="joined"`); n < float64(len(reqs)) {
		t.Errorf("joined %v records, want at least %d", n, len(reqs))
	}
	obs.stop(t)
}

// TestGatewayJoinHTTP2Streams: h2c clients (prior knowledge) through the
// gateway, three requests open at once as streams of one connection,
// each with its own backend delay. On one 4-tuple in one time window
// only the stream identifier tells them apart: the gateway's record
// names the request's stream, the observer's h2c parser the exchange's,
// and each joined record must carry its own request's backend delay
// (delays 200 ms apart, bounds as in TestGatewayJoinBreakdown). Without
// the stream in the record all three are ambiguous (join_test.go); a
// join by time alone would give at least two of them a wrong leg.
func TestGatewayJoinHTTP2Streams(t *testing.T) {
	tp, gw, _, obs := startJoinedGateway(t, joinSetup{})
	c := h2cClient(t, tp)
	// The first request opens the connection (stream 1); the transport
	// then puts every request on it.
	reqs := []joinedRequest{sendWithID(t, c, gw, "h2-first", 0)}
	conn := reqs[0].local
	reqs = append(reqs, sendNested(t, func() *http.Client { return c }, gw, "h2-par")...)

	backend := netip.MustParseAddrPort(net.JoinHostPort(tp.serverIP, "8080"))
	streams := map[uint32]string{}
	for _, r := range reqs {
		if r.local != conn {
			t.Fatalf("%s went on connection %v, not %v: the streams must share one connection", r.id, r.local, conn)
		}
		b := checkJoined(t, obs, r, backend)
		if b.RequestID == "" {
			continue
		}
		if b.Stream == 0 || b.Stream%2 == 0 || streams[b.Stream] != "" {
			t.Errorf("%s: stream %d, want an odd client stream no other request has (%v)", r.id, b.Stream, streams)
		}
		streams[b.Stream] = r.id
	}
	if n := obs.metric(t, "rauta_observer_join_records_total", `result="ambiguous"`); n != 0 {
		t.Errorf("%v records ambiguous, want 0", n)
	}
	obs.stop(t)
}

// TestGatewayJoinDiscoversNamespaces: the observer is given the admin URL
// and a pattern of namespaces (the topology's three) instead of the
// router's: it finds the one where a gateway answers and joins its
// records as with the path; the two where nothing listens are probed on
// every scan without counting as failed polls, and exactly one gateway
// is reported polled.
func TestGatewayJoinDiscoversNamespaces(t *testing.T) {
	tp, gw, _, obs := startJoinedGateway(t, joinSetup{adjust: func(tp *topology, c *observe.Config) {
		c.GatewayNetns = tp.netnsPath(tp.prefix) + "*"
		c.GatewayNetnsRescan = 100 * time.Millisecond
	}})
	if n, _ := filepath.Glob(tp.netnsPath(tp.prefix) + "*"); len(n) != 3 {
		t.Fatalf("pattern matches %v, want the topology's three namespaces", n)
	}
	c := httpClient(tp, true)
	reqs := []joinedRequest{sendWithID(t, c, gw, "found-0", 100*time.Millisecond), sendWithID(t, c, gw, "found-1", 300*time.Millisecond)}
	backend := netip.MustParseAddrPort(net.JoinHostPort(tp.serverIP, "8080"))
	for _, r := range reqs {
		checkJoined(t, obs, r, backend)
	}
	if n := obs.metric(t, "rauta_observer_join_gateways", ""); n != 1 {
		t.Errorf("rauta_observer_join_gateways %v, want 1 (the router's)", n)
	}
	if n := obs.metric(t, "rauta_observer_join_poll_errors_total", ""); n != 0 {
		t.Errorf("rauta_observer_join_poll_errors_total %v: probes of namespaces without a gateway counted as failures", n)
	}
	obs.stop(t)
}

// TestGatewayJoinH2cBackend: the gateway speaks h2c to the backend
// (appProtocol kubernetes.io/h2c), so each upstream leg is an HTTP/2
// stream of a pooled connection; the observer's h2c parser hashes the
// stream's x-request-id, which is how the join finds it. Requests from
// three connections at once, their streams overlapping on the upstream
// connection(s), each joined with its own backend delay.
func TestGatewayJoinH2cBackend(t *testing.T) {
	tp, gw, _, obs := startJoinedGateway(t, joinSetup{h2cBackend: true})
	reqs := sendNested(t, func() *http.Client { return httpClient(tp, false) }, gw, "h2c-up")
	backend := netip.MustParseAddrPort(net.JoinHostPort(tp.serverIP, "8080"))
	for _, r := range reqs {
		checkJoined(t, obs, r, backend)
	}
	obs.stop(t)
}

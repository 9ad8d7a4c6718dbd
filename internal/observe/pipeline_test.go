package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/enrich"
	"github.com/false-systems/rauta/internal/observe/export"
)

// These tests drive the userspace pipeline with synthetic kernel events;
// they need no privileges.

type line struct {
	Type      string  `json:"type"`
	Kind      string  `json:"kind"`
	Service   string  `json:"service"`
	Namespace string  `json:"namespace"`
	Pod       string  `json:"pod"`
	Method    string  `json:"method"`
	Target    string  `json:"target"`
	Route     string  `json:"route"`
	Status    int     `json:"status"`
	Outcome   string  `json:"outcome"`
	LatencyNS int64   `json:"latency_ns"`
	LatencyMS float64 `json:"latency_ms"`
	Reason    string  `json:"reason"`
}

func lines(t *testing.T, b *bytes.Buffer) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(b)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func ev(ts uint64, src, dst string, seq uint32, payload string) *capture.Event {
	return &capture.Event{
		TimestampNS: ts, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Seq: seq, Kind: capture.KindPayload, Data: []byte(payload), PayloadLen: uint32(len(payload)),
	}
}

func newTestPipeline(t *testing.T, cfg Config, out *bytes.Buffer) (*pipeline, *export.Prom) {
	t.Helper()
	static, err := enrich.ParseStatic([]byte("endpoints:\n- ip: 10.0.0.2\n  pod: web-1\n  namespace: shop\n  service: web\n"))
	if err != nil {
		t.Fatal(err)
	}
	var p *pipeline
	prom := export.NewProm(func() export.Counters { return p.counters() })
	p = newPipeline(context.Background(), pipelineOptions{cfg: cfg, resolver: static, prom: prom, json: export.NewJSON(out),
		own: newOwnAddrs(netip.MustParseAddrPort("[::]:9090"), func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("10.0.0.100")} })})
	return p, prom
}

func TestPipelineExchangesEventsAndCounters(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	cfg.Slow.MinSamples = 10
	cfg.Slow.Window = 10
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)

	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	seq := uint32(1)
	for i := range 10 {
		p.handle(ev(ts, c, s, seq, "GET /items/"+string(rune('0'+i))+" HTTP/1.1\r\nHost: web\r\n\r\n"))
		p.handle(ev(ts+uint64(time.Millisecond), s, c, seq, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		ts += uint64(10 * time.Millisecond)
		seq += 100
	}
	// A failing kubelet probe; at 10ms it is not slow (below the 50 ms
	// floor, and one is not enough).
	p.handle(ev(ts, c, s, seq, "GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.36\r\n\r\n"))
	p.handle(ev(ts+uint64(10*time.Millisecond), s, c, seq, "HTTP/1.1 503 Service Unavailable\r\n\r\n"))
	// Garbage and a response without request are counted, not guessed.
	p.handle(ev(ts, c, s, seq+1000, "GET \x00\x01 junk"))
	p.handle(ev(ts, s, "10.0.0.9:1", 5, "HTTP/1.1 200 OK\r\n\r\n"))
	p.handle(ev(ts, s, c, seq+7, "HTTP/9.9 200 OK\r\n\r\n"))
	// A scrape of our own metrics endpoint is not recorded.
	p.handle(ev(ts, "10.0.0.1:40001", "10.0.0.100:9090", 1, "GET /metrics HTTP/1.1\r\n\r\n"))
	p.handle(ev(ts+1, "10.0.0.100:9090", "10.0.0.1:40001", 1, "HTTP/1.1 200 OK\r\n\r\n"))
	p.tick(ts, capture.KernelStats{Events: 99, RingbufFull: 2}, 1)

	ls := lines(t, &out)
	var exchanges, slow, probe int
	for _, l := range ls {
		switch {
		case l.Type == "exchange":
			exchanges++
			if l.Service != "web" || l.Namespace != "shop" || l.Pod != "web-1" {
				t.Errorf("enrichment missing: %+v", l)
			}
			if l.Route == "/metrics" {
				t.Errorf("own metrics scrape recorded")
			}
			if l.Status == 200 && (l.LatencyNS != int64(time.Millisecond) || l.Route != "/items/:num") {
				t.Errorf("exchange %+v", l)
			}
		case l.Kind == "slow_response":
			slow++
		case l.Kind == "probe_failure":
			probe++
			if l.Reason != "status 503" || l.Service != "web" || l.Pod != "web-1" {
				t.Errorf("probe %+v", l)
			}
		}
	}
	if exchanges != 11 || slow != 0 || probe != 1 {
		t.Fatalf("exchanges %d slow %d probe %d\n%s", exchanges, slow, probe, out.String())
	}
	got := p.counters()
	if got.RequestMalformed != 1 || got.ResponseMalformed != 1 || got.Pair.UnmatchedResponses != 1 || got.Kernel.RingbufFull != 2 || got.DecodeErrors != 1 {
		t.Fatalf("counters %+v", got)
	}
}

func TestPipelineResetAndTimeout(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	cfg.RequestTimeout = time.Second
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	ts := uint64(time.Hour)
	p.handle(ev(ts, "10.0.0.1:1", "10.0.0.2:80", 1, "GET /a HTTP/1.1\r\nUser-Agent: kube-probe/1.36\r\n\r\n"))
	p.handle(&capture.Event{TimestampNS: ts + 5, Src: netip.MustParseAddrPort("10.0.0.2:80"), Dst: netip.MustParseAddrPort("10.0.0.1:1"), Kind: capture.KindReset})
	p.handle(ev(ts, "10.0.0.1:2", "10.0.0.2:80", 1, "GET /b HTTP/1.1\r\nUser-Agent: kube-probe/1.36\r\n\r\n"))
	p.tick(ts+uint64(2*time.Second), capture.KernelStats{}, 0)
	var reasons []string
	for _, l := range lines(t, &out) {
		if l.Kind == "probe_failure" {
			reasons = append(reasons, l.Outcome+":"+l.Reason)
		}
	}
	if strings.Join(reasons, ",") != "reset:connection reset,timeout:no response before timeout" {
		t.Fatalf("reasons %v", reasons)
	}
}

// TestPipelineHungRequestsAreSlowWhileTheyHang: requests without an answer
// are judged by the pairer's sweep when they pass the route's threshold,
// not only when they time out, and are not counted twice.
func TestPipelineHungRequestsAreSlowWhileTheyHang(t *testing.T) {
	cfg := Defaults()
	cfg.Slow.MinSamples, cfg.Slow.Window, cfg.Slow.BaselinePeriod = 10, 10, time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	const s = "10.0.0.2:8080"
	ts := uint64(time.Hour)
	for i := range 30 {
		c := fmt.Sprintf("10.0.0.1:%d", 1000+i)
		p.handle(ev(ts, c, s, 1, "GET /api HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+uint64(time.Millisecond), s, c, 1, "HTTP/1.1 200 OK\r\n\r\n"))
		ts += uint64(time.Second)
	}
	ts += uint64(time.Minute) // a fresh interval
	for i := range 3 {
		p.handle(ev(ts, fmt.Sprintf("10.0.0.1:%d", 2000+i), s, 1, "GET /api HTTP/1.1\r\n\r\n"))
	}
	p.tick(ts+uint64(40*time.Millisecond), capture.KernelStats{}, 0) // below the 50 ms floor
	p.tick(ts+uint64(300*time.Millisecond), capture.KernelStats{}, 0)
	p.tick(ts+uint64(600*time.Millisecond), capture.KernelStats{}, 0)
	p.tick(ts+uint64(6*time.Second), capture.KernelStats{}, 0) // they time out
	var slow []line
	for _, l := range lines(t, &out) {
		if l.Kind == "slow_response" {
			slow = append(slow, l)
		}
	}
	if len(slow) != 1 || slow[0].Outcome != "pending" || slow[0].LatencyMS != 300 || slow[0].Route != "/api" {
		t.Fatalf("slow events %+v", slow)
	}
	if st := p.pairer.Stats(); st.Overdue != 6 || st.Timeouts != 3 {
		t.Fatalf("pair stats %+v", st)
	}
}

// TestPipelineProbeHungAndRefused: a probe that hangs is a failure at the
// kubelet's 1 s timeout (not at the 30 s request timeout), and a refused
// connection (SYN answered by RST) from a client that probed before is one.
func TestPipelineProbeHungAndRefused(t *testing.T) {
	cfg := Defaults()
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	const kubelet, s = "10.0.0.1", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	p.handle(ev(ts, kubelet+":1000", s, 1, "GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.36\r\n\r\n"))
	p.handle(ev(ts+uint64(time.Millisecond), s, kubelet+":1000", 1, "HTTP/1.1 200 OK\r\n\r\n"))
	ts += uint64(10 * time.Second)
	p.handle(ev(ts, kubelet+":1001", s, 1, "GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.36\r\n\r\n"))
	for i := 1; i <= 8; i++ { // the 250 ms tick
		p.tick(ts+uint64(i)*uint64(250*time.Millisecond), capture.KernelStats{}, 0)
	}
	// The server restarts and refuses the next probe: RST|ACK, seq 0.
	ts += uint64(10 * time.Second)
	rst := func(src, dst string, seq uint32) *capture.Event {
		return &capture.Event{TimestampNS: ts, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Seq: seq, Kind: capture.KindReset, TCPFlags: capture.FlagRST | capture.FlagACK}
	}
	p.handle(rst(s, kubelet+":1002", 0))
	p.handle(rst(s, kubelet+":1002", 0))     // seen at a second hook
	p.handle(rst(s, kubelet+":1003", 12345)) // a reset inside a connection: not a refusal
	p.handle(rst(s, "10.0.0.7:5000", 0))     // refusing someone who never probed
	var got []string
	for _, l := range lines(t, &out) {
		if l.Kind == "probe_failure" {
			got = append(got, fmt.Sprintf("%s %s %s %.0f", l.Outcome, l.Route, l.Reason, l.LatencyMS))
		}
	}
	want := "pending /healthz no response within the probe timeout (1s) 1000|refused /healthz connection refused 0"
	if strings.Join(got, "|") != want {
		t.Fatalf("probe failures\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

func TestConfigFromEnvironmentAndValidation(t *testing.T) {
	t.Setenv("RAUTA_INTERFACE", "eth0, veth1")
	t.Setenv("RAUTA_SLOW_MULTIPLIER", "3")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("RAUTA_MAX_CONNS", "lots")
	t.Setenv("RAUTA_READER_NICE", "10")
	var c Config
	fs := flagSet()
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-mode", "xdp"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Interfaces, "|") != "eth0|veth1" || c.Slow.Multiplier != 3 || c.OTLPEndpoint != "http://127.0.0.1:4318" || c.Mode != "xdp" || c.ReaderNice != 10 {
		t.Fatalf("config %+v", c)
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `RAUTA_MAX_CONNS="lots"`) {
		t.Fatalf("bad env not reported: %v", err)
	}
	if c.MaxConns != 65536 {
		t.Fatalf("bad env changed the default: %d", c.MaxConns)
	}

	d := Defaults()
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Fatalf("missing interface not reported: %v", err)
	}
	d.Interfaces = []string{"eth0"}
	// The defaults plus an interface are a configuration that runs: the
	// CLI starts from them.
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	d.Mode = "ebpf"
	d.RingBytes = 5000
	d.ReaderNice = -5 // raising priority is not the observer's business
	d.Spike.Alpha = 1
	err = d.Validate()
	for _, want := range []string{`mode "ebpf"`, "ring-bytes 5000", "reader-nice -5", "spike-alpha 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestPipelinedMessagesInOneSegment(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	p.handle(ev(ts, c, s, 1000, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\n\r\n"))
	p.handle(ev(ts+100, s, c, 5000, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	var got []string
	for _, l := range lines(t, &out) {
		if l.Type == "exchange" {
			got = append(got, l.Method+" "+l.Route+" "+strings.TrimSpace(fmt.Sprint(l.Status)))
		}
	}
	if strings.Join(got, ",") != "GET /a 200,POST /b 201,GET /c 404" {
		t.Fatalf("exchanges %v", got)
	}
	if c := p.counters(); c.RequestMalformed+c.ResponseMalformed != 0 {
		t.Fatalf("body bytes parsed as messages: %+v", c)
	}
}

// ackd gives a request and its response the ACK flag and the sequence and
// acknowledgment numbers of the first exchange of a keep-alive
// connection; body is the bytes of the response body not in resp.Data.
func ackd(req, resp *capture.Event, body int) {
	req.TCPFlags, resp.TCPFlags = capture.FlagACK|capture.FlagPSH, capture.FlagACK|capture.FlagPSH
	req.Seq, req.Ack = 1000, 5000
	resp.Seq, resp.Ack = 5000, 1000+uint32(len(req.Data))
	resp.PayloadLen = uint32(len(resp.Data) + body)
}

// next moves req and resp to the following exchange on their connection.
func next(req, resp *capture.Event) {
	req.Seq += uint32(len(req.Data))
	req.Ack = resp.Seq + resp.PayloadLen
	resp.Seq, resp.Ack = req.Ack, req.Seq+uint32(len(req.Data))
}

func BenchmarkPipelineExchange(b *testing.B) {
	cfg := Defaults()
	var p *pipeline
	prom := export.NewProm(func() export.Counters { return p.counters() })
	p = newPipeline(context.Background(), pipelineOptions{cfg: cfg, resolver: enrich.None{}, prom: prom, json: export.NewJSON(io.Discard)})
	req := ev(0, "10.0.0.1:40000", "10.0.0.2:8080", 1, "GET / HTTP/1.1\r\nHost: 10.251.77.2:8080\r\nUser-Agent: wrk\r\n\r\n")
	resp := ev(0, "10.0.0.2:8080", "10.0.0.1:40000", 1, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 20:00:00 GMT\r\nContent-Length: 1024\r\n\r\nxxxxxxxx")
	// Real segments carry the ACK flag: pairing goes by sequence and
	// acknowledgment numbers as on a keep-alive connection.
	ackd(req, resp, 1024-8) // Content-Length 1024, 8 bytes captured
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		i++
		next(req, resp)
		// Varied latencies, as on real traffic (the slow-response
		// baseline's p99 is computed over them).
		req.TimestampNS, resp.TimestampNS = uint64(i)*1000, uint64(i)*1000+500+uint64(i*7919%100000)
		p.handle(req)
		p.handle(resp)
	}
}

// TestPipelineSteadyStateAllocatesNothing: once a connection, route and
// label set have been seen, an exchange allocates nothing.
func TestPipelineSteadyStateAllocatesNothing(t *testing.T) {
	cfg := Defaults()
	var p *pipeline
	prom := export.NewProm(func() export.Counters { return p.counters() })
	p = newPipeline(context.Background(), pipelineOptions{cfg: cfg, resolver: enrich.None{}, prom: prom, json: export.NewJSON(io.Discard)})
	req := ev(0, "10.0.0.1:40000", "10.0.0.2:8080", 1, "GET /users/42 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8\r\n\r\n")
	resp := ev(0, "10.0.0.2:8080", "10.0.0.1:40000", 1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	ackd(req, resp, 0)
	i := uint32(0)
	exchange := func() {
		i++
		next(req, resp)
		req.TimestampNS, resp.TimestampNS = uint64(i)*1000, uint64(i)*1000+500+uint64(i%97)
		p.handle(req)
		p.handle(resp)
	}
	for range 2000 { // fill the slow-response window past its minimum
		exchange()
	}
	if n := testing.AllocsPerRun(1000, exchange); n != 0 {
		t.Fatalf("%v allocations per exchange in steady state, want 0", n)
	}
	if st := p.pairer.Stats(); st.Exchanges != 2000+1001 || st.Unpaired != 0 || st.Ambiguous != 0 {
		t.Fatalf("%d exchanges (want %d), %d unpaired, %d ambiguous", st.Exchanges, 2000+1001, st.Unpaired, st.Ambiguous)
	}
}

package observe

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/observe/enrich"
	"github.com/false-systems/rauta/internal/observe/export"
	"github.com/false-systems/rauta/internal/observe/route"
)

// traceSink collects the spans POSTed to /v1/traces.
type traceSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []*commonpb.KeyValue
}

func (s *traceSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
			s.res = rs.Resource.Attributes
		}
	}
}

func stringAttr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// TestPipelineSpansFromTraceparent: captured requests carrying a sampled
// traceparent become spans in the caller's trace, child of the caller's
// span, named by the learned route, timed by the kernel timestamps, with
// the enriched service as resource; requests without one (ratio 0) or with
// an unsampled one make none.
func TestPipelineSpansFromTraceparent(t *testing.T) {
	sink := &traceSink{}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := export.NewTracer(export.TraceOptions{Endpoint: rcv.URL, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p, _ := newTestPipeline(t, Defaults(), &out)
	p.traces = tr

	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
	heads := []string{
		"GET /users/42 HTTP/1.1\r\nHost: shop\r\ntraceparent: " + caller + "01\r\n\r\n",
		"GET /users/43 HTTP/1.1\r\nHost: shop\r\n\r\n",
		"GET /users/44 HTTP/1.1\r\nHost: shop\r\ntraceparent: " + caller + "00\r\n\r\n",
	}
	for i, h := range heads {
		client := fmt.Sprintf("10.0.0.1:%d", 40000+i) // one connection each
		req := ev(uint64(i+1)*10_000_000, client, "10.0.0.2:8080", 1, h)
		resp := ev(uint64(i+1)*10_000_000+3_000_000, "10.0.0.2:8080", client, 1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		ackd(req, resp, 0)
		p.handle(req)
		p.handle(resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.pairer.Stats(); st.Exchanges != 3 {
		t.Fatalf("%d exchanges, want 3", st.Exchanges)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.spans) != 1 {
		t.Fatalf("%d spans, want 1 (only the sampled traceparent)", len(sink.spans))
	}
	sp := sink.spans[0]
	if hex.EncodeToString(sp.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" || hex.EncodeToString(sp.ParentSpanId) != "00f067aa0ba902b7" {
		t.Fatalf("trace %x parent %x", sp.TraceId, sp.ParentSpanId)
	}
	if want := "GET " + route.Template("/users/42"); sp.Name != want || sp.Name == "GET /users/42" {
		t.Fatalf("name %q, want %q", sp.Name, want)
	}
	if start, end := p.clock.at(10_000_000), p.clock.at(13_000_000); sp.StartTimeUnixNano != uint64(start.UnixNano()) || sp.EndTimeUnixNano != uint64(end.UnixNano()) {
		t.Fatalf("times %d..%d, want %d..%d", sp.StartTimeUnixNano, sp.EndTimeUnixNano, start.UnixNano(), end.UnixNano())
	}
	if stringAttr(sink.res, "service.name") != "web" || stringAttr(sink.res, "k8s.pod.name") != "web-1" || stringAttr(sink.res, "k8s.namespace.name") != "shop" {
		t.Fatalf("resource %v", sink.res)
	}
	if c := p.counters(); c.Spans.Exported != 0 {
		t.Fatalf("counters read spans %+v without a live exporter", c.Spans)
	}
	box := &counterBox{spans: tr}
	if c := box.load(); c.Spans.Exported != 1 {
		t.Fatalf("counters %+v, want 1 exported", c.Spans)
	}
}

// TestPipelineTracingAllocatesNothing: with spans exported, an exchange
// whose request carries a sampled traceparent still allocates nothing on
// the pipeline goroutine (nor does the exporter goroutine while it fills a
// batch).
func TestPipelineTracingAllocatesNothing(t *testing.T) {
	tr, err := export.NewTracer(export.TraceOptions{Endpoint: "http://127.0.0.1:1", QueueSize: 64, BatchSize: 8192, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background()) //nolint:errcheck // nothing reachable to send to
	var p *pipeline
	prom := export.NewProm(func() export.Counters { return p.counters() })
	p = newPipeline(context.Background(), pipelineOptions{cfg: Defaults(), resolver: enrich.None{}, prom: prom, traces: tr, json: export.NewJSON(io.Discard)})
	req := ev(0, "10.0.0.1:40000", "10.0.0.2:8080", 1, "GET /users/42 HTTP/1.1\r\nHost: shop\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n")
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
	for range 2000 {
		exchange()
	}
	if n := testing.AllocsPerRun(1000, exchange); n != 0 {
		t.Fatalf("%v allocations per traced exchange, want 0", n)
	}
}

// TestTraceFlags: spans are on with an endpoint, the ratio defaults to 0
// (no invented traces), the environment sets the defaults, and Validate
// rejects a ratio outside [0, 1] and an empty queue.
func TestTraceFlags(t *testing.T) {
	var c Config
	if err := bindFlags(&c, nil); err != nil {
		t.Fatal(err)
	}
	if !c.Traces || c.TraceSampleRatio != 0 || c.TraceQueueSize != 2048 {
		t.Fatalf("defaults: traces %v ratio %v queue %d", c.Traces, c.TraceSampleRatio, c.TraceQueueSize)
	}
	t.Setenv("RAUTA_TRACE_SAMPLE_RATIO", "0.25")
	t.Setenv("RAUTA_TRACE_QUEUE_SIZE", "16")
	t.Setenv("RAUTA_TRACES", "false")
	c = Config{}
	if err := bindFlags(&c, []string{"-interface", "lo"}); err != nil {
		t.Fatal(err)
	}
	if c.Traces || c.TraceSampleRatio != 0.25 || c.TraceQueueSize != 16 {
		t.Fatalf("from the environment: traces %v ratio %v queue %d", c.Traces, c.TraceSampleRatio, c.TraceQueueSize)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-trace-sample-ratio", "1.5"}, {"-trace-sample-ratio", "-0.1"}, {"-trace-queue-size", "0"}} {
		c = Config{}
		if err := bindFlags(&c, append([]string{"-interface", "lo"}, args...)); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func bindFlags(c *Config, args []string) error {
	fs := flagSet()
	c.RegisterFlags(fs)
	return fs.Parse(args)
}

// BenchmarkPipelineExchangeTraced is BenchmarkPipelineExchange with a
// sampled traceparent on every request and spans exported to a collector
// that never answers: the exporter goroutine stays blocked in its first
// POST, so what is measured is the pipeline goroutine's own cost (parse
// the header, decide, build the span and queue or drop it).
// BenchmarkSpanExport (export) measures the exporter goroutine's.
func BenchmarkPipelineExchangeTraced(b *testing.B) {
	hold := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hold }))
	defer stalled.Close()
	tr, err := export.NewTracer(export.TraceOptions{Endpoint: stalled.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		close(hold) // then what is queued goes out, within a bound
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	}()
	var p *pipeline
	prom := export.NewProm(func() export.Counters { return p.counters() })
	p = newPipeline(context.Background(), pipelineOptions{cfg: Defaults(), resolver: enrich.None{}, prom: prom, traces: tr, json: export.NewJSON(io.Discard)})
	req := ev(0, "10.0.0.1:40000", "10.0.0.2:8080", 1, "GET / HTTP/1.1\r\nHost: 10.251.77.2:8080\r\nUser-Agent: wrk\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n")
	resp := ev(0, "10.0.0.2:8080", "10.0.0.1:40000", 1, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 20:00:00 GMT\r\nContent-Length: 1024\r\n\r\nxxxxxxxx")
	ackd(req, resp, 1024-8)
	i := uint32(0)
	exchange := func() {
		i++
		next(req, resp)
		req.TimestampNS, resp.TimestampNS = uint64(i)*1000, uint64(i)*1000+500+uint64(i*7919%100000)
		p.handle(req)
		p.handle(resp)
	}
	for range 4096 { // past the queue: the steady state drops
		exchange()
	}
	b.ReportAllocs()
	for b.Loop() {
		exchange()
	}
	if tr.Stats().Dropped == 0 {
		b.Fatal("no span was dropped: the exporter was not stalled")
	}
}

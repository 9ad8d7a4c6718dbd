package export

import (
	"context"
	"encoding/hex"
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

	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/pair"
	"github.com/false-systems/rauta/internal/tracecontext"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// spanSink is an OTLP/HTTP traces receiver on loopback.
type spanSink struct {
	mu     sync.Mutex
	paths  []string
	res    []*tracepb.ResourceSpans
	status int           // answer; 0 means 200
	hold   chan struct{} // when set, requests wait for it to close
}

func (s *spanSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.hold != nil {
		<-s.hold
	}
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	s.res = append(s.res, req.ResourceSpans...)
	status := s.status
	s.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
	}
}

// spans returns every span received with its resource's attributes.
func (s *spanSink) spans() (out []*tracepb.Span, res [][]*commonpb.KeyValue, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range s.res {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				out = append(out, sp)
				res = append(res, rs.Resource.Attributes)
				scopes = append(scopes, ss.Scope.GetName())
			}
		}
	}
	return out, res, scopes
}

func traced(status int, outcome pair.Outcome, tp string) *detect.Observation {
	o := observation(status, outcome, 3*time.Millisecond)
	o.Host, o.UserAgent, o.Version, o.Pod = "shop.example:8443", "curl/8", "1.1", "web-7d9f"
	if tp != "" {
		o.Trace, _ = tracecontext.Parse(tp)
		o.TraceState = "congo=t61rcWkgMzE"
	}
	return o
}

func closeTracer(t *testing.T, tr *Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSpansReachReceiver: an exchange with a sampled traceparent becomes
// one SERVER span in the caller's trace, child of the caller's span, with
// the exchange's times, the semantic-convention attributes, the route in
// its name and the observed service as its resource; an unsampled one, and
// one without traceparent at ratio 0, make none.
func TestSpansReachReceiver(t *testing.T) {
	sink := &spanSink{}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := NewTracer(TraceOptions{Endpoint: rcv.URL + "/", NodeName: "node-1", FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ok := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	failed := traced(503, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	reset := traced(0, pair.Reset, "00-"+callerTrace+"-"+callerSpan+"-01")
	tr.Record(ok, "web")
	tr.Record(failed, "web")
	tr.Record(reset, "web")
	tr.Record(traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-00"), "web") // not sampled
	tr.Record(traced(200, pair.Complete, ""), "web")                                     // ratio 0
	closeTracer(t, tr)

	spans, res, scopes := sink.spans()
	if len(spans) != 3 {
		t.Fatalf("%d spans received, want 3", len(spans))
	}
	if st := tr.Stats(); st.Exported != 3 || st.Failed != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 3 exported", st)
	}
	if sink.paths[0] != "/v1/traces" {
		t.Fatalf("POSTed to %s, want /v1/traces", sink.paths[0])
	}
	sp := spans[0]
	if hex.EncodeToString(sp.TraceId) != callerTrace || hex.EncodeToString(sp.ParentSpanId) != callerSpan {
		t.Fatalf("trace %x parent %x, want the caller's %s %s", sp.TraceId, sp.ParentSpanId, callerTrace, callerSpan)
	}
	if len(sp.SpanId) != 8 || hex.EncodeToString(sp.SpanId) == callerSpan || string(sp.SpanId) == string(spans[1].SpanId) {
		t.Fatalf("span id %x: want a new one per span", sp.SpanId)
	}
	if sp.Kind != tracepb.Span_SPAN_KIND_SERVER || sp.Name != "GET /users/:num" {
		t.Fatalf("kind %v name %q, want SERVER %q", sp.Kind, sp.Name, "GET /users/:num")
	}
	end := uint64(ok.Time.UnixNano())
	if sp.EndTimeUnixNano != end || sp.StartTimeUnixNano != end-uint64(3*time.Millisecond) {
		t.Fatalf("times %d..%d, want %d..%d", sp.StartTimeUnixNano, sp.EndTimeUnixNano, end-uint64(3*time.Millisecond), end)
	}
	if sp.TraceState != "congo=t61rcWkgMzE" || sp.Flags != 0x301 || sp.Status != nil { // sampled, remote parent
		t.Fatalf("tracestate %q flags %x status %v", sp.TraceState, sp.Flags, sp.Status)
	}
	want := map[string]any{
		"http.request.method": "GET", "http.response.status_code": int64(200), "http.route": "/users/:num",
		"url.path": "/users/1", "server.address": "shop.example", "server.port": int64(8443),
		"client.address": "10.0.0.1", "client.port": int64(5000), "network.local.address": "10.0.0.2",
		"network.local.port": int64(80), "network.protocol.version": "1.1", "user_agent.original": "curl/8",
		"rauta.observer": true,
	}
	for k, v := range want {
		a := attr(sp.Attributes, k)
		var got any
		switch {
		case a == nil:
		case a.GetStringValue() != "":
			got = a.GetStringValue()
		case k == "rauta.observer":
			got = a.GetBoolValue()
		default:
			got = a.GetIntValue()
		}
		if got != v {
			t.Errorf("attribute %s = %v, want %v", k, got, v)
		}
	}
	if attr(sp.Attributes, "error.type") != nil {
		t.Error("a 200 has error.type")
	}
	for i, w := range []string{"503", "reset"} {
		s := spans[i+1]
		if got := attr(s.Attributes, "error.type").GetStringValue(); got != w || s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("span %d: error.type %q status %v, want %q and ERROR", i+1, got, s.Status, w)
		}
	}
	if attr(spans[2].Attributes, "http.response.status_code") != nil {
		t.Error("a reset has a status code")
	}
	r := res[0]
	if attr(r, "service.name").GetStringValue() != "web" || attr(r, "k8s.namespace.name").GetStringValue() != "shop" ||
		attr(r, "k8s.pod.name").GetStringValue() != "web-7d9f" || attr(r, "k8s.node.name").GetStringValue() != "node-1" {
		t.Fatalf("resource %v", r)
	}
	if scopes[0] != ScopeName {
		t.Fatalf("scope %q, want %q", scopes[0], ScopeName)
	}
}

// TestSpanRootsByRatioAndOtherMethods: with ratio 1 an exchange without
// traceparent starts a trace (no parent, sampled); a method outside the
// standard nine is _OTHER, named "HTTP {route}", its original kept; a Host
// without a port takes the socket's.
func TestSpanRootsByRatioAndOtherMethods(t *testing.T) {
	sink := &spanSink{}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := NewTracer(TraceOptions{Endpoint: rcv.URL, SampleRatio: 1, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o := traced(200, pair.Complete, "")
	o.Method, o.Host = "PURGE", "shop"
	tr.Record(o, "web")
	o.Unparsed = true // an unparsed request has nothing to name a span by
	tr.Record(o, "web")
	closeTracer(t, tr)
	spans, _, _ := sink.spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	sp := spans[0]
	if len(sp.ParentSpanId) != 0 || len(sp.TraceId) != 16 || sp.Flags != 0x101 || sp.TraceState != "" {
		t.Fatalf("root span: parent %x trace %x flags %x state %q", sp.ParentSpanId, sp.TraceId, sp.Flags, sp.TraceState)
	}
	if sp.Name != "HTTP /users/:num" || attr(sp.Attributes, "http.request.method").GetStringValue() != "_OTHER" ||
		attr(sp.Attributes, "http.request.method_original").GetStringValue() != "PURGE" {
		t.Fatalf("name %q attributes %v", sp.Name, sp.Attributes)
	}
	if attr(sp.Attributes, "server.address").GetStringValue() != "shop" || attr(sp.Attributes, "server.port").GetIntValue() != 80 {
		t.Fatalf("server %v", sp.Attributes)
	}
}

// TestSpanQueueBoundedAndDropsCounted: against a collector that does not
// answer, Record returns at once; past the queue spans are dropped and
// counted, and every span is accounted for once the collector answers.
func TestSpanQueueBoundedAndDropsCounted(t *testing.T) {
	sink := &spanSink{hold: make(chan struct{})}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := NewTracer(TraceOptions{Endpoint: rcv.URL, QueueSize: 4, BatchSize: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	o := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	start := time.Now()
	for range 100 {
		tr.Record(o, "web")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("100 Records took %v against a stalled collector", d)
	}
	// The queue holds 4, and the export goroutine at most one more (the
	// batch it is sending).
	if d := tr.Stats().Dropped; d < 95 || d > 96 {
		t.Fatalf("%d dropped, want 95 or 96", d)
	}
	close(sink.hold)
	closeTracer(t, tr)
	if st := tr.Stats(); st.Exported+st.Dropped != 100 || st.Failed != 0 {
		t.Fatalf("stats %+v: want exported+dropped = 100", st)
	}
	if spans, _, _ := sink.spans(); uint64(len(spans)) != tr.Stats().Exported {
		t.Fatalf("receiver has %d spans, exported %d", len(spans), tr.Stats().Exported)
	}
}

// TestSpanExportFailureCounted: a collector answering 500 loses the batch,
// counted as failed.
func TestSpanExportFailureCounted(t *testing.T) {
	sink := &spanSink{status: http.StatusInternalServerError}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := NewTracer(TraceOptions{Endpoint: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	o := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	tr.Record(o, "web")
	tr.Record(o, "web")
	closeTracer(t, tr)
	if st := tr.Stats(); st.Failed != 2 || st.Exported != 0 {
		t.Fatalf("stats %+v, want 2 failed", st)
	}
}

// TestRecordAllocatesNothing: deciding, building and queueing a span (or
// dropping it) costs the pipeline goroutine no allocation.
func TestRecordAllocatesNothing(t *testing.T) {
	tr, err := NewTracer(TraceOptions{Endpoint: "http://127.0.0.1:1", QueueSize: 1, FlushInterval: time.Hour, BatchSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background()) //nolint:errcheck // nothing to send
	sampled := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	none := traced(200, pair.Complete, "")
	if n := testing.AllocsPerRun(1000, func() { tr.Record(sampled, "web"); tr.Record(none, "web") }); n != 0 {
		t.Fatalf("%v allocations per Record", n)
	}
}

func TestTracerRejectsBadOptions(t *testing.T) {
	for _, o := range []TraceOptions{{Endpoint: "collector:4318"}, {Endpoint: "http://c:4318", SampleRatio: 2}} {
		if _, err := NewTracer(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestSpanCountersExported(t *testing.T) {
	p := NewProm(func() Counters { return Counters{Spans: SpanStats{Exported: 5, Failed: 2, Dropped: 7}} })
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				got[mf.GetName()] = m.Counter.GetValue()
			}
		}
	}
	for name, v := range map[string]float64{"rauta_observer_spans_exported_total": 5, "rauta_observer_spans_failed_total": 2, "rauta_observer_spans_dropped_total": 7} {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}

// BenchmarkSpanExport is the exporter goroutine's cost per span: building
// the OTLP messages of a 512-span batch and marshalling them.
func BenchmarkSpanExport(b *testing.B) {
	tr := &Tracer{opts: TraceOptions{NodeName: "n"}}
	o := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
	batch := make([]span, 512)
	for i := range batch {
		batch[i] = spanOf(o, o.Trace.TraceID, o.Trace.SpanID, "web")
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(tr.request(batch)) == 0 {
			b.Fatal("empty request")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/512, "ns/span")
}

// TestGRPCSpanAttributes: a gRPC exchange over h2c carries the RPC
// semantic conventions' attributes, and a server-side gRPC status
// (UNAVAILABLE) makes the span an error with its name as error.type,
// while a caller's one (NOT_FOUND) does not.
func TestGRPCSpanAttributes(t *testing.T) {
	sink := &spanSink{}
	rcv := httptest.NewServer(sink)
	defer rcv.Close()
	tr, err := NewTracer(TraceOptions{Endpoint: rcv.URL + "/", FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []uint8{14, 5} {
		o := traced(200, pair.Complete, "00-"+callerTrace+"-"+callerSpan+"-01")
		o.Method, o.Target, o.Route, o.Version, o.GRPC, o.GRPCStatus = "POST", "/shop.Cart/Add", "/shop.Cart/Add", "2", true, code
		tr.Record(o, "cart")
	}
	closeTracer(t, tr)
	spans, _, _ := sink.spans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, want := range []struct {
		code      int64
		errorType string
	}{{14, "UNAVAILABLE"}, {5, ""}} {
		sp := spans[i]
		if attr(sp.Attributes, "rpc.system").GetStringValue() != "grpc" || attr(sp.Attributes, "rpc.service").GetStringValue() != "shop.Cart" ||
			attr(sp.Attributes, "rpc.method").GetStringValue() != "Add" || attr(sp.Attributes, "rpc.grpc.status_code").GetIntValue() != want.code ||
			attr(sp.Attributes, "network.protocol.version").GetStringValue() != "2" {
			t.Errorf("span %d attributes %v", i, sp.Attributes)
		}
		if got := attr(sp.Attributes, "error.type").GetStringValue(); got != want.errorType || (sp.Status != nil) != (want.errorType != "") {
			t.Errorf("span %d: error.type %q status %v, want %q", i, got, sp.Status, want.errorType)
		}
	}
}

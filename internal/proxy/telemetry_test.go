package proxy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/observe/export"
)

// statusBackend answers every request with the status in its path's last
// segment (/s/201 -> 201) and records the trace headers it received.
type statusBackend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newStatusBackend(t *testing.T) *statusBackend {
	t.Helper()
	b := &statusBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r.Header.Clone())
		b.mu.Unlock()
		code := 200
		if i := strings.LastIndexByte(r.URL.Path, '/'); i >= 0 {
			if c, err := parseCode(r.URL.Path[i+1:]); err == nil {
				code = c
			}
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func parseCode(s string) (int, error) {
	var c int
	if len(s) != 3 {
		return 0, io.EOF
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, io.EOF
		}
		c = c*10 + int(s[i]-'0')
	}
	return c, nil
}

func (b *statusBackend) last(t *testing.T) http.Header {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("the backend saw no request")
	}
	return b.seen[len(b.seen)-1]
}

func (b *statusBackend) all() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.seen...)
}

func (b *statusBackend) backend(t *testing.T) ir.Backend {
	return ir.Backend{Name: "default/status:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, b.srv.Listener.Addr().String())}}
}

// otlpReceiver is an OTLP/HTTP traces endpoint that decodes what it is
// sent, as a collector would.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []string // service.name of each batch
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	o := &otlpReceiver{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					o.res = append(o.res, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// waitSpans waits (bounded) until n spans of trace tid arrived.
func (o *otlpReceiver) waitSpans(t *testing.T, tid []byte, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		var got []*tracepb.Span
		for _, s := range o.spans {
			if bytes.Equal(s.TraceId, tid) {
				got = append(got, s)
			}
		}
		o.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *otlpReceiver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.spans)
}

func tracingOptions(o *otlpReceiver, ratio float64) TracingOptions {
	return TracingOptions{Endpoint: o.srv.URL + "/v1/traces", SampleRatio: ratio, FlushInterval: 20 * time.Millisecond, ServiceName: "gw-test"}
}

// TestMetricsScrapedFromRunningProxy: after requests through both engines,
// a scrape of the registry shows the semantic-convention series with the
// exact status codes (201 and 503 are not classes), the rule name as
// http_route, and the per-backend client histogram.
func TestMetricsScrapedFromRunningProxy(t *testing.T) {
	be := newStatusBackend(t)
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("HTTPRoute/default/web/rule/0", "/s", be.backend(t))))}}
	p := startProxy(t, snap, Options{})
	cl := newClient()
	for _, path := range []string{"/s/201", "/s/201", "/s/503"} {
		resp, err := cl.Get(p.url(t, "l") + path) // the HTTP/1.1 engine
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A chunked body is net/http's path.
	req := mustReq(t, "POST", p.url(t, "l")+"/s/202", io.MultiReader(strings.NewReader("x")))
	req.ContentLength = -1
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`http_server_request_duration_seconds_count{error_type="",gateway="default/gw",http_request_method="GET",http_response_status_code="201",http_route="HTTPRoute/default/web/rule/0",network_protocol_version="1.1",url_scheme="http"} 2`,
		`http_server_request_duration_seconds_count{error_type="503",gateway="default/gw",http_request_method="GET",http_response_status_code="503",http_route="HTTPRoute/default/web/rule/0",network_protocol_version="1.1",url_scheme="http"} 1`,
		`http_server_request_duration_seconds_count{error_type="",gateway="default/gw",http_request_method="POST",http_response_status_code="202",http_route="HTTPRoute/default/web/rule/0",network_protocol_version="1.1",url_scheme="http"} 1`,
		`http_server_response_body_size_bytes_sum{error_type="",gateway="default/gw",http_request_method="GET",http_response_status_code="201",http_route="HTTPRoute/default/web/rule/0",network_protocol_version="1.1",url_scheme="http"} 10`,
		`http_client_request_duration_seconds_count{backend="default/status:80",error_type="",http_request_method="GET",http_response_status_code="201"} 2`,
		`http_client_request_duration_seconds_count{backend="default/status:80",error_type="",http_request_method="POST",http_response_status_code="202"} 1`,
		`http_client_response_body_size_bytes_sum{backend="default/status:80",error_type="503",http_request_method="GET",http_response_status_code="503"} 5`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks\n  %s", want)
		}
	}
	// The pooled backend connection is idle between requests.
	if !strings.Contains(text, `http_client_open_connections{http_connection_state="active"} 0`) ||
		!regexp.MustCompile(`(?m)^http_client_open_connections\{http_connection_state="idle"\} [1-9]`).MatchString(text) {
		t.Errorf("open connections: want 0 active and some idle:\n%s", grepLines(text, "open_connections"))
	}
	for _, gone := range []string{"rauta_requests_total", "rauta_request_duration_seconds", "status_class"} {
		if strings.Contains(text, gone) {
			t.Errorf("scrape still has %s", gone)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(text, "http_"))
	}
}

// TestMetricsConnectErrorType: an attempt that gets no response is
// observed with error_type and no status.
func TestMetricsConnectErrorType(t *testing.T) {
	dead := ir.Backend{Name: "default/dead:80", Weight: 1, Endpoints: []ir.Endpoint{closedPort(t)}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("dead", "/", dead)))}}, Options{})
	resp, err := newClient().Get(p.url(t, "l") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := p.histogramCount(t, "http_client_request_duration_seconds", "backend", "default/dead:80", "error_type", "connect", "http_response_status_code", ""); got != 1 {
		t.Errorf("connect failure observed %v times with error_type=connect, want 1", got)
	}
	if got := p.histogramCount(t, "http_server_request_duration_seconds", "http_route", "dead", "http_response_status_code", "502"); got != 1 {
		t.Errorf("server histogram 502 count %v, want 1", got)
	}
}

// TestBucketsMatchObserver: the gateway's and the observer's histograms
// share buckets, so the same request can be compared in both.
func TestBucketsMatchObserver(t *testing.T) {
	if !equalFloats(durationBuckets, export.DurationBuckets) || !equalFloats(sizeBuckets, export.SizeBuckets) {
		t.Errorf("buckets differ from internal/observe/export: %v %v vs %v %v", durationBuckets, sizeBuckets, export.DurationBuckets, export.SizeBuckets)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// TestTracePropagation: a sampled client traceparent reaches the backend
// with the same trace ID and the gateway's client span as parent; the
// OTLP receiver gets a server span (child of the client's span) and a
// client span (child of the server span) whose ID the backend received.
// Both engines: a GET is the HTTP/1.1 engine's, a chunked POST net/http's.
func TestTracePropagation(t *testing.T) {
	be := newStatusBackend(t)
	rcv := newOTLPReceiver(t)
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("traced", "/", be.backend(t))))}}
	p := startProxy(t, snap, Options{Tracing: tracingOptions(rcv, 0)})
	cl := newClient()
	for i, engine := range []string{"h1 engine", "net/http"} {
		tid := strings.Replace(clientTraceID, "4bf9", "4bf"+string(rune('0'+i)), 1)
		var req *http.Request
		if engine == "h1 engine" {
			req = mustReq(t, "GET", p.url(t, "l")+"/a/200", nil)
		} else {
			req = mustReq(t, "POST", p.url(t, "l")+"/a/200", io.MultiReader(strings.NewReader("body")))
			req.ContentLength = -1
		}
		req.Header.Set("Traceparent", "00-"+tid+"-"+clientSpanID+"-01")
		req.Header.Set("Tracestate", "vendor=value")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		got := be.last(t)
		tp := got.Get("Traceparent")
		gtid, gsid, flags, ok := parseTraceparent(tp)
		if !ok || hex.EncodeToString(gtid[:]) != tid || flags != 1 {
			t.Fatalf("%s: backend got traceparent %q, want trace %s sampled", engine, tp, tid)
		}
		if hex.EncodeToString(gsid[:]) == clientSpanID {
			t.Errorf("%s: backend got the client's span as parent; want the gateway's client span", engine)
		}
		if len(got["Traceparent"]) != 1 || got.Get("Tracestate") != "vendor=value" {
			t.Errorf("%s: backend got traceparent %q and tracestate %q", engine, got["Traceparent"], got.Get("Tracestate"))
		}

		tidb, _ := hex.DecodeString(tid)
		spans := rcv.waitSpans(t, tidb, 2)
		var server, client *tracepb.Span
		for _, s := range spans {
			switch s.Kind {
			case tracepb.Span_SPAN_KIND_SERVER:
				server = s
			case tracepb.Span_SPAN_KIND_CLIENT:
				client = s
			}
		}
		if server == nil || client == nil || len(spans) != 2 {
			t.Fatalf("%s: received %d spans of the trace (server %v, client %v), want one of each", engine, len(spans), server != nil, client != nil)
		}
		if hex.EncodeToString(server.ParentSpanId) != clientSpanID {
			t.Errorf("%s: server span parent %x, want the client's %s", engine, server.ParentSpanId, clientSpanID)
		}
		if !bytes.Equal(client.ParentSpanId, server.SpanId) {
			t.Errorf("%s: client span parent %x, want the server span %x", engine, client.ParentSpanId, server.SpanId)
		}
		if !bytes.Equal(client.SpanId, gsid[:]) {
			t.Errorf("%s: backend's parent %x is not the client span %x", engine, gsid, client.SpanId)
		}
		attrs := spanAttrs(server)
		if server.Name != req.Method+" traced" || attrs["http.route"] != "traced" || attrs["http.response.status_code"] != "200" ||
			attrs["http.request.method"] != req.Method || attrs["url.path"] != "/a/200" || attrs["http.request.header.x-request-id"] != got.Get("X-Request-Id") {
			t.Errorf("%s: server span %q attributes %v", engine, server.Name, attrs)
		}
		if ca := spanAttrs(client); ca["rauta.backend"] != "default/status:80" || ca["http.response.status_code"] != "200" || ca["server.address"] != "127.0.0.1" {
			t.Errorf("%s: client span attributes %v", engine, ca)
		}
		if server.StartTimeUnixNano > client.StartTimeUnixNano || client.EndTimeUnixNano > server.EndTimeUnixNano {
			t.Errorf("%s: client span not within the server span", engine)
		}
	}
	rcv.mu.Lock()
	if len(rcv.res) == 0 || rcv.res[0] != "gw-test" {
		t.Errorf("resource service.name %v, want gw-test", rcv.res)
	}
	rcv.mu.Unlock()
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes {
		if sv, ok := a.GetValue().GetValue().(*commonpb.AnyValue_StringValue); ok {
			m[a.Key] = sv.StringValue
			continue
		}
		m[a.Key] = strconv.FormatInt(a.GetValue().GetIntValue(), 10)
	}
	return m
}

// TestTraceUnsampled: an unsampled traceparent passes to the backend
// unchanged and no span is exported; without a traceparent and with ratio
// 0 the backend gets none.
func TestTraceUnsampled(t *testing.T) {
	be := newStatusBackend(t)
	rcv := newOTLPReceiver(t)
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(t))))}}
	p := startProxy(t, snap, Options{Tracing: tracingOptions(rcv, 0)})
	cl := newClient()
	tp := "00-" + clientTraceID + "-" + clientSpanID + "-00"
	req := mustReq(t, "GET", p.url(t, "l")+"/x/200", nil)
	req.Header.Set("Traceparent", tp)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := be.last(t)["Traceparent"]; len(got) != 1 || got[0] != tp {
		t.Errorf("backend got traceparent %q, want the client's %q unchanged", got, tp)
	}
	resp, err = cl.Get(p.url(t, "l") + "/y/200")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := be.last(t)["Traceparent"]; got != nil {
		t.Errorf("unsampled root: backend got traceparent %q, want none", got)
	}
	time.Sleep(100 * time.Millisecond) // five flush intervals
	if n := rcv.count(); n != 0 {
		t.Errorf("%d spans exported for unsampled requests", n)
	}
}

// TestTraceRootSampledAndRetries: with ratio 1 a request without a
// traceparent starts a trace; a route retry makes one client span per
// attempt, each backend attempt seeing its own span as parent.
func TestTraceRootSampledAndRetries(t *testing.T) {
	be := newStatusBackend(t)
	rcv := newOTLPReceiver(t)
	rt := prefixRoute("retried", "/", be.backend(t))
	rt.Retry = &ir.Retry{Codes: []int{503}, Attempts: 2, Backoff: time.Millisecond}
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(rt))}}
	p := startProxy(t, snap, Options{Tracing: tracingOptions(rcv, 1)})
	resp, err := newClient().Get(p.url(t, "l") + "/z/503")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := be.all()
	if len(seen) != 3 {
		t.Fatalf("backend saw %d attempts, want 3", len(seen))
	}
	var tid [16]byte
	parents := map[[8]byte]bool{}
	for i, h := range seen {
		gtid, gsid, _, ok := parseTraceparent(h.Get("Traceparent"))
		if !ok || (i > 0 && gtid != tid) {
			t.Fatalf("attempt %d: traceparent %q", i, h.Get("Traceparent"))
		}
		tid = gtid
		parents[gsid] = true
	}
	if len(parents) != 3 {
		t.Errorf("the attempts share parent spans: %d distinct of 3", len(parents))
	}
	spans := rcv.waitSpans(t, tid[:], 4)
	clients := 0
	for _, s := range spans {
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			if len(s.ParentSpanId) != 0 {
				t.Errorf("root server span has parent %x", s.ParentSpanId)
			}
			if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("server span of a 503 has status %v", s.Status)
			}
		case tracepb.Span_SPAN_KIND_CLIENT:
			var sid [8]byte
			copy(sid[:], s.SpanId)
			if !parents[sid] {
				t.Errorf("client span %x was no attempt's parent", s.SpanId)
			}
			clients++
		}
	}
	if clients != 3 || len(spans) != 4 {
		t.Errorf("%d spans, %d client spans; want 4 and 3", len(spans), clients)
	}
}

// TestTraceExportQueueDrops: a stalled OTLP endpoint never blocks emit;
// spans past the queue are dropped and counted.
func TestTraceExportQueueDrops(t *testing.T) {
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stalled.Close)
	p := startProxy(t, nil, Options{Tracing: TracingOptions{Endpoint: stalled.URL, SampleRatio: 1, QueueSize: 4, BatchSize: 2, FlushInterval: time.Millisecond}})
	t.Cleanup(func() { close(release) }) // before the proxy's shutdown flushes
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			p.tracer.emit(&span{kind: spanServer})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("emit blocked on a stalled exporter")
	}
	if n := p.counter(t, "rauta_trace_spans_dropped_total"); n < 90 {
		t.Errorf("rauta_trace_spans_dropped_total = %v, want at least 90 of 100 (queue 4, one batch in flight)", n)
	}
}

var madeID = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]+-[0-9a-f]+$`)

// TestRequestID: a request without X-Request-Id gets a made one, unique
// per request; a valid one is kept; an invalid or repeated one is
// replaced. Both engines.
func TestRequestID(t *testing.T) {
	be := newStatusBackend(t)
	var logBuf syncBuffer
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(t))))}}
	p := startProxy(t, snap, Options{AccessLog: &logBuf})
	cl := newClient()
	for _, engine := range []string{"h1 engine", "net/http"} {
		send := func(ids ...string) string {
			t.Helper()
			var req *http.Request
			if engine == "h1 engine" {
				req = mustReq(t, "GET", p.url(t, "l")+"/id/200", nil)
			} else {
				req = mustReq(t, "POST", p.url(t, "l")+"/id/200", io.MultiReader(strings.NewReader("b")))
				req.ContentLength = -1
			}
			for _, id := range ids {
				req.Header.Add("X-Request-Id", id)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := be.last(t)["X-Request-Id"]
			if len(got) != 1 {
				t.Fatalf("%s: backend got X-Request-Id %q, want one value", engine, got)
			}
			return got[0]
		}
		a, b := send(), send()
		if !madeID.MatchString(a) || !madeID.MatchString(b) || a == b {
			t.Errorf("%s: made IDs %q and %q; want two distinct prefix-conn-n IDs", engine, a, b)
		}
		if a[:16] != b[:16] {
			t.Errorf("%s: IDs of one process have different prefixes: %q %q", engine, a, b)
		}
		for _, keep := range []string{"f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "abc+/=@:._-", strings.Repeat("x", maxRequestIDLen)} {
			if got := send(keep); got != keep {
				t.Errorf("%s: X-Request-Id %q forwarded as %q, want it kept", engine, keep, got)
			}
		}
		for _, bad := range [][]string{{strings.Repeat("x", maxRequestIDLen+1)}, {"has space"}, {`quo"te`}, {"é"}, {"a", "b"}} {
			if got := send(bad...); !madeID.MatchString(got) {
				t.Errorf("%s: X-Request-Id %q forwarded as %q, want a made one", engine, bad, got)
			}
		}
	}
	// The access log shows the ID the backend got.
	last := be.last(t).Get("X-Request-Id")
	p.flushAccessLog()
	lines := bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n"))
	var entry map[string]any
	if err := json.Unmarshal(lines[len(lines)-1], &entry); err != nil || entry["request_id"] != last {
		t.Errorf("last access log line %s; want request_id %q", lines[len(lines)-1], last)
	}
}

// TestAccessLogFields: trace ID (from the client's traceparent, tracing
// off), request ID, protocol, user agent, upstream status and the error
// of a failed attempt, and of a backend without endpoints.
func TestAccessLogFields(t *testing.T) {
	be := newStatusBackend(t)
	dead := ir.Backend{Name: "default/dead:80", Weight: 1, Endpoints: []ir.Endpoint{closedPort(t)}}
	empty := ir.Backend{Name: "default/empty:80", Weight: 1}
	var logBuf syncBuffer
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		prefixRoute("dead", "/dead", dead), prefixRoute("empty", "/empty", empty), prefixRoute("ok", "/", be.backend(t))))}}
	p := startProxy(t, snap, Options{AccessLog: &logBuf})
	cl := newClient()
	req := mustReq(t, "GET", p.url(t, "l")+"/ok/503", nil)
	req.Header.Set("Traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	req.Header.Set("User-Agent", "probe/1.0 \"quoted\" <tag>")
	req.Header.Set("X-Request-Id", "req-123")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = cl.Get(p.url(t, "l") + "/dead")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = cl.Get(p.url(t, "l") + "/empty")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no ready endpoints for backend default/empty:80") {
		t.Errorf("backend without endpoints: %d %q", resp.StatusCode, body)
	}
	p.flushAccessLog()
	lines := bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d access log lines, want 3:\n%s", len(lines), logBuf.Bytes())
	}
	var none map[string]any
	if err := json.Unmarshal(lines[2], &none); err != nil || none["status"] != float64(503) || none["error"] != "no ready endpoints" || none["upstream"] != "" {
		t.Errorf("access log line of a backend without endpoints %s", lines[2])
	}
	var ok, failed map[string]any
	if err := json.Unmarshal(lines[0], &ok); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	if err := json.Unmarshal(lines[1], &failed); err != nil {
		t.Fatalf("%v: %s", err, lines[1])
	}
	if ok["trace_id"] != clientTraceID || ok["request_id"] != "req-123" || ok["protocol"] != "HTTP/1.1" ||
		ok["user_agent"] != `probe/1.0 "quoted" <tag>` || ok["status"] != float64(503) || ok["upstream_status"] != float64(503) || ok["error"] != "" {
		t.Errorf("access log line %s", lines[0])
	}
	if failed["status"] != float64(502) || failed["upstream_status"] != float64(0) || !strings.HasPrefix(failed["error"].(string), "connect: ") ||
		failed["trace_id"] != "" || !madeID.MatchString(failed["request_id"].(string)) {
		t.Errorf("access log line of a refused backend %s", lines[1])
	}
}

// TestAppendJSONString: the hand-written encoder agrees with
// encoding/json on every string, control bytes and bad UTF-8 included.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\x00\x01\x1f\n\r\t", "<a&b>", "é日本", "\xff\xfe", "a\xc3", "\u2028"} {
		want, _ := json.Marshal(s)
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q: %s is not JSON: %v", s, got, err)
			continue
		}
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"b\\c\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(appendJSONString(nil, s), &a); err != nil {
			t.Fatalf("%q: not JSON: %v", s, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("%q: %q, encoding/json %q", s, a, b)
		}
	})
}

func TestParseTraceparent(t *testing.T) {
	good := "00-" + clientTraceID + "-" + clientSpanID + "-01"
	for _, tc := range []struct {
		v     string
		ok    bool
		flags byte
	}{
		{good, true, 1},
		{strings.Replace(good, "-01", "-00", 1), true, 0},
		{"01-" + clientTraceID + "-" + clientSpanID + "-01-future", true, 1}, // a later version, longer
		{good + "-x", false, 0}, // version 00 is exactly 55
		{"ff" + good[2:], false, 0},
		{strings.ToUpper(good), false, 0},
		{"00-" + strings.Repeat("0", 32) + "-" + clientSpanID + "-01", false, 0},
		{"00-" + clientTraceID + "-" + strings.Repeat("0", 16) + "-01", false, 0},
		{good[:54], false, 0},
		{"", false, 0},
	} {
		_, _, flags, ok := parseTraceparent(tc.v)
		if ok != tc.ok || (ok && flags != tc.flags) {
			t.Errorf("parseTraceparent(%q) = flags %x ok %v, want %x %v", tc.v, flags, ok, tc.flags, tc.ok)
		}
	}
	tid, sid, _, _ := parseTraceparent(good)
	if got := string(appendTraceparent(nil, tid, sid)); got != good {
		t.Errorf("round trip %q, want %q", got, good)
	}
}

// TestSamplerRatio: ratio 0 samples no root, 1 every root, and 0.25
// about a quarter; a parent's flag wins either way.
func TestSamplerRatio(t *testing.T) {
	for _, tc := range []struct {
		ratio    float64
		min, max int
	}{{0, 0, 0}, {1, 4000, 4000}, {0.25, 800, 1200}} {
		s := newSampler(tc.ratio)
		n := 0
		for range 4000 {
			if s.start("").sampled {
				n++
			}
		}
		if n < tc.min || n > tc.max {
			t.Errorf("ratio %v: %d of 4000 sampled, want %d..%d", tc.ratio, n, tc.min, tc.max)
		}
	}
	if !newSampler(0).start("00-" + clientTraceID + "-" + clientSpanID + "-01").sampled {
		t.Error("ratio 0 dropped a sampled parent")
	}
	if newSampler(1).start("00-" + clientTraceID + "-" + clientSpanID + "-00").sampled {
		t.Error("ratio 1 sampled an unsampled parent")
	}
}

// TestEngineAllocatesNothingTracingOn: with tracing on, an unsampled
// request through the HTTP/1.1 engine still allocates nothing.
func TestEngineAllocatesNothingTracingOn(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers: allocation counts are not the engine's")
	}
	rcv := newOTLPReceiver(t)
	ec := newEngineClientWith(t, Options{Tracing: tracingOptions(rcv, 0), AccessLog: nil})
	ec.get(t)
	if n := testing.AllocsPerRun(2000, func() { ec.get(t) }); n >= 1 {
		t.Errorf("%.2f allocations per request, want 0", n)
	}
}

// TestOpenConnections: a backend connection carrying an exchange counts as
// active, back in the pool as idle, and a closed one not at all.
func TestOpenConnections(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	t.Cleanup(slow.Close)
	be := ir.Backend{Name: "default/slow:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, slow.Listener.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be)))}}, Options{})
	open := func() (active, idle float64) {
		mfs, err := p.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "http_client_open_connections" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "active" {
					active = m.GetGauge().GetValue()
				} else {
					idle = m.GetGauge().GetValue()
				}
			}
		}
		return active, idle
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := newClient().Get(p.url(t, "l") + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for a, i := open(); a != 1 || i != 0; a, i = open() {
		if time.Now().After(deadline) {
			t.Fatalf("during the exchange: %v active, %v idle; want 1 and 0", a, i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	<-done
	if a, i := open(); a != 0 || i != 1 {
		t.Errorf("after the exchange: %v active, %v idle; want 0 and 1", a, i)
	}
	slow.CloseClientConnections()
	p.fwd.pool.Close()
	if a, i := open(); a != 0 || i != 0 {
		t.Errorf("after the pool closed: %v active, %v idle; want none", a, i)
	}
}

// blockedWriter never returns from Write until released.
type blockedWriter struct{ release chan struct{} }

func (w blockedWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// TestAccessLogNeverBlocks: a sink that takes no writes (a stalled stdout
// pipe) neither holds up requests nor shutdown; what does not fit the
// queue is dropped and counted.
func TestAccessLogNeverBlocks(t *testing.T) {
	w := blockedWriter{release: make(chan struct{})}
	defer close(w.release)
	dropped := prometheusCounter()
	l := newAccessLog(w, dropped)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range accessLogQueue + 1000 {
			l.write(time.Now(), &accessEntry{Method: "GET", Path: "/"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("write blocked on a stalled sink")
	}
	// The queue holds accessLogQueue lines and the stalled writer one
	// batch of up to maxAccessBatch bytes; every other line is dropped.
	held := maxAccessBatch/len(appendAccessLine(nil, time.Now(), &accessEntry{Method: "GET", Path: "/"})) + 1
	if n := counterValue(dropped); n < float64(1000-held) || n > 1000 {
		t.Errorf("%v lines dropped, want %d to 1000 (queue %d, %d in the writer's batch)", n, 1000-held, accessLogQueue, held)
	}
	start := time.Now()
	l.close(100 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %v on a stalled sink; want it bounded by its timeout", d)
	}
}

func prometheusCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "test_dropped_total"})
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestRouteMetricsExactCodes: every three-digit code is its own series,
// observed concurrently without losing a count.
func TestRouteMetricsExactCodes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rm := &routeMetrics{m: m, gateway: "ns/gw", route: "r"}
	codes := []int{100, 200, 204, 404, 499, 599, 999}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, c := range codes {
				rm.observe("GET", "https", 2, c, 0.001, 10)
			}
		})
	}
	wg.Wait()
	mfs, _ := reg.Gather()
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range s.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["url_scheme"] != "https" || l["network_protocol_version"] != "2" {
				t.Errorf("labels %v", l)
			}
			got[l["http_response_status_code"]] += s.GetHistogram().GetSampleCount()
		}
	}
	for _, c := range codes {
		if n := got[strconv.Itoa(c)]; n != 4 {
			t.Errorf("code %d: %d observations, want 4 (all: %v)", c, n, got)
		}
	}
	m.forgetRoutes(map[routeKey]*routeMetrics{{rm.gateway, rm.route}: rm})
	mfs, _ = reg.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "http_server_") {
			t.Errorf("forget left %s with %d series", mf.GetName(), len(mf.GetMetric()))
		}
	}
}

// FuzzParseTraceparent: any header value parses without panicking, and a
// version 00 value that parses prints back as itself (with the sampled
// flag the gateway sends).
func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-" + clientTraceID + "-" + clientSpanID + "-01")
	f.Add("00-" + clientTraceID + "-" + clientSpanID + "-00")
	f.Add("cc-" + clientTraceID + "-" + clientSpanID + "-01-extra")
	f.Fuzz(func(t *testing.T, v string) {
		tid, sid, flags, ok := parseTraceparent(v)
		if !ok || !strings.HasPrefix(v, "00-") {
			return
		}
		if tid == ([16]byte{}) || sid == ([8]byte{}) {
			t.Fatalf("%q: accepted an all-zero ID", v)
		}
		want := v[:53] + "01"
		if got := string(appendTraceparent(nil, tid, sid)); got != want || len(v) != traceparentLen {
			t.Fatalf("%q (flags %x): prints back as %q", v, flags, got)
		}
	})
}

package e2e

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/poll"
)

// otlpSink is an OTLP/HTTP traces endpoint that keeps what it decodes.
type otlpSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPSink(t *testing.T) *otlpSink {
	t.Helper()
	o := &otlpSink{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "want an OTLP protobuf export on /v1/traces", http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *otlpSink) of(tid []byte) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if bytes.Equal(s.TraceId, tid) {
			out = append(out, s)
		}
	}
	return out
}

// TestTracingThroughBinary: `rauta run -otlp-endpoint` follows a client's
// sampled traceparent: the backend gets the same trace with the gateway's
// client span as parent, and the endpoint receives the server and client
// spans; the access log names the trace.
func TestTracingThroughBinary(t *testing.T) {
	sink := newOTLPSink(t)
	g, port := startTelemetryGateway(t, "-otlp-endpoint="+sink.srv.URL, "-trace-sample-ratio=0")
	const tid, sid = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req := request(t, "GET", port, "tele.test", "/api/traced")
	req.Header.Set("Traceparent", "00-"+tid+"-"+sid+"-01")
	res := do(t, newClient(), req)
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	got := res.reply(t).Headers["Traceparent"]
	if len(got) != 1 || !strings.HasPrefix(got[0], "00-"+tid+"-") || strings.Contains(got[0], sid) || !strings.HasSuffix(got[0], "-01") {
		t.Fatalf("backend got traceparent %q; want trace %s sampled with the gateway's span as parent", got, tid)
	}
	backendParent := strings.Split(got[0], "-")[2]
	if id := res.reply(t).Headers["X-Request-Id"]; len(id) != 1 || id[0] == "" {
		t.Errorf("backend got X-Request-Id %q, want one made", id)
	}

	tidb, _ := hex.DecodeString(tid)
	var spans []*tracepb.Span
	poll.Require(t, 10*time.Second, "the server and client spans reach the OTLP endpoint", func() bool {
		spans = sink.of(tidb)
		return len(spans) >= 2
	})
	var server, client *tracepb.Span
	for _, s := range spans {
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case tracepb.Span_SPAN_KIND_CLIENT:
			client = s
		}
	}
	if server == nil || client == nil || hex.EncodeToString(server.ParentSpanId) != sid ||
		!bytes.Equal(client.ParentSpanId, server.SpanId) || hex.EncodeToString(client.SpanId) != backendParent {
		t.Errorf("spans %v: want a server span under %s and a client span %s under it", spans, sid, backendParent)
	}
	poll.Require(t, 5*time.Second, "the access log line names the trace", func() bool {
		return strings.Contains(g.stdout.String(), `"trace_id":"`+tid+`"`)
	})
}

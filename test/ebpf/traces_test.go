package ebpf

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/false-systems/rauta/internal/observe"
	"github.com/false-systems/rauta/internal/tracecontext"
)

// spanReceiver is an OTLP/HTTP traces receiver on loopback.
type spanReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (s *spanReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		w.WriteHeader(http.StatusOK) // metrics and logs go to the same base URL
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (s *spanReceiver) wait(t *testing.T, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := append([]*tracepb.Span(nil), s.spans...)
		s.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestObserverSpansFromTraceparent sends real requests through the
// observed router: those with a sampled traceparent come back from the
// OTLP receiver as SERVER spans in the sender's trace, children of the
// span the sender named, with the route (not the path) in their name;
// those without one, or with an unsampled one, make no span (the sample
// ratio defaults to 0).
func TestObserverSpansFromTraceparent(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	rcv := &spanReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	obs := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.OTLPEndpoint = srv.URL
		c.OTLPInterval = time.Second
	})
	c := httpClient(tp, true)

	type sent struct {
		parent tracecontext.Parent
		status int
	}
	want := map[string]sent{} // by trace ID, hex
	send := func(path, tp string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if tp != "" {
			req.Header.Set("traceparent", tp)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 8 {
		path := fmt.Sprintf("/ok?i=%d", i)
		if i%4 == 3 {
			path = fmt.Sprintf("/status/502?i=%d", i)
		}
		p := tracecontext.Parent{TraceID: tracecontext.NewTraceID(), SpanID: tracecontext.NewSpanID(), Flags: 1}
		status := send(path, string(tracecontext.Append(nil, p.TraceID, p.SpanID)))
		want[hex.EncodeToString(p.TraceID[:])] = sent{p, status}
	}
	for i := range 4 {
		send(fmt.Sprintf("/ok?none=%d", i), "")
		unsampled := tracecontext.Append(nil, tracecontext.NewTraceID(), tracecontext.NewSpanID())
		unsampled[len(unsampled)-1] = '0'
		send(fmt.Sprintf("/ok?unsampled=%d", i), string(unsampled))
	}
	// Every request was observed before the spans are counted: the
	// exporter's batches are time-bound, not count-bound.
	obs.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= 16 })
	rcv.wait(t, len(want))
	time.Sleep(1500 * time.Millisecond) // one more flush interval: nothing else may come
	spans := rcv.wait(t, len(want))
	if len(spans) != len(want) {
		t.Fatalf("%d spans received, want %d (only the sampled traceparents)", len(spans), len(want))
	}
	for _, sp := range spans {
		w, ok := want[hex.EncodeToString(sp.TraceId)]
		if !ok {
			t.Fatalf("span in trace %x, which no request carried", sp.TraceId)
		}
		if string(sp.ParentSpanId) != string(w.parent.SpanID[:]) || string(sp.SpanId) == string(w.parent.SpanID[:]) {
			t.Errorf("trace %x: parent %x span %x, want parent %x and a new span", sp.TraceId, sp.ParentSpanId, sp.SpanId, w.parent.SpanID)
		}
		if sp.Kind != tracepb.Span_SPAN_KIND_SERVER || !strings.HasPrefix(sp.Name, "GET /") || strings.Contains(sp.Name, "?") || strings.Contains(sp.Name, "i=") {
			t.Errorf("kind %v name %q: want SERVER, GET and the route", sp.Kind, sp.Name)
		}
		var status int64
		var errType string
		for _, a := range sp.Attributes {
			switch a.Key {
			case "http.response.status_code":
				status = a.Value.GetIntValue()
			case "error.type":
				errType = a.Value.GetStringValue()
			}
		}
		if int(status) != w.status || (w.status == 502) != (errType == "502") {
			t.Errorf("trace %x: status %d error.type %q, the client got %d", sp.TraceId, status, errType, w.status)
		}
		if d := sp.EndTimeUnixNano - sp.StartTimeUnixNano; sp.StartTimeUnixNano == 0 || d == 0 || d > uint64(5*time.Second) {
			t.Errorf("trace %x: times %d..%d", sp.TraceId, sp.StartTimeUnixNano, sp.EndTimeUnixNano)
		}
		if now := uint64(time.Now().UnixNano()); sp.EndTimeUnixNano > now || now-sp.EndTimeUnixNano > uint64(time.Minute) {
			t.Errorf("trace %x: end %d is not wall-clock time near now %d", sp.TraceId, sp.EndTimeUnixNano, now)
		}
	}
	if v := obs.metric(t, "rauta_observer_spans_exported_total", ""); v != float64(len(want)) {
		t.Errorf("rauta_observer_spans_exported_total %v, want %d", v, len(want))
	}
	obs.stop(t)
}

package proxy

import (
	"bytes"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestExportRequestEncoding pins the hand-written ExportTraceServiceRequest
// to the generated type: the same bytes as the collector package's
// encoding, and a collector decodes the same resource spans back.
func TestExportRequestEncoding(t *testing.T) {
	tr := &tracer{res: newTracerResource("svc")}
	start := time.Unix(1700000000, 5)
	batch := []*span{
		{kind: spanServer, method: "GET", route: "HTTPRoute/default/a/rule/0", status: 503, start: start, end: start.Add(time.Millisecond)},
		{kind: spanClient, method: "GET", backend: "default/a:80", peer: "10.0.0.1:8080", status: 200, start: start, end: start.Add(2 * time.Millisecond)},
	}
	for i := range batch {
		batch[i].traceID[0], batch[i].id[0] = 1, byte(i+1)
	}
	rs := tr.resourceSpans(batch)
	got, err := exportRequest(rs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding differs from the generated type's:\n got %x\nwant %x", got, want)
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(got, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.ResourceSpans) != 1 || !proto.Equal(req.ResourceSpans[0], rs) {
		t.Fatalf("decoded %v, want %v", req.ResourceSpans, rs)
	}
	if n := len(req.ResourceSpans[0].ScopeSpans[0].Spans); n != 2 {
		t.Errorf("%d spans decoded, want 2", n)
	}
}

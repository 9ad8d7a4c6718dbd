package httpparse

import (
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/tracecontext"
)

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestRequestTraceContext: a valid traceparent is carried on the request
// whatever the header name's case; an invalid or repeated one is not; the
// tracestate is kept only for a sampled trace.
func TestRequestTraceContext(t *testing.T) {
	want, _ := tracecontext.Parse(testTraceparent)
	unsampled := strings.TrimSuffix(testTraceparent, "01") + "00"
	cases := []struct {
		name, headers string
		trace         bool
		state         string
	}{
		{"lowercase name", "traceparent: " + testTraceparent + "\r\n", true, ""},
		{"canonical name, spaces", "Traceparent:   " + testTraceparent + " \r\n", true, ""},
		{"with tracestate before", "Tracestate: congo=t61rcWkgMzE\r\ntraceparent: " + testTraceparent + "\r\n", true, "congo=t61rcWkgMzE"},
		{"tracestate cut", "traceparent: " + testTraceparent + "\r\ntracestate: a=" + strings.Repeat("x", 600) + "\r\n", true, "a=" + strings.Repeat("x", MaxTraceStateLen-2)},
		{"unsampled: no tracestate", "traceparent: " + unsampled + "\r\ntracestate: a=b\r\n", true, ""},
		{"repeated", "traceparent: " + testTraceparent + "\r\ntraceparent: " + testTraceparent + "\r\n", false, ""},
		{"uppercase hex", "traceparent: " + strings.ToUpper(testTraceparent) + "\r\n", false, ""},
		{"absent", "Accept: */*\r\n", false, ""},
		{"tracestate alone", "tracestate: a=b\r\n", false, ""},
	}
	for _, c := range cases {
		var r Request
		if err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: a\r\n"+c.headers+"\r\n"), &r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := r.Trace.Valid(); got != c.trace {
			t.Errorf("%s: trace valid %v, want %v", c.name, got, c.trace)
		}
		if c.trace && (r.Trace.TraceID != want.TraceID || r.Trace.SpanID != want.SpanID) {
			t.Errorf("%s: trace %+v, want %+v", c.name, r.Trace, want)
		}
		if r.TraceState != c.state {
			t.Errorf("%s: tracestate %q, want %q", c.name, r.TraceState, c.state)
		}
	}
	// A head cut before the header's line ends does not carry it.
	var r Request
	_ = ParseRequest([]byte("GET / HTTP/1.1\r\ntraceparent: "+testTraceparent), &r)
	if r.Trace.Valid() {
		t.Error("a traceparent line cut by the capture was read")
	}
}

// TestTraceparentCostsNoAllocation: reading a traceparent (without
// tracestate) allocates nothing, as a request without one.
func TestTraceparentCostsNoAllocation(t *testing.T) {
	in := NewInterner(16)
	for _, h := range []string{
		"GET /a HTTP/1.1\r\nHost: one\r\ntraceparent: " + testTraceparent + "\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: one\r\ntracestate: a=b\r\n\r\n",
	} {
		head := []byte(h)
		var r Request
		_ = in.ParseRequest(head, &r)
		if n := testing.AllocsPerRun(100, func() { _ = in.ParseRequest(head, &r) }); n != 0 {
			t.Fatalf("%q: %v allocations per parse", h, n)
		}
	}
}

func BenchmarkParseRequestTraceparent(b *testing.B) {
	in := []byte("GET /api/v1/users/123 HTTP/1.1\r\nHost: svc.ns.svc.cluster.local\r\nUser-Agent: Go-http-client/1.1\r\ntraceparent: " + testTraceparent + "\r\nAccept-Encoding: gzip\r\n\r\n")
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseRequest(in, &r); err != nil {
			b.Fatal(err)
		}
	}
}

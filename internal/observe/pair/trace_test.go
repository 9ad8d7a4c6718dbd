package pair

import (
	"testing"

	"github.com/false-systems/rauta/internal/tracecontext"
)

// TestTraceContextFollowsItsRequest: pipelined requests each carry their
// own trace context and version to their exchange; one without a
// traceparent gets none, and a timed-out request keeps its own.
func TestTraceContextFollowsItsRequest(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	tp1, _ := tracecontext.Parse("00-11111111111111111111111111111111-1111111111111111-01")
	tp3, _ := tracecontext.Parse("00-33333333333333333333333333333333-3333333333333333-01")
	r1, r2, r3 := req("GET", "/1"), req("GET", "/2"), req("GET", "/3")
	r1.Trace, r1.TraceState = tp1, "a=b"
	r2.Minor = 0
	r3.Trace = tp3
	p.Request(100, cli, srv, 1, r1)
	p.Request(110, cli, srv, 50, r2)
	p.Request(120, cli, srv, 90, r3)
	p.Response(200, srv, cli, 1000, resp(200))
	p.Response(300, srv, cli, 1100, resp(200))
	p.Expire(uint64(61e9)) // the third times out
	if len(r.got) != 3 {
		t.Fatalf("%d exchanges, want 3", len(r.got))
	}
	if e := r.got[0]; e.Trace != tp1 || e.TraceState != "a=b" || e.Version != "1.1" {
		t.Errorf("first: trace %+v state %q version %q", e.Trace, e.TraceState, e.Version)
	}
	if e := r.got[1]; e.Trace.Valid() || e.TraceState != "" || e.Version != "1.0" {
		t.Errorf("second: trace %+v state %q version %q, want none and 1.0", e.Trace, e.TraceState, e.Version)
	}
	if e := r.got[2]; e.Trace != tp3 || e.Outcome != Timeout {
		t.Errorf("third: trace %+v outcome %v, want its own and timeout", e.Trace, e.Outcome)
	}
}

package observe

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/capture"
)

// Issue 16 defects 1 and 2 through the pipeline (no root): several
// messages in one captured segment, with the sequence and acknowledgment
// numbers a real connection gives them.

// seg is an ACK segment of payload at seq, acknowledging ack.
func seg(ts uint64, src, dst string, seq, ack uint32, payload string) *capture.Event {
	e := ev(ts, src, dst, seq, payload)
	e.Ack, e.TCPFlags = ack, capture.FlagACK|capture.FlagPSH
	return e
}

// TestPipelineHEADThenResponseInOneSegment: a HEAD and a GET pipelined,
// both answered in one segment. The HEAD response announces a body it
// does not carry; read as having one, it hid the GET's response and every
// later exchange of the connection was paired with the previous request.
func TestPipelineHEADThenResponseInOneSegment(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	cs, ss := uint32(1000), uint32(90000)
	for i := 0; i < 10; i += 2 {
		reqs := fmt.Sprintf("HEAD /r%d HTTP/1.1\r\nHost: web\r\n\r\nGET /r%d HTTP/1.1\r\nHost: web\r\n\r\n", i, i+1)
		p.handle(seg(ts, c, s, cs, ss, reqs))
		cs += uint32(len(reqs))
		resps := fmt.Sprintf("HTTP/1.1 %d A\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 %d B\r\nContent-Length: 2\r\n\r\nok", 400+i, 401+i)
		p.handle(seg(ts+1000, s, c, ss, cs, resps))
		ss += uint32(len(resps))
		ts += uint64(time.Millisecond)
	}
	ls := lines(t, &out)
	if len(ls) != 10 {
		t.Fatalf("%d exchanges, want 10:\n%s", len(ls), out.String())
	}
	for _, l := range ls {
		var id int
		fmt.Sscanf(l.Target, "/r%d", &id)
		if l.Status != 400+id {
			t.Errorf("%s paired with %d", l.Target, l.Status)
		}
	}
}

// TestPipelineEightRequestsInOneSegment: eight ~200-byte requests in one
// captured segment (the kernel's large window), each answered in its own
// segment: all eight paired, none flagged truncated.
func TestPipelineEightRequestsInOneSegment(t *testing.T) {
	cfg := Defaults()
	cfg.JSONExchanges = true
	var out bytes.Buffer
	p, _ := newTestPipeline(t, cfg, &out)
	const c, s = "10.0.0.1:40000", "10.0.0.2:8080"
	ts := uint64(time.Hour)
	cs, ss := uint32(1000), uint32(90000)
	var batch strings.Builder
	for i := range 8 {
		fmt.Fprintf(&batch, "GET /r%d HTTP/1.1\r\nHost: web\r\nUser-Agent: %s\r\n\r\n", i, strings.Repeat("u", 150))
	}
	if batch.Len() <= capture.CaptureLen || batch.Len() > capture.CaptureMax {
		t.Fatalf("batch of %d bytes does not exercise the large window", batch.Len())
	}
	p.handle(seg(ts, c, s, cs, ss, batch.String()))
	cs += uint32(batch.Len())
	for i := range 8 {
		r := fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", 400+i)
		p.handle(seg(ts+uint64(i+1)*1000, s, c, ss, cs, r))
		ss += uint32(len(r))
	}
	ls := lines(t, &out)
	if len(ls) != 8 {
		t.Fatalf("%d exchanges, want 8:\n%s", len(ls), out.String())
	}
	for i, l := range ls {
		if l.Target != fmt.Sprintf("/r%d", i) || l.Status != 400+i {
			t.Errorf("exchange %d: %s %d", i, l.Target, l.Status)
		}
	}
	if n := p.counters().TargetsTruncated; n != 0 {
		t.Errorf("%d truncated targets", n)
	}
}

package pair

import (
	"testing"

	"github.com/false-systems/rauta/internal/observe/httpparse"
)

// Plaintext from inside TLS arrives as streams of its own (Seg.Stream and
// Seg.PID): the client's and the server's view of one TLS connection have
// the same addresses and the same plaintext offsets, and must pair as two
// connections, each once; the packet path's resets (which name only the
// addresses) must not end them.
func TestTLSStreamsAreTheirOwnConnections(t *testing.T) {
	var got []Exchange
	p := New(Config{}, func(e *Exchange) { got = append(got, *e) })
	req := &httpparse.Request{Method: "GET", Target: "/t", Minor: 1, ContentLength: -1, HeadersComplete: true, HeadLen: 50}
	resp := &httpparse.Response{Minor: 1, Status: 201, ContentLength: 0, HeadersComplete: true, HeadLen: 30}
	client := Seg{Stream: 0x7f00aa10, PID: 100, HasAck: true}
	server := Seg{Stream: 0xc000123400, PID: 200, HasAck: true}
	// Both processes see the request at offset 0, then the response at 0
	// acknowledging the request's 50 bytes.
	p.RequestSeg(10, cli, srv, client, req)
	p.RequestSeg(11, cli, srv, server, req)
	// A reset seen by the packet path on the same addresses.
	p.Reset(12, srv, cli)
	client.Ack, server.Ack = 50, 50
	p.ResponseSeg(13, srv, cli, server, resp)
	p.ResponseSeg(14, srv, cli, client, resp)
	if len(got) != 2 {
		t.Fatalf("exchanges %+v, want one per process", got)
	}
	for i, want := range []Seg{server, client} {
		e := got[i]
		if e.Outcome != Complete || e.Status != 201 || e.Target != "/t" || e.Stream != want.Stream || e.PID != want.PID || e.Client != cli || e.Server != srv {
			t.Errorf("exchange %d: %+v, want complete 201 /t of stream %#x pid %d", i, e, want.Stream, want.PID)
		}
	}
	if s := p.Stats(); s.Resets != 0 || s.Open != 2 {
		t.Errorf("stats %+v: want no reset exchange and both TLS streams open", s)
	}
}

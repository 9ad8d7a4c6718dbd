package pair

import (
	"net/netip"
	"testing"
	"time"
)

// TestIdleConnectionsAreForgotten (issue 16 point 8): the kernel does not
// report FINs, so connections that finished stayed tracked until the LRU
// pushed them out and rauta_observer_tracked_connections never fell.
func TestIdleConnectionsAreForgotten(t *testing.T) {
	var r rec
	p := New(Config{IdleTimeout: time.Minute, RequestTimeout: 30 * time.Second}, r.emit)
	start := uint64(time.Hour)
	for i := range 100 {
		c := netip.AddrPortFrom(cli.Addr(), uint16(20000+i))
		p.Request(start, c, srv, 1, req("GET", "/a"))
		p.Response(start+1000, srv, c, 1, resp(200))
	}
	// One connection with a request still pending is kept (the request
	// timeout decides about it), one busy connection too.
	hung := netip.AddrPortFrom(cli.Addr(), 30000)
	p.Request(start, hung, srv, 1, req("GET", "/hang"))
	busy := netip.AddrPortFrom(cli.Addr(), 30001)
	p.Request(start+uint64(50*time.Second), busy, srv, 1, req("GET", "/b"))
	p.Response(start+uint64(50*time.Second)+1000, srv, busy, 1, resp(200))
	if n := p.Stats().Open; n != 102 {
		t.Fatalf("open %d, want 102", n)
	}
	p.Expire(start + uint64(20*time.Second))
	if n := p.Stats().Open; n != 102 {
		t.Fatalf("open %d after 20 s, want 102 (not idle yet)", n)
	}
	p.Expire(start + uint64(61*time.Second))
	if s := p.Stats(); s.Open != 2 || s.IdleClosed != 100 {
		t.Fatalf("open %d idle-closed %d after 61 s, want 2 and 100", s.Open, s.IdleClosed)
	}
	// The hung request timed out at 30 s... by 61 s it was reported and
	// its connection is idle from then on.
	p.Expire(start + uint64(200*time.Second))
	if s := p.Stats(); s.Open != 0 {
		t.Fatalf("open %d at 200 s, want 0", s.Open)
	}
}

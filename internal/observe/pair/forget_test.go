package pair

import (
	"net/netip"
	"testing"
	"time"
)

// TestForgetInterfaces (issue 16 point 9): when a pod's veth is deleted
// its connections are released at once instead of staying tracked until
// the idle timeout; connections never captured there stay.
func TestForgetInterfaces(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	ts := uint64(time.Hour)
	conn := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(cli.Addr(), port) }
	// Pod-to-pod on one node: the request is captured on veth 7, the
	// response on veth 9; then another connection seen only on 7, one
	// only on 11, one with a request still pending on 9.
	p.RequestSeg(ts, conn(1), srv, Seg{Seq: 1, Ifindex: 7}, req("GET", "/a"))
	p.ResponseSeg(ts+1, srv, conn(1), Seg{Seq: 1, Ifindex: 9}, resp(200))
	p.RequestSeg(ts, conn(2), srv, Seg{Seq: 1, Ifindex: 7}, req("GET", "/b"))
	p.ResponseSeg(ts+1, srv, conn(2), Seg{Seq: 1, Ifindex: 7}, resp(200))
	p.RequestSeg(ts, conn(3), srv, Seg{Seq: 1, Ifindex: 11}, req("GET", "/c"))
	p.RequestSeg(ts, conn(4), srv, Seg{Seq: 1, Ifindex: 9}, req("GET", "/pending"))
	// Unknown interface (0) never matches.
	p.RequestSeg(ts, conn(5), srv, Seg{Seq: 1}, req("GET", "/d"))
	if n := p.Stats().Open; n != 5 {
		t.Fatalf("open %d, want 5", n)
	}
	if n := p.ForgetInterfaces([]uint32{9, 0}); n != 2 {
		t.Errorf("released %d for ifindex 9, want 2 (the connections captured there)", n)
	}
	s := p.Stats()
	if s.Open != 3 || s.Released != 2 || s.EvictedPending != 1 {
		t.Errorf("open %d released %d evicted-pending %d, want 3, 2 and 1", s.Open, s.Released, s.EvictedPending)
	}
	if n := p.ForgetInterfaces([]uint32{7}); n != 1 {
		t.Errorf("released %d for ifindex 7, want 1", n)
	}
	// A released connection seen again is tracked again.
	p.RequestSeg(ts+2, conn(1), srv, Seg{Seq: 100, Ifindex: 12}, req("GET", "/again"))
	if n := p.Stats().Open; n != 3 {
		t.Errorf("open %d, want 3", n)
	}
	if n := len(r.got); n != 2 {
		t.Errorf("%d exchanges, want the 2 completed ones only (no exchange for released requests)", n)
	}
}

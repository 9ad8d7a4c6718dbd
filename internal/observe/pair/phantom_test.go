package pair

import (
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/httpparse"
)

// Issue 16 point 7: segments that only look like requests must not become
// exchanges (phantom services, timeouts on real ones).

// TestBodySegmentIsNotARequest: a POST body whose second segment starts
// with "GET /x HTTP/1.1" lies inside the body by TCP sequence number.
func TestBodySegmentIsNotARequest(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	post := &httpparse.Request{Method: "POST", Target: "/upload", Minor: 1, ContentLength: 5000, HeadersComplete: true, HeadLen: 100}
	p.Request(1, cli, srv, 1000, post)
	p.Request(2, cli, srv, 1000+100+1448, req("GET", "/x")) // inside the body
	p.Request(3, cli, srv, 1000+100+2896, nil)              // unparsable, inside too
	p.Response(10, srv, cli, 50, resp(201))
	p.Request(20, cli, srv, 1000+100+5000, req("GET", "/next")) // after the body
	p.Response(30, srv, cli, 500, resp(200))
	if len(r.got) != 2 || r.got[0].Target != "/upload" || r.got[0].Status != 201 || r.got[1].Target != "/next" || r.got[1].Status != 200 {
		t.Fatalf("got %+v", r.got)
	}
	if s := p.Stats(); s.BodySegments != 2 {
		t.Fatalf("body segments %d, want 2", s.BodySegments)
	}
}

// TestUnparsableWhilePendingHoldsNoPlace: with a chunked POST pending (body
// length unknown), an unparsable segment is taken as body: a place held
// for it would shift the next response onto it.
func TestUnparsableWhilePendingHoldsNoPlace(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	post := &httpparse.Request{Method: "POST", Target: "/chunked", Minor: 1, ContentLength: -1, Chunked: true, HeadersComplete: true, HeadLen: 80}
	p.Request(1, cli, srv, 1000, post)
	p.Request(2, cli, srv, 2000, nil)
	p.Response(10, srv, cli, 50, resp(200))
	p.Request(20, cli, srv, 3000, req("GET", "/next"))
	p.Response(30, srv, cli, 500, resp(404))
	if len(r.got) != 2 || r.got[1].Target != "/next" || r.got[1].Status != 404 {
		t.Fatalf("got %+v", r.got)
	}
}

// TestUnansweredMalformedIsNotAnExchange: memcached's "GET key\r\n" is
// unparsable; it holds its place (an HTTP server would answer 400) but,
// unanswered, ends as nothing: no timeout exchange, no overdue sweep.
func TestUnansweredMalformedIsNotAnExchange(t *testing.T) {
	var r rec
	overdue := 0
	p := New(Config{RequestTimeout: time.Second, Overdue: func(*Exchange) { overdue++ }, OverdueAfter: 10 * time.Millisecond}, r.emit)
	// memcached answers "VALUE ..." or "END": not captured, never HTTP.
	p.Request(1, cli, srv, 5, nil)
	p.Expire(uint64(500 * time.Millisecond))
	p.Expire(uint64(2 * time.Second))
	if len(r.got) != 0 || overdue != 0 {
		t.Fatalf("exchanges %+v, overdue calls %d: unparsable requests must not become either", r.got, overdue)
	}
	if s := p.Stats(); s.UnansweredMalformed != 1 {
		t.Fatalf("unanswered malformed %d, want 1", s.UnansweredMalformed)
	}
}

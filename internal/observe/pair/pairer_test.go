package pair

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe/httpparse"
)

var (
	cli = netip.MustParseAddrPort("10.1.0.1:40000")
	srv = netip.MustParseAddrPort("10.2.0.1:8080")
)

type rec struct{ got []Exchange }

func (r *rec) emit(e *Exchange) { r.got = append(r.got, *e) }

func req(method, target string) *httpparse.Request {
	return &httpparse.Request{Method: method, Target: target, Minor: 1, ContentLength: -1}
}

func resp(status int) *httpparse.Response {
	return &httpparse.Response{Minor: 1, Status: status, ContentLength: -1}
}

func TestSingleExchangeLatency(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	p.Request(1_000, cli, srv, 10, &httpparse.Request{Method: "GET", Target: "/a", Host: "h", UserAgent: "kube-probe/1.36", ContentLength: -1})
	p.Response(3_501_000, srv, cli, 500, &httpparse.Response{Status: 200, ContentLength: 12})
	if len(r.got) != 1 {
		t.Fatalf("got %d exchanges", len(r.got))
	}
	e := r.got[0]
	if e.Method != "GET" || e.Target != "/a" || e.Status != 200 || e.Outcome != Complete || e.Host != "h" || e.UserAgent != "kube-probe/1.36" || e.RespContentLength != 12 {
		t.Fatalf("exchange %+v", e)
	}
	if e.Client != cli || e.Server != srv {
		t.Fatalf("tuple %v -> %v", e.Client, e.Server)
	}
	if e.Latency() != 3500*time.Microsecond {
		t.Fatalf("latency %v", e.Latency())
	}
	if s := p.Stats(); s.Requests != 1 || s.Responses != 1 || s.Exchanges != 1 || s.Open != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPipelinedAndKeepAliveStayInOrder(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	// Pipelined: three requests before any response.
	p.Request(100, cli, srv, 1, req("GET", "/1"))
	p.Request(110, cli, srv, 50, req("POST", "/2"))
	p.Request(120, cli, srv, 90, req("PUT", "/3"))
	p.Response(200, srv, cli, 1000, resp(200))
	p.Response(300, srv, cli, 1100, resp(404))
	p.Response(400, srv, cli, 1200, resp(500))
	// Keep-alive: one more round trip on the same connection.
	p.Request(500, cli, srv, 130, req("GET", "/4"))
	p.Response(650, srv, cli, 1300, resp(204))

	want := []struct {
		target  string
		status  int
		latency time.Duration
	}{{"/1", 200, 100}, {"/2", 404, 190}, {"/3", 500, 280}, {"/4", 204, 150}}
	if len(r.got) != len(want) {
		t.Fatalf("got %d exchanges, want %d", len(r.got), len(want))
	}
	for i, w := range want {
		g := r.got[i]
		if g.Target != w.target || g.Status != w.status || g.Latency() != w.latency {
			t.Errorf("exchange %d = %s %d %v, want %s %d %v", i, g.Target, g.Status, g.Latency(), w.target, w.status, w.latency)
		}
	}
}

func TestDuplicatesFromSeveralHooksAreDropped(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	p.Request(100, cli, srv, 7, req("GET", "/"))
	p.Request(105, cli, srv, 7, req("GET", "/")) // same segment, second hook
	p.Response(200, srv, cli, 70, resp(200))
	p.Response(205, srv, cli, 70, resp(200))
	if len(r.got) != 1 || r.got[0].Latency() != 100 {
		t.Fatalf("exchanges %+v", r.got)
	}
	if s := p.Stats(); s.Duplicates != 2 || s.UnmatchedResponses != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestResponseWithoutRequestIsCountedNotTracked(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	for i := range 1000 {
		p.Response(uint64(i), srv, netip.AddrPortFrom(cli.Addr(), uint16(i)), 1, resp(200))
	}
	if s := p.Stats(); s.UnmatchedResponses != 1000 || s.Open != 0 || len(r.got) != 0 {
		t.Fatalf("stats %+v, %d exchanges", s, len(r.got))
	}
}

func TestInterimAndUpgradeResponses(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	p.Request(100, cli, srv, 1, req("POST", "/upload"))
	p.Response(150, srv, cli, 10, resp(100))
	p.Response(400, srv, cli, 20, resp(201))
	p.Request(500, cli, srv, 2, req("GET", "/ws"))
	p.Response(600, srv, cli, 30, resp(101))
	// After the upgrade the bytes are another protocol; ignore them.
	p.Request(700, cli, srv, 3, req("GET", "/not-http"))
	p.Response(800, srv, cli, 40, resp(200))
	if len(r.got) != 2 {
		t.Fatalf("got %+v", r.got)
	}
	if r.got[0].Status != 201 || r.got[0].Latency() != 300 || r.got[1].Status != 101 {
		t.Fatalf("got %+v", r.got)
	}
	if s := p.Stats(); s.Informational != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestResetEndsPendingRequests(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	p.Request(100, cli, srv, 1, req("GET", "/a"))
	p.Request(120, cli, srv, 2, req("GET", "/b"))
	p.Reset(1000, srv, cli) // RST from the server side
	if len(r.got) != 2 || r.got[0].Outcome != Reset || r.got[1].Outcome != Reset || r.got[0].Latency() != 900 || r.got[0].Status != 0 {
		t.Fatalf("got %+v", r.got)
	}
	if s := p.Stats(); s.Resets != 2 || s.Open != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTimeoutThenLateResponseIsNotMispaired(t *testing.T) {
	var r rec
	p := New(Config{RequestTimeout: time.Second}, r.emit)
	p.Request(0, cli, srv, 1, req("GET", "/slow"))
	p.Expire(uint64(500 * time.Millisecond))
	if len(r.got) != 0 {
		t.Fatalf("expired too early: %+v", r.got)
	}
	p.Expire(uint64(time.Second))
	if len(r.got) != 1 || r.got[0].Outcome != Timeout || r.got[0].Latency() != time.Second {
		t.Fatalf("got %+v", r.got)
	}
	p.Request(uint64(2*time.Second), cli, srv, 2, req("GET", "/next"))
	p.Response(uint64(3*time.Second), srv, cli, 10, resp(200)) // the late answer to /slow
	p.Response(uint64(4*time.Second), srv, cli, 20, resp(201)) // the answer to /next
	if len(r.got) != 2 || r.got[1].Target != "/next" || r.got[1].Status != 201 {
		t.Fatalf("got %+v", r.got)
	}
	if s := p.Stats(); s.Timeouts != 1 || s.LateResponses != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLRUEvictionIsBoundedAndCounted(t *testing.T) {
	var r rec
	p := New(Config{MaxConns: 100}, r.emit)
	for i := range 1000 {
		c := netip.AddrPortFrom(cli.Addr(), uint16(1000+i))
		p.Request(uint64(i), c, srv, 1, req("GET", fmt.Sprint("/", i)))
	}
	s := p.Stats()
	if s.Open != 100 || s.Evictions != 900 || s.EvictedPending != 900 {
		t.Fatalf("stats %+v", s)
	}
	// The newest connection survived and still pairs.
	p.Response(5000, srv, netip.AddrPortFrom(cli.Addr(), 1999), 9, resp(200))
	if len(r.got) != 1 || r.got[0].Target != "/999" {
		t.Fatalf("got %+v", r.got)
	}
	// The oldest was evicted.
	p.Response(5001, srv, netip.AddrPortFrom(cli.Addr(), 1000), 9, resp(200))
	if p.Stats().UnmatchedResponses != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestPipelineOverflowClearsConnection(t *testing.T) {
	var r rec
	p := New(Config{MaxPending: 2}, r.emit)
	p.Request(1, cli, srv, 1, req("GET", "/1"))
	p.Request(2, cli, srv, 2, req("GET", "/2"))
	p.Request(3, cli, srv, 3, req("GET", "/3"))
	p.Response(4, srv, cli, 10, resp(200))
	if s := p.Stats(); s.PipelineOverflow != 1 {
		t.Fatalf("stats %+v", s)
	}
	if len(r.got) != 1 || r.got[0].Target != "/3" {
		t.Fatalf("got %+v", r.got)
	}
}

func TestUnparsedMessagesKeepOrder(t *testing.T) {
	var r rec
	p := New(Config{}, r.emit)
	p.Request(1, cli, srv, 1, nil)
	p.Request(2, cli, srv, 2, req("GET", "/ok"))
	p.Request(3, cli, srv, 3, req("GET", "/lost"))
	p.Response(10, srv, cli, 100, resp(400))
	p.Response(20, srv, cli, 200, resp(200))
	p.Response(30, srv, cli, 300, nil) // unparseable status line consumes /lost
	if len(r.got) != 2 || !r.got[0].Unparsed || r.got[0].Status != 400 || r.got[1].Target != "/ok" {
		t.Fatalf("got %+v", r.got)
	}
	if p.Stats().Open != 1 {
		t.Fatal("connection lost")
	}
}

func BenchmarkRequestResponse(b *testing.B) {
	p := New(Config{MaxConns: 4096}, func(*Exchange) {})
	rq := req("GET", "/api")
	rs := resp(200)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := netip.AddrPortFrom(cli.Addr(), uint16(i%8192))
		p.Request(uint64(i), c, srv, uint32(i), rq)
		p.Response(uint64(i+1), srv, c, uint32(i), rs)
		i++
	}
}

// TestOverdueSeesPendingRequestsAndKeepsMarks: Expire hands requests older
// than OverdueAfter to Overdue on every sweep until they end, marks set
// there come back on later sweeps and on the finished exchange.
func TestOverdueSeesPendingRequestsAndKeepsMarks(t *testing.T) {
	var r rec
	var seen []Exchange
	p := New(Config{RequestTimeout: time.Second, OverdueAfter: 100 * time.Millisecond, Overdue: func(e *Exchange) {
		seen = append(seen, *e)
		e.Marks |= 1 << len(seen)
	}}, r.emit)
	ms := uint64(time.Millisecond)
	p.Request(0, cli, srv, 1, req("GET", "/a"))
	p.Request(50*ms, cli, srv, 2, req("GET", "/b")) // pipelined behind /a
	p.Expire(99 * ms)
	if len(seen) != 0 {
		t.Fatalf("young requests swept: %+v", seen)
	}
	p.Expire(120 * ms) // /a only: /b is 70 ms old
	p.Expire(200 * ms) // both
	if len(seen) != 3 || seen[0].Target != "/a" || seen[0].Outcome != Pending || seen[0].Latency() != 120*time.Millisecond ||
		seen[1].Target != "/a" || seen[1].Marks != 1<<1 || seen[2].Target != "/b" || seen[2].Marks != 0 {
		t.Fatalf("sweeps %+v", seen)
	}
	p.Response(300*ms, srv, cli, 10, resp(200))
	p.Expire(2 * uint64(time.Second)) // /b times out
	if len(r.got) != 2 || r.got[0].Marks != 1<<1|1<<2 || r.got[0].Outcome != Complete || r.got[1].Outcome != Timeout || r.got[1].Marks != 1<<3 {
		t.Fatalf("exchanges %+v", r.got)
	}
	if s := p.Stats(); s.Overdue != 3 {
		t.Fatalf("stats %+v", s)
	}
}

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/reqtiming"
)

func monoNow(t *testing.T) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

// TestRequestTimings: requests through the HTTP/1.1 engine and through
// net/http's path (a chunked body) leave a timing record each, with the
// client connection's two addresses as the kernel sees them, the endpoint
// that served, the request ID sent to the backend, and the head read in
// CLOCK_MONOTONIC inside the client's own window.
func TestRequestTimings(t *testing.T) {
	var gotIDs []string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotIDs = append(gotIDs, r.Header.Get("X-Request-Id"))
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(be.Close)
	backend := ir.Backend{Name: "default/be:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, be.Listener.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", backend)))}}, Options{})
	addr := strings.TrimPrefix(p.url(t, "l"), "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	requests := []string{
		"GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: engine-1\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nX-Request-Id: nethttp-1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	}
	for i, req := range requests {
		before := monoNow(t)
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		after := monoNow(t)
		id := []string{"engine-1", "nethttp-1"}[i]
		var rec reqtiming.Record
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var ok bool
			if rec, ok = p.RequestTiming(id); ok || time.Now().After(deadline) {
				break
			}
		}
		if rec.RequestID != id || rec.Status != 200 || rec.Route != "r" {
			t.Fatalf("%s: record %+v", id, rec)
		}
		if rec.Client != netip.MustParseAddrPort(conn.LocalAddr().String()) || rec.Local != netip.MustParseAddrPort(addr) {
			t.Errorf("%s: client %v local %v, want %v and %v", id, rec.Client, rec.Local, conn.LocalAddr(), addr)
		}
		if rec.Upstream != netip.MustParseAddrPort(be.Listener.Addr().String()) {
			t.Errorf("%s: upstream %v, want %v", id, rec.Upstream, be.Listener.Addr())
		}
		// The head is read inside the client's window; the record is
		// written once the response went out, which can be after the
		// client read it.
		if rec.HeadMono < before || rec.HeadMono > after || rec.HeadMono > rec.EndMono {
			t.Errorf("%s: head %d (end %d) outside the client's window %d..%d", id, rec.HeadMono, rec.EndMono, before, after)
		}
	}
	if strings.Join(gotIDs, ",") != "engine-1,nethttp-1" {
		t.Errorf("backend got %v", gotIDs)
	}
	page := p.RequestTimings(0, 10)
	if page.Next != 2 || len(page.Records) != 2 || page.Records[0].RequestID != "engine-1" {
		t.Fatalf("page %+v", page)
	}
	if page := p.RequestTimings(1, 10); len(page.Records) != 1 || page.Records[0].Seq != 2 {
		t.Fatalf("after 1: %+v", page)
	}
}

// TestRequestTimingsH2Streams: requests over one h2c connection (prior
// knowledge) leave records naming that connection's two addresses and
// each request's own stream (1, 3, 5: the client opens odd streams in
// order), which is what the observer pairs a record with when several
// streams share the connection.
func TestRequestTimingsH2Streams(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(be.Close)
	backend := ir.Backend{Name: "default/be:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, be.Listener.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", backend)))}}, Options{})
	c := h2cClient()
	var local netip.AddrPort
	for i := range 3 {
		req := mustReq(t, "GET", p.url(t, "l")+"/", nil)
		req.Header.Set("X-Request-Id", fmt.Sprintf("h2-%d", i))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { local = netip.MustParseAddrPort(info.Conn.LocalAddr().String()) },
		}))
		if resp, _, _ := do(t, c, req); resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("h2-%d", i)
		var rec reqtiming.Record
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var ok bool
			if rec, ok = p.RequestTiming(id); ok || time.Now().After(deadline) {
				break
			}
		}
		if rec.RequestID != id || rec.Stream != uint32(2*i+1) || rec.Client != local || rec.Local != netip.MustParseAddrPort(p.Addr("l").String()) {
			t.Errorf("%s: stream %d client %v local %v, want stream %d on %v to %v", id, rec.Stream, rec.Client, rec.Local, 2*i+1, local, p.Addr("l"))
		}
	}
}

// TestRequestTimingsRing: the ring holds its size, a page never returns an
// overwritten record, and off (negative) serves nothing.
func TestRequestTimingsRing(t *testing.T) {
	r := newRequestTimings(4)
	now := time.Now()
	for i := range 10 {
		ex := exchange{requestID: "id" + string(rune('0'+i)), upstream: "10.0.0.1:80"}
		r.put("gw", "rt", &ex, 200, now, now.Add(time.Millisecond))
	}
	p := r.page(0, 100)
	if p.Next != 10 || len(p.Records) != 4 || p.Records[0].RequestID != "id6" || p.Records[3].RequestID != "id9" {
		t.Fatalf("page %+v", p)
	}
	if p := r.page(8, 1); len(p.Records) != 1 || p.Records[0].Seq != 9 {
		t.Fatalf("limit 1 after 8: %+v", p)
	}
	if _, ok := r.find("id2"); ok {
		t.Fatal("an overwritten record was found")
	}
	if rec, ok := r.find("id7"); !ok || rec.EndMono-rec.HeadMono != uint64(time.Millisecond) || rec.Upstream.Port() != 80 {
		t.Fatalf("id7: %v %+v", ok, rec)
	}
	if newRequestTimings(-1) != nil {
		t.Fatal("negative size: want off")
	}
}

// BenchmarkRequestTimingsPut: the ring write alone, from every P at once
// (the request path's cost of the timing record).
func BenchmarkRequestTimingsPut(b *testing.B) {
	r := newRequestTimings(0)
	now := time.Now()
	ex := exchange{requestID: "5f0c2a9e41d07b3c-1a-3", upstream: "10.0.0.1:8080",
		client: netip.MustParseAddrPort("10.0.0.2:40000"), local: netip.MustParseAddrPort("10.0.0.1:80")}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.put("default/gw", "httproute/default/web/rule/0", &ex, 200, now, now)
		}
	})
}

// BenchmarkEngineLoopbackTimings is BenchmarkEngineLoopback with the ring
// on (the default) and off.
func BenchmarkEngineLoopbackTimings(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"on", 0}, {"off", -1}} {
		b.Run(c.name, func(b *testing.B) {
			ec := newEngineClientWith(b, Options{RequestTimings: c.size})
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ec.get(b)
			}
		})
	}
}

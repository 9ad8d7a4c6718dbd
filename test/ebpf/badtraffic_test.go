package ebpf

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

// rawServer accepts connections in the server namespace and hands each to
// fn; connections are closed when the test ends.
func rawServer(t *testing.T, tp *topology, port int, fn func(net.Conn)) string {
	t.Helper()
	ln := tp.listen(t, port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go fn(c)
		}
	}()
	return fmt.Sprintf("%s:%d", tp.serverIP, port)
}

func send(t *testing.T, tp *topology, addr string, chunks ...string) net.Conn {
	t.Helper()
	c, err := tp.dial(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetNoDelay(true)
	for _, ch := range chunks {
		if _, err := io.WriteString(c, ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c
}

// TestBadTrafficIsCountedNotGuessed: TLS, HTTP/2, garbage, a header split
// across segments, responses nobody asked for and a flood of connections.
// Nothing crashes, the connection table stays bounded, what cannot be
// parsed is counted, and real traffic is still observed correctly after.
func TestBadTrafficIsCountedNotGuessed(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	const maxConns = 64
	obs := startObserver(t, tp, "tc", func(c *observe.Config) { c.MaxConns = maxConns })

	// A server that answers before being asked.
	unsolicited := rawServer(t, tp, 9000, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	// A server that reads and never answers.
	blackhole := rawServer(t, tp, 9001, func(c net.Conn) { io.Copy(io.Discard, c) })

	send(t, tp, addr, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not really TLS")
	send(t, tp, addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	send(t, tp, addr, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09garbage")
	send(t, tp, addr, "GET /bad\x01path HTTP/1.1\r\nHost: x\r\n\r\n")
	// Request line split over two segments.
	seg := send(t, tp, addr, "GET /seg", "mented HTTP/1.1\r\nHost: x\r\n\r\n")
	seg.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(io.LimitReader(seg, 1))
	uc := send(t, tp, unsolicited)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(io.LimitReader(uc, 10))

	// Flood: more connections with a pending request than the table holds.
	const flood = 300
	for i := range flood {
		send(t, tp, blackhole, fmt.Sprintf("GET /flood?%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
	}

	// Real traffic still works and is observed.
	c := httpClient(tp, true)
	res := do(t, c, "GET", "http://"+addr+"/status/418?after=1", "")
	recs := obs.waitRecords(t, func(r []record) bool {
		for _, e := range exchanges(r) {
			if e.Target == "/status/418?after=1" {
				return true
			}
		}
		return false
	})
	var after, seg404 bool
	for _, e := range exchanges(recs) {
		if e.Target == "/status/418?after=1" && e.Status == res.status {
			after = true
		}
		// The kernel saw only "GET /seg": the target is what was captured.
		if e.Target == "/seg" && e.Status == 404 {
			seg404 = true
		}
		if strings.HasPrefix(e.Target, "/flood") {
			t.Errorf("unanswered request reported as an exchange: %+v", e)
		}
	}
	if !after {
		t.Error("normal request after the bad traffic was not observed correctly")
	}
	if !seg404 {
		t.Error("split request line not paired with its 404")
	}
	time.Sleep(300 * time.Millisecond) // counters are published every 250ms
	checks := []struct {
		name, labels string
		min, max     float64
	}{
		{"rauta_observer_non_http_segments_total", "", 4, 1e9},
		{"rauta_observer_parse_failures_total", `message="request",reason="malformed"`, 1, 1e9},
		{"rauta_observer_unmatched_responses_total", "", 1, 1e9},
		{"rauta_observer_connection_evictions_total", "", flood - maxConns, 1e9},
		{"rauta_observer_evicted_requests_total", "", flood - maxConns, 1e9},
		{"rauta_observer_tracked_connections", "", 1, maxConns},
		{"rauta_observer_ringbuf_dropped_total", "", 0, 0},
	}
	for _, c := range checks {
		v := obs.metric(t, c.name, c.labels)
		if v < c.min || v > c.max {
			t.Errorf("%s{%s} = %v, want [%v, %v]", c.name, c.labels, v, c.min, c.max)
		}
	}
}

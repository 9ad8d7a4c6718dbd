package ebpf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

// TestPhantomTrafficLeavesRealRoutesLabelled (issue 16 point 7): memcached-
// and redis-like "GET key" lines used to become timed-out exchanges of
// services named after each server, filling the service budget, and a
// scanner's unique paths held the route budget for ever; real traffic
// after them was all _OTHER. Now the lines are not requests, and the
// scanner's routes make room once idle.
func TestPhantomTrafficLeavesRealRoutesLabelled(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	const idle = time.Second
	obs := startObserver(t, tp, "tc", func(c *observe.Config) {
		c.MaxServices = 3
		c.MaxRoutesPerService = 3
		c.RequestTimeout = 300 * time.Millisecond
		c.LabelIdle = idle
	})
	// Text-protocol servers: answer each line with END, as memcached does
	// for a miss (redis would say $-1).
	textServer := func(port int) string {
		return rawServer(t, tp, port, func(c net.Conn) {
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				io.WriteString(c, "END\r\n")
			}
		})
	}
	for _, port := range []int{11211, 11212, 6379, 6380} {
		srv := textServer(port)
		c := send(t, tp, srv, "GET key\r\n", "GET user:1000\r\n", "GET session:abc HTTP\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 15)
		io.ReadFull(c, buf)
	}
	// A scanner: unique paths on the real server.
	scan := httpClient(tp, true)
	for i := range 10 {
		do(t, scan, "GET", fmt.Sprintf("http://%s/probe%d/admin.php", addr, i), "")
	}
	// Past the request timeout (phantom timeouts would have fired) and the
	// idle age (the scanner's routes may make room).
	time.Sleep(idle + 500*time.Millisecond)

	c := httpClient(tp, true)
	real := []string{"/ok?r=1", "/status/503?r=2", "/delay/1?r=3", "/ok?r=4"}
	for _, path := range real {
		do(t, c, "GET", "http://"+addr+path, "")
	}
	recs := obs.waitRecords(t, func(r []record) bool {
		n := 0
		for _, e := range exchanges(r) {
			if strings.Contains(e.Target, "?r=") {
				n++
			}
		}
		return n >= len(real)
	})
	seen := 0
	for _, e := range exchanges(recs) {
		if strings.Contains(e.Service, ":11211") || strings.Contains(e.Service, ":6379") || strings.Contains(e.Service, ":1121") || strings.Contains(e.Service, ":638") {
			t.Errorf("phantom exchange from a text protocol: %+v", e)
		}
		if !strings.Contains(e.Target, "?r=") {
			continue
		}
		seen++
		if e.Route == "_OTHER" || e.Service == "_OTHER" {
			t.Errorf("real request %s labelled service %q route %q after phantom traffic", e.Target, e.Service, e.Route)
		}
	}
	if seen != len(real) {
		t.Errorf("observed %d of %d real requests", seen, len(real))
	}
	// The evicted scanner routes' series are deleted, not kept for ever.
	if n := obs.metric(t, "http_server_request_duration_seconds_count", `http_route="/probe`); n != 0 {
		t.Errorf("%v requests still counted under scanner routes that were evicted", n)
	}
}

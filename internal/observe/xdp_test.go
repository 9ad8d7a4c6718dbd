package observe

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestXDPOnOneInterfaceRefused (issue 16 point 8): -mode xdp on a pod-side
// interface started and silently turned every exchange into a timeout.
func TestXDPOnOneInterfaceRefused(t *testing.T) {
	c := Defaults()
	c.Mode = "xdp"
	c.Interfaces = []string{"veth1234"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "XDP sees only packets entering") || !strings.Contains(err.Error(), "-mode tc") {
		t.Fatalf("xdp on one interface: %v, want a refusal that explains", err)
	}
	c.Interfaces = []string{"eth0", "eth1"} // both legs of a router
	if err := c.Validate(); err != nil {
		t.Fatalf("xdp on two interfaces: %v", err)
	}
}

// TestOneWayTrafficDetected: with several XDP interfaces that still carry
// one direction only, Run warns once the pipeline sees requests and no
// response at all.
func TestOneWayTrafficDetected(t *testing.T) {
	var out bytes.Buffer
	p, _ := newTestPipeline(t, Defaults(), &out)
	ts := uint64(time.Hour)
	for i := range 25 {
		p.handle(ev(ts, fmt.Sprintf("10.0.0.1:%d", 30000+i), "10.0.0.2:8080", 1, "GET /a HTTP/1.1\r\n\r\n"))
		if i == 5 && p.oneWay() {
			t.Fatal("one-way after 6 requests: too early to tell")
		}
	}
	if !p.oneWay() {
		t.Fatal("25 requests and no response: one-way not detected")
	}
	p.handle(ev(ts+1000, "10.0.0.2:8080", "10.0.0.1:30000", 1, "HTTP/1.1 200 OK\r\n\r\n"))
	if p.oneWay() {
		t.Fatal("a response was seen: not one-way")
	}
}

// TestTrackedConnectionsFall (issue 16 point 8): the gauge
// rauta_observer_tracked_connections only ever grew.
func TestTrackedConnectionsFall(t *testing.T) {
	var out bytes.Buffer
	p, _ := newTestPipeline(t, Defaults(), &out)
	ts := uint64(time.Hour)
	for i := range 50 {
		c := fmt.Sprintf("10.0.0.1:%d", 30000+i)
		p.handle(ev(ts, c, "10.0.0.2:8080", 1, "GET /a HTTP/1.1\r\n\r\n"))
		p.handle(ev(ts+1000, "10.0.0.2:8080", c, 1, "HTTP/1.1 200 OK\r\n\r\n"))
	}
	p.tick(ts+uint64(time.Second), p.local.Kernel, 0)
	if n := p.counters().Pair.Open; n != 50 {
		t.Fatalf("tracked %d, want 50", n)
	}
	p.tick(ts+uint64(2*time.Minute), p.local.Kernel, 0)
	if n := p.counters().Pair.Open; n != 0 {
		t.Fatalf("tracked %d two minutes after the last message, want 0", n)
	}
}

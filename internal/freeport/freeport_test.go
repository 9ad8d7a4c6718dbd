package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreDistinctFreeAndBelowTheEphemeralRange(t *testing.T) {
	ports, err := Ports(20)
	if err != nil {
		t.Fatal(err)
	}
	top := ephemeralStart()
	seen := map[int]bool{}
	for _, p := range ports {
		if p < low || p >= top {
			t.Errorf("port %d outside %d-%d", p, low, top-1)
		}
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d not free: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestPortsSkipsAPortInUse(t *testing.T) {
	// Hold every port but a few of a small window: the search must not
	// return a held one. Shrinking the range is not possible from here, so
	// hold the ports a first call returned and check a second call avoids them.
	first, err := Ports(50)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Listener
	for _, p := range first {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("hold %d: %v", p, err)
		}
		held = append(held, l)
	}
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	inUse := map[int]bool{}
	for _, p := range first {
		inUse[p] = true
	}
	for range 20 {
		second, err := Ports(50)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range second {
			if inUse[p] {
				t.Fatalf("port %d returned while held", p)
			}
		}
	}
}

// A port for TCP and UDP is below the ephemeral range and binds both.
func TestPortTCPAndUDP(t *testing.T) {
	p, err := PortTCPAndUDP()
	if err != nil {
		t.Fatal(err)
	}
	if p < low || p >= ephemeralStart() {
		t.Fatalf("port %d outside %d-%d", p, low, ephemeralStart()-1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("TCP: %v", err)
	}
	defer l.Close()
	c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("UDP: %v", err)
	}
	c.Close()
}

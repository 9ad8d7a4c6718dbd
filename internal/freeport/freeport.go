// Package freeport picks TCP ports for tests and benchmarks to hand to the
// servers they start.
//
// Asking the kernel for port 0 and closing the listener is racy in a busy
// test run: the port comes from the ephemeral range, so any outgoing
// connection made by a parallel test can take it before the server binds
// it (CI failed once on exactly that: EADDRINUSE on a port chosen a moment
// before). Ports below the ephemeral range are never given to outgoing
// connections, so only another explicit bind can collide, and a random
// choice makes that unlikely.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// low is the bottom of the range ports are picked from: above the fixed
// ports the project's tools use (8080, 9090, 15001, 18xxx, 19000).
const low = 20000

// high is used when the kernel's ephemeral range cannot be read: Linux's
// default starts at 32768.
const high = 32768

// attempts bounds the search for n free ports.
const attempts = 1000

// Ports returns n distinct ports that are free on every local address now
// and outside the kernel's ephemeral range. The probes stay bound until all
// n are chosen, so one call never returns the same port twice.
func Ports(n int) ([]int, error) {
	top := ephemeralStart()
	var ports []int
	var probes []net.Listener
	defer func() {
		for _, l := range probes {
			l.Close()
		}
	}()
	for range attempts {
		if len(ports) == n {
			return ports, nil
		}
		p := low + rand.IntN(top-low)
		// The wildcard address conflicts with a socket bound to any
		// address on the port, so a port that binds here binds anywhere.
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		probes = append(probes, l)
		ports = append(ports, p)
	}
	if len(ports) == n {
		return ports, nil
	}
	return nil, fmt.Errorf("freeport: found %d of %d free ports in %d-%d after %d tries", len(ports), n, low, top-1, attempts)
}

// Port is Ports(1).
func Port() (int, error) {
	p, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// PortTCPAndUDP returns a port free for TCP and for UDP on every local
// address now, outside the kernel's ephemeral range: for a listener pair
// that serves both on one port (a DNS gateway).
func PortTCPAndUDP() (int, error) {
	for range attempts {
		p, err := Port()
		if err != nil {
			return 0, err
		}
		c, err := net.ListenPacket("udp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		c.Close()
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no port free for both TCP and UDP after %d tries", attempts)
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return high
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return high
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || v <= low+100 {
		return high
	}
	return v
}

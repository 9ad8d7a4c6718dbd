package svcproxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkConnect measures a new connection with a one-byte exchange, straight to an echo
// server and through a listener, so the proxy's setup cost per connection is the difference.
// go test -run - -bench Connect ./test/devcluster/svcproxy/
func BenchmarkConnect(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	conns := newConnTracker()
	defer conns.close()
	l, err := listen(netip.MustParseAddrPort("127.0.0.1:0"), defaultMaxConns, time.Second, 1, conns)
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	l.setBackends([]netip.AddrPort{netip.MustParseAddrPort(ln.Addr().String())})

	for _, tc := range []struct{ name, addr string }{{"direct", ln.Addr().String()}, {"proxied", l.ln.Addr().String()}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := []byte{'x'}
			for b.Loop() {
				c, err := net.Dial("tcp4", tc.addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// BenchmarkUDPRoundTrip is one 512-byte datagram and its echo, one at a
// time on one flow, straight to the backend and through a UDP listener:
// the difference is the relay's cost per datagram pair.
func BenchmarkUDPRoundTrip(b *testing.B) {
	echo := newUDPEcho(b, "echo")
	p := startProxy(b, &ir.Snapshot{Listeners: []ir.Listener{udpListener("udp", udpBackend("default/echo:53", 1, echo.endpoint()))}}, Options{})
	payload := make([]byte, 512)
	for _, tc := range []struct {
		name string
		addr net.Addr
	}{{"direct", echo.conn.LocalAddr()}, {"gateway", p.Addr("udp")}} {
		b.Run(tc.name, func(b *testing.B) {
			c := udpClient(b, tc.addr)
			buf := make([]byte, 2048)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := c.Write(payload); err != nil {
					b.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

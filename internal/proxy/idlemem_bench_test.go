package proxy

import (
	"bufio"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// BenchmarkIdleConnMemory opens 2,000 HTTP/1.1 keep-alive connections to
// the engine, each after one request, and reports the heap and stack held
// per idle connection: the proxy's, and the test client's few hundred
// bytes (its net.Conn and a 16-byte reader); the kernel's socket buffers
// are not in it. The proxybench idle cell measures the
// whole process's RSS against nginx and HAProxy.
//
//	go test -run '^$' -bench IdleConnMemory ./internal/proxy/
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 2000
	echo := newEchoBackend(b, "echo")
	p := startProxy(b, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", echo.backend(1))))}}, Options{})
	addr := p.Addr("l").String()
	for b.Loop() {
		clients := make([]net.Conn, 0, conns)
		readers := make([]*bufio.Reader, 0, conns)
		before := idleMemory()
		for range conns {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
			readers = append(readers, bufio.NewReaderSize(c, 16))
		}
		for i, c := range clients {
			rawGet(b, c, readers[i], "/")
		}
		after := idleMemory()
		b.ReportMetric(float64(after-before)/conns, "B/idle-conn")
		for _, c := range clients {
			c.Close()
		}
	}
}

// idleMemory is the heap and stack in use after a collection.
func idleMemory() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/ir"
)

// BenchmarkAccessLogParallel writes access log lines from many goroutines
// to /dev/null (a real write syscall per write, as stdout has): the cost
// a request pays for its line, and whether requests queue behind each
// other to pay it. Each goroutine yields after its line, as a request
// does when it waits for the network; without that the writer goroutine
// would starve behind goroutines that never block and most lines would be
// dropped (dropped/op says how many were).
func BenchmarkAccessLogParallel(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
	l := newAccessLog(f, dropped)
	defer l.close(time.Second)
	// Lines dropped would make the writes look cheaper than they are:
	// report them.
	defer func() { b.ReportMetric(counterValue(dropped)/float64(b.N), "dropped/op") }()
	start := time.Now()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.write(start, &accessEntry{
				Gateway: "default/gw", Route: "HTTPRoute/default/web/rule/0", Method: "GET", Host: "bench.example",
				Path: "/bench/item", Status: 200, Bytes: 1024, DurationMS: 0.25, Upstream: "10.0.0.7:8080", Client: "10.0.0.1",
			})
			runtime.Gosched()
		}
	})
}

// BenchmarkEngineLoopbackAccessLog is BenchmarkEngineLoopback with the
// access log on, written to /dev/null.
func BenchmarkEngineLoopbackAccessLog(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ec := newEngineClientWith(b, Options{AccessLog: f})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ec.get(b)
	}
}

// BenchmarkEngineLoopbackTraced is BenchmarkEngineLoopback with tracing on:
// "unsampled" is the cost of tracing being configured (ratio 0, no
// traceparent), "sampled" of a server and a client span per request sent
// to an OTLP receiver that discards them.
func BenchmarkEngineLoopbackTraced(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer rcv.Close()
	for _, bc := range []struct {
		name  string
		ratio float64
	}{{"unsampled", 0}, {"sampled", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			ec := newEngineClientWith(b, Options{Tracing: TracingOptions{Endpoint: rcv.URL, SampleRatio: bc.ratio, QueueSize: 1 << 16}})
			ec.get(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ec.get(b)
			}
		})
	}
}

// BenchmarkProxyLoopbackAccessLog is BenchmarkProxyLoopback (four client
// goroutines per core through the HTTP/1.1 engine) with the access log on,
// written to /dev/null.
func BenchmarkProxyLoopbackAccessLog(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	be := newCannedBackend(b, 1024)
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", catchAll(prefixRoute("default/bench", "/", be.backend()))),
	}}
	p := startProxy(b, snap, Options{AccessLog: f})
	url := p.url(b, "http") + "/bench/item?id=7"
	c := newClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.StopTimer()
	if n := p.counter(b, "rauta_access_log_dropped_total"); n > 0 {
		b.ReportMetric(n/float64(b.N), "dropped/op")
	}
}

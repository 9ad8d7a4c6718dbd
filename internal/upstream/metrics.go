package upstream

import (
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// countedConn is a backend connection of the upstream pool that counts
// itself open until its first Close, for http_client_open_connections.
// Embedding *net.TCPConn keeps SyscallConn, which the engine's raw reads
// and writes need (internal/h1/socket.go).
type countedConn struct {
	*net.TCPConn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.TCPConn.Close()
}

// counted wraps a dialed connection; anything but TCP stays as it is.
func (p *Pool) counted(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	p.open.Add(1)
	return &countedConn{TCPConn: tc, open: &p.open}
}

// idleCount is the number of pooled idle connections.
func (p *Pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.idle {
		n += len(l.conns)
	}
	return n
}

// openConnsCollector exports http_client_open_connections (OpenTelemetry
// http.client.open_connections) for the upstream pool at scrape time, so
// requests pay nothing for it: idle connections in the pool, and active
// ones (open, not idle: carrying an exchange). The Transports of TLS and
// h2c backends keep their own connections, not counted here.
type openConnsCollector struct {
	pool *Pool
	desc *prometheus.Desc
}

func NewOpenConnsCollector(pool *Pool) *openConnsCollector {
	return &openConnsCollector{pool: pool, desc: prometheus.NewDesc("http_client_open_connections",
		"Backend connections of the HTTP/1.1 upstream pool by state: active (carrying an exchange) or idle (OpenTelemetry http.client.open_connections).",
		[]string{"http_connection_state"}, nil)}
}

func (c *openConnsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *openConnsCollector) Collect(ch chan<- prometheus.Metric) {
	idle := c.pool.idleCount()
	active := max(int(c.pool.open.Load())-idle, 0)
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(idle), "idle")
}

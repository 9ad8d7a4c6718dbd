package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// streamCollector exports the relaying listeners' connections and bytes
// (stream.go), read from each socket's counters at scrape time: a listener
// that goes away takes its series with it, so removed listeners leave no
// stale labels, and the relay pays one atomic add per write.
type streamCollector struct{ s *Server }

var (
	streamActiveDesc = prometheus.NewDesc("rauta_stream_connections",
		"Relayed connections open (TLS passthrough and TCP listeners), by listener.", []string{"listener"}, nil)
	streamAcceptedDesc = prometheus.NewDesc("rauta_stream_connections_total",
		"Relayed connections accepted, by listener.", []string{"listener"}, nil)
	streamRefusedDesc = prometheus.NewDesc("rauta_stream_connections_refused_total",
		"Connections closed at accept because the listener had MaxStreamConns open, by listener.", []string{"listener"}, nil)
	streamBytesDesc = prometheus.NewDesc("rauta_stream_bytes_total",
		"Bytes relayed, by listener and direction (received from clients, sent to clients).", []string{"listener", "direction"}, nil)
)

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamActiveDesc
	ch <- streamAcceptedDesc
	ch <- streamRefusedDesc
	ch <- streamBytesDesc
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, sock := range c.s.sockets {
		sc := sock.streams
		if sc == nil {
			continue
		}
		name := sock.cfg.Load().name
		ch <- prometheus.MustNewConstMetric(streamActiveDesc, prometheus.GaugeValue, float64(sc.len()), name)
		ch <- prometheus.MustNewConstMetric(streamAcceptedDesc, prometheus.CounterValue, float64(sc.accepted.Load()), name)
		ch <- prometheus.MustNewConstMetric(streamRefusedDesc, prometheus.CounterValue, float64(sc.refused.Load()), name)
		ch <- prometheus.MustNewConstMetric(streamBytesDesc, prometheus.CounterValue, float64(sc.received.Load()), name, "received")
		ch <- prometheus.MustNewConstMetric(streamBytesDesc, prometheus.CounterValue, float64(sc.sent.Load()), name, "sent")
	}
}

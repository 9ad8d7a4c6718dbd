package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// udpCollector exports the UDP listeners' flows, datagrams dropped and
// bytes (udp.go), read from each socket's counters at scrape time, as
// streamCollector does: a removed listener leaves no series.
type udpCollector struct{ s *Server }

var (
	udpFlowsDesc = prometheus.NewDesc("rauta_udp_flows",
		"UDP flows (client addresses) open, by listener.", []string{"listener"}, nil)
	udpFlowsTotalDesc = prometheus.NewDesc("rauta_udp_flows_total",
		"UDP flows started, by listener.", []string{"listener"}, nil)
	udpFlowsRefusedDesc = prometheus.NewDesc("rauta_udp_flows_refused_total",
		"UDP flows not started because the listener held MaxUDPFlows, by listener.", []string{"listener"}, nil)
	udpDroppedDesc = prometheus.NewDesc("rauta_udp_datagrams_dropped_total",
		"UDP datagrams dropped, by listener and reason (flow_limit, no_route, backend_send, client_send).", []string{"listener", "reason"}, nil)
	udpBytesDesc = prometheus.NewDesc("rauta_udp_bytes_total",
		"UDP payload bytes, by listener and direction (received from clients, sent to clients).", []string{"listener", "direction"}, nil)
)

func (c udpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- udpFlowsDesc
	ch <- udpFlowsTotalDesc
	ch <- udpFlowsRefusedDesc
	ch <- udpDroppedDesc
	ch <- udpBytesDesc
}

func (c udpCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, sock := range c.s.sockets {
		us := sock.udp
		if us == nil {
			continue
		}
		name := sock.cfg.Load().name
		ch <- prometheus.MustNewConstMetric(udpFlowsDesc, prometheus.GaugeValue, float64(us.len()), name)
		ch <- prometheus.MustNewConstMetric(udpFlowsTotalDesc, prometheus.CounterValue, float64(us.flowsTotal.Load()), name)
		ch <- prometheus.MustNewConstMetric(udpFlowsRefusedDesc, prometheus.CounterValue, float64(us.flowsRefused.Load()), name)
		for i, reason := range udpDropReasonNames {
			ch <- prometheus.MustNewConstMetric(udpDroppedDesc, prometheus.CounterValue, float64(us.dropped[i].Load()), name, reason)
		}
		ch <- prometheus.MustNewConstMetric(udpBytesDesc, prometheus.CounterValue, float64(us.received.Load()), name, "received")
		ch <- prometheus.MustNewConstMetric(udpBytesDesc, prometheus.CounterValue, float64(us.sent.Load()), name, "sent")
	}
}

package mesh

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus instruments, on a registry of their
// own.
type metrics struct {
	reg       *prometheus.Registry
	frontends prometheus.Gauge
	slots     prometheus.Gauge
	syncs     *prometheus.CounterVec
	optedOut  *prometheus.GaugeVec
}

func newMetrics(stats func() (Stats, error)) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		frontends: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rauta_mesh_frontends",
			Help: "Service frontends (ClusterIP, port, protocol) in the kernel map.",
		}),
		slots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rauta_mesh_endpoint_slots",
			Help: "Endpoint slots in the kernel map, over all frontends.",
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_mesh_syncs_total",
			Help: "Map updates from Services and EndpointSlices, by result (ok, error: a map was full or a write failed).",
		}, []string{"result"}),
		optedOut: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rauta_mesh_opted_out_pods",
			Help: "Pods of this node that opted out of the mesh (label " + OptOutLabel + "), by state: applied (their cgroup is in the kernel map), no_cgroup (their cgroup was not found yet).",
		}, []string{"state"}),
	}
	m.reg.MustRegister(m.frontends, m.slots, m.syncs, m.optedOut, &kernelCollector{stats: stats},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// kernelCollector reads the programs' per-CPU counters at scrape time.
type kernelCollector struct{ stats func() (Stats, error) }

var (
	descTranslations = prometheus.NewDesc("rauta_mesh_socket_translations_total",
		"Connects and datagrams to a Service frontend, by what the kernel did: endpoint (sent to one), proxy (sent to the node mesh proxy), no_endpoints (refused with ECONNREFUSED), family (refused: IPv4 socket, IPv6 endpoint).",
		[]string{"result"}, nil)
	descSlotFallbacks = prometheus.NewDesc("rauta_mesh_slot_fallbacks_total",
		"Translations that found their endpoint slot deleted by a concurrent update and used slot 0.", nil, nil)
	descSockmap = prometheus.NewDesc("rauta_mesh_sockmap_total",
		"sockmap (-sockmap): sockets between two local addresses put into the sockhash (added), messages passed straight to the peer socket (redirected), messages whose peer was not in the sockhash and took the TCP path (no_peer).",
		[]string{"result"}, nil)
)

func (k *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTranslations
	ch <- descSlotFallbacks
	ch <- descSockmap
}

func (k *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := k.stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descTranslations, err)
		return
	}
	for _, r := range []struct {
		label string
		v     uint64
	}{{"endpoint", s.Translated}, {"proxy", s.Steered}, {"no_endpoints", s.NoEndpoints}, {"family", s.Family}} {
		ch <- prometheus.MustNewConstMetric(descTranslations, prometheus.CounterValue, float64(r.v), r.label)
	}
	ch <- prometheus.MustNewConstMetric(descSlotFallbacks, prometheus.CounterValue, float64(s.SlotMissing))
	for _, r := range []struct {
		label string
		v     uint64
	}{{"added", s.SockAdded}, {"redirected", s.Redirected}, {"no_peer", s.NoPeer}} {
		ch <- prometheus.MustNewConstMetric(descSockmap, prometheus.CounterValue, float64(r.v), r.label)
	}
}

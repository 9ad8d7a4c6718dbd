package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Workload names one end of a mesh request: the controller that owns a
// pod (a Deployment, StatefulSet, DaemonSet, Job, or the pod itself) and
// its namespace, Istio's source_workload/destination_workload.
type Workload struct {
	Name, Namespace string
}

// Peers tells a mesh-mode Server who called whom (Options.Peers). Both
// are called on every request and must not block or allocate.
type Peers interface {
	// Source is the workload of the client at addr.
	Source(client netip.Addr) Workload
	// Destination is the workload of the endpoint at addr that served a
	// request for service (the listener's gateway, namespace/name); addr
	// is invalid when no endpoint was picked.
	Destination(service string, endpoint netip.Addr) Workload
}

// DefaultMaxPeerValues is Options.MaxPeerValues' default: the distinct
// values each workload label takes before further ones become
// peerOverflow. 256 workloads on each side, times the routes' own series,
// is what one agent's /metrics stays readable at.
const DefaultMaxPeerValues = 256

// peerOverflow is the value of a workload label past its bound, the
// value the other labels use for what they do not name.
const peerOverflow = "_OTHER"

// peerLabels are the server-side labels a mesh-mode Server adds, after
// serverLabels; Istio's names. destination_service is the listener's
// gateway (the Service the client dialled), bounded by the configuration.
var peerLabels = []string{"source_workload", "source_workload_namespace", "destination_service", "destination_workload", "destination_workload_namespace"}

// The bounded peer labels, indexes into peerMetrics.values.
const (
	peerSrc = iota
	peerSrcNS
	peerDst
	peerDstNS
	peerBounded
)

// peerKey is one resolved mesh series: the route, its method/scheme/
// version table index, the status, and both workloads after bounding.
type peerKey struct {
	rm       *routeMetrics
	table    int
	code     int
	src, dst Workload
}

type peerSeries = pairSeries

// peerMetrics resolves the series of a mesh-mode Server, whose label
// set holds both workloads: series are created on a request's first
// (route, method, scheme, version, status, source, destination) and kept
// in one map, read under a read lock (the gateway's atomics would need a
// table per workload pair).
type peerMetrics struct {
	peers Peers
	max   int
	// overflow counts, by bounded label, the requests recorded with
	// peerOverflow in it.
	overflow [peerBounded]prometheus.Counter

	mu     sync.RWMutex
	series map[peerKey]*peerSeries
	// values are the admitted values of each bounded label.
	values [peerBounded]map[string]struct{}
}

func newPeerMetrics(peers Peers, max int, reg prometheus.Registerer) (*peerMetrics, error) {
	if max <= 0 {
		max = DefaultMaxPeerValues
	}
	overflow := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_mesh_workload_label_overflow_total",
		Help: "Mesh requests recorded with a workload label of _OTHER because the label already had its maximum of distinct values (Options.MaxPeerValues; rauta mesh -max-workload-values), by label.",
	}, []string{"label"})
	if err := reg.Register(overflow); err != nil {
		return nil, err
	}
	p := &peerMetrics{peers: peers, max: max, series: make(map[peerKey]*peerSeries)}
	for i := range p.values {
		p.values[i] = make(map[string]struct{})
		p.overflow[i] = overflow.WithLabelValues(peerLabels[peerLabelIndex(i)])
	}
	return p, nil
}

// observe records one request of rm like routeMetrics.observe, with the
// workloads of client and of the endpoint at upstream ("ip:port", "" when
// none was picked).
func (p *peerMetrics) observe(rm *routeMetrics, client, upstream, method, scheme string, proto uint8, code int, seconds float64, bytes int64) {
	var cl, ep netip.Addr // invalid when unparsable or none
	if a, err := netip.ParseAddr(client); err == nil {
		cl = a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(upstream); err == nil {
		ep = ap.Addr().Unmap()
	}
	src, dst := p.peers.Source(cl), p.peers.Destination(rm.gateway, ep)
	if code <= 0 || code >= maxStatus {
		code = 0
	}
	mi, si := methodIndex(method), schemeIndex(scheme)
	k := peerKey{rm: rm, table: tableIndex(mi, si, proto), code: code, src: src, dst: dst}
	var admit bool
	p.mu.RLock()
	// A series under the workloads as they are means each was admitted;
	// only a new or overflowing one pays the four bound lookups.
	s := p.series[k]
	if s == nil {
		k.src.Name, admit = p.bound(peerSrc, src.Name, admit)
		k.src.Namespace, admit = p.bound(peerSrcNS, src.Namespace, admit)
		k.dst.Name, admit = p.bound(peerDst, dst.Name, admit)
		k.dst.Namespace, admit = p.bound(peerDstNS, dst.Namespace, admit)
		s = p.series[k]
	}
	p.mu.RUnlock()
	if s == nil || admit {
		s = p.resolve(k, src, dst, mi, si, proto)
	}
	rm.m.server.observe(s, 0, seconds)
	rm.m.server.observe(s, 1, float64(bytes))
}

// bound returns v if label i admitted it, peerOverflow (counted) if the
// label is full; admit turns true when v could still be admitted, which
// resolve does under the write lock. Callers hold p.mu.
func (p *peerMetrics) bound(i int, v string, admit bool) (string, bool) {
	if _, ok := p.values[i][v]; ok {
		return v, admit
	}
	if len(p.values[i]) < p.max {
		return v, true
	}
	p.overflow[i].Inc()
	return peerOverflow, admit
}

// peerLabelIndex maps a bounded label to its index in peerLabels.
func peerLabelIndex(i int) int {
	if i >= peerDst {
		return i + 1 // destination_service sits between
	}
	return i
}

// resolve admits what k's values still can and returns the series of the
// bounded key, creating it.
func (p *peerMetrics) resolve(k peerKey, src, dst Workload, mi, si int, proto uint8) *peerSeries {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw := [peerBounded]string{src.Name, src.Namespace, dst.Name, dst.Namespace}
	got := [peerBounded]*string{&k.src.Name, &k.src.Namespace, &k.dst.Name, &k.dst.Namespace}
	for i, v := range raw {
		if *got[i] != v {
			continue // already counted as overflow
		}
		if _, ok := p.values[i][v]; ok {
			continue
		}
		if len(p.values[i]) < p.max {
			p.values[i][v] = struct{}{}
			continue
		}
		p.overflow[i].Inc()
		*got[i] = peerOverflow
	}
	if s := p.series[k]; s != nil {
		return s
	}
	rm := k.rm
	labels := append(rm.labelValues(mi, si, proto, k.code, len(peerLabels)),
		k.src.Name, k.src.Namespace, rm.gateway, k.dst.Name, k.dst.Namespace)
	s := rm.m.server.get(labels)
	p.series[k] = s
	return s
}

// forgetWorkloads deletes the series whose source or destination keep
// says is gone, and frees their label values for new workloads.
// peerOverflow is never gone.
func (p *peerMetrics) forgetWorkloads(keep func(Workload) bool, m *metrics) {
	live := func(w Workload) bool {
		return w.Name == peerOverflow || w.Namespace == peerOverflow || keep(w)
	}
	p.forget(func(k peerKey) bool { return !live(k.src) || !live(k.dst) }, m)
}

// forget drops the entries gone says are, deleting their series from m's
// vectors when m is set, and rebuilds the admitted values from the rest.
func (p *peerMetrics) forget(gone func(peerKey) bool, m *metrics) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.series {
		if !gone(k) {
			continue
		}
		delete(p.series, k)
		if m != nil {
			m.server.delete(s.labels)
		}
	}
	for i := range p.values {
		clear(p.values[i])
	}
	for k := range p.series {
		for i, v := range [peerBounded]string{k.src.Name, k.src.Namespace, k.dst.Name, k.dst.Namespace} {
			if v != peerOverflow {
				p.values[i][v] = struct{}{}
			}
		}
	}
}

// ForgetWorkloads deletes the series of workloads keep says are gone,
// freeing their label values (Options.MaxPeerValues) for new ones; the
// mesh calls it when its pods change. A no-op outside mesh mode.
func (s *Server) ForgetWorkloads(keep func(Workload) bool) {
	if pm := s.metrics.peer; pm != nil {
		pm.forgetWorkloads(keep, s.metrics)
	}
}

// newServerMetrics creates the Server's collectors: the gateway's label
// set, or in mesh mode (opts.Peers) the same with peerLabels after it.
func newServerMetrics(reg prometheus.Registerer, opts Options) (*metrics, error) {
	if opts.Peers == nil {
		return newMetrics(reg)
	}
	m, err := newMetricsWith(reg, append(slices.Clip(serverLabels), peerLabels...))
	if err != nil {
		return nil, err
	}
	m.peer, err = newPeerMetrics(opts.Peers, opts.MaxPeerValues, reg)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

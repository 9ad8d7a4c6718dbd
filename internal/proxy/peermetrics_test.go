package proxy

import (
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/ir"
)

// tablePeers is the Peers of a test: workloads by address, as the mesh
// agent keeps its node's pods; source, when set, names the client
// whatever its address (the bound test's many clients from one loopback
// address). It records the service each Destination call was given.
type tablePeers struct {
	mu       sync.Mutex
	sources  map[netip.Addr]Workload
	dests    map[netip.Addr]Workload
	source   *Workload
	services []string
}

func (p *tablePeers) Source(a netip.Addr) Workload {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.source != nil {
		return *p.source
	}
	if w, ok := p.sources[a]; ok {
		return w
	}
	return Workload{Name: "unknown", Namespace: "unknown"}
}

func (p *tablePeers) Destination(service string, a netip.Addr) Workload {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.services = append(p.services, service)
	if w, ok := p.dests[a]; ok {
		return w
	}
	return Workload{Name: "unknown", Namespace: "unknown"}
}

func (p *tablePeers) setSource(w Workload) {
	p.mu.Lock()
	p.source = &w
	p.mu.Unlock()
}

// serverLabelNames returns the label names of every series of metric.
func serverLabelNames(t *testing.T, p *testProxy, metric string) [][]string {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			slices.Sort(names)
			out = append(out, names)
		}
	}
	return out
}

func peerSnapshot(t *testing.T, be *statusBackend) *ir.Snapshot {
	l := httpListener("l", catchAll(prefixRoute("mesh/shop/api/80/rule/0", "/", be.backend(t))))
	l.Gateway = "shop/api" // the mesh's listeners are named for the Service dialled
	return &ir.Snapshot{Listeners: []ir.Listener{l}}
}

// TestMeshMetricsCarryWorkloads: in mesh mode, a request from a real
// client through a real Server lands in a series naming the client's
// workload (found from the connection's address), the Service dialled and
// the workload of the endpoint the request went to (found from the
// endpoint's address).
func TestMeshMetricsCarryWorkloads(t *testing.T) {
	be := newStatusBackend(t)
	beAddr := netip.MustParseAddrPort(be.srv.Listener.Addr().String()).Addr()
	peers := &tablePeers{
		sources: map[netip.Addr]Workload{netip.MustParseAddr("127.0.0.1"): {Name: "frontend", Namespace: "web"}},
		dests:   map[netip.Addr]Workload{beAddr: {Name: "api", Namespace: "shop"}},
	}
	p := startProxy(t, peerSnapshot(t, be), Options{Peers: peers})
	cl := newClient()
	for _, path := range []string{"/s/200", "/s/200", "/s/503"} {
		resp, err := cl.Get(p.url(t, "l") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	labels := []string{"gateway", "shop/api", "http_route", "mesh/shop/api/80/rule/0", "http_request_method", "GET",
		"source_workload", "frontend", "source_workload_namespace", "web",
		"destination_service", "shop/api", "destination_workload", "api", "destination_workload_namespace", "shop"}
	if n := p.histogramCount(t, "http_server_request_duration_seconds", append(labels, "http_response_status_code", "200")...); n != 2 {
		t.Errorf("duration series of 200s with both workloads: %v samples, want 2", n)
	}
	if n := p.histogramCount(t, "http_server_response_body_size_bytes", append(labels, "http_response_status_code", "503", "error_type", "503")...); n != 1 {
		t.Errorf("body size series of the 503: %v samples, want 1", n)
	}
	if n := p.histogramCount(t, "http_server_request_duration_seconds"); n != 3 {
		t.Errorf("%v requests recorded in all, want 3", n)
	}
	peers.mu.Lock()
	services := slices.Clone(peers.services)
	peers.mu.Unlock()
	if len(services) != 3 || services[0] != "shop/api" {
		t.Errorf("Destination was asked for services %q, want shop/api per request", services)
	}
}

// TestGatewayMetricsHaveNoWorkloadLabels: without Peers (the gateway) the
// server series keep exactly the gateway's label set; a workload label
// leaking into it would break the gateway's dashboards.
func TestGatewayMetricsHaveNoWorkloadLabels(t *testing.T) {
	be := newStatusBackend(t)
	p := startProxy(t, peerSnapshot(t, be), Options{})
	resp, err := newClient().Get(p.url(t, "l") + "/s/200")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := slices.Sorted(slices.Values(serverLabels))
	for _, metric := range []string{"http_server_request_duration_seconds", "http_server_response_body_size_bytes"} {
		got := serverLabelNames(t, p, metric)
		if len(got) != 1 {
			t.Fatalf("%s: %d series, want 1", metric, len(got))
		}
		if !slices.Equal(got[0], want) {
			t.Errorf("%s labels %q, want the gateway's %q", metric, got[0], want)
		}
	}
	if gathered(t, p.reg, "rauta_mesh_workload_label_overflow_total", "label", "source_workload") != -1 {
		t.Error("the gateway exports the mesh's overflow counter")
	}
}

// TestMeshWorkloadLabelsBounded: with MaxPeerValues 2, a third source
// workload is recorded as _OTHER and counted; forgetting a workload
// deletes its series and frees its value for the next one.
func TestMeshWorkloadLabelsBounded(t *testing.T) {
	be := newStatusBackend(t)
	peers := &tablePeers{}
	p := startProxy(t, peerSnapshot(t, be), Options{Peers: peers, MaxPeerValues: 2})
	cl := newClient()
	get := func(src string) {
		t.Helper()
		peers.setSource(Workload{Name: src, Namespace: "web"})
		resp, err := cl.Get(p.url(t, "l") + "/s/200")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// "unknown" (the destination) takes no source slot: each label is
	// bounded by itself.
	for _, src := range []string{"a", "b", "c", "a", "d"} {
		get(src)
	}
	const metric = "http_server_request_duration_seconds"
	for src, want := range map[string]float64{"a": 2, "b": 1, "c": 0, "d": 0, peerOverflow: 2} {
		if n := p.histogramCount(t, metric, "source_workload", src); n != want {
			t.Errorf("source_workload=%q: %v requests, want %v", src, n, want)
		}
	}
	if n := p.counter(t, "rauta_mesh_workload_label_overflow_total", "label", "source_workload"); n != 2 {
		t.Errorf("source_workload overflow counted %v, want 2", n)
	}
	if n := p.counter(t, "rauta_mesh_workload_label_overflow_total", "label", "source_workload_namespace"); n != 0 {
		t.Errorf("source_workload_namespace overflow counted %v, want 0 (one namespace)", n)
	}

	// "a" is gone: its series go, and "d" takes its slot.
	p.ForgetWorkloads(func(w Workload) bool { return w.Name != "a" })
	if n := p.histogramCount(t, metric, "source_workload", "a"); n != 0 {
		t.Errorf("forgotten workload a still has %v requests", n)
	}
	if n := p.histogramCount(t, metric, "source_workload", peerOverflow); n != 2 {
		t.Errorf("_OTHER lost its requests on forget: %v, want 2", n)
	}
	get("d")
	if n := p.histogramCount(t, metric, "source_workload", "d"); n != 1 {
		t.Errorf("source_workload=d after a was forgotten: %v requests, want 1", n)
	}
	get("a")
	if n := p.histogramCount(t, metric, "source_workload", peerOverflow); n != 3 {
		t.Errorf("a back with b and d holding the slots: _OTHER %v, want 3", n)
	}
}

// TestMeshSeriesForgottenWithRoute: a route removed from the mesh's
// configuration loses its workload series too, and a route of the same
// name added again records anew (its cached series were dropped, not
// left pointing at deleted ones).
func TestMeshSeriesForgottenWithRoute(t *testing.T) {
	be := newStatusBackend(t)
	peers := &tablePeers{}
	snap := peerSnapshot(t, be)
	p := startProxy(t, snap, Options{Peers: peers})
	cl := newClient()
	get := func() {
		t.Helper()
		resp, err := cl.Get(p.url(t, "l") + "/s/200")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	const metric, route = "http_server_request_duration_seconds", "mesh/shop/api/80/rule/0"
	other := peerSnapshot(t, be)
	other.Listeners[0].VirtualHosts[0].Routes[0].Name = "mesh/shop/api/80/rule/1"
	if err := p.Apply(other); err != nil {
		t.Fatal(err)
	}
	p.tidy() // what the timer runs once changes pause
	if n := p.histogramCount(t, metric, "http_route", route); n != 0 {
		t.Errorf("removed route still has %v requests", n)
	}
	pm := p.metrics.peer
	pm.mu.RLock()
	cached := len(pm.series)
	pm.mu.RUnlock()
	if cached != 0 {
		t.Errorf("%d series of the removed route still cached", cached)
	}
	if err := p.Apply(snap); err != nil {
		t.Fatal(err)
	}
	get()
	if n := p.histogramCount(t, metric, "http_route", route, "source_workload", "unknown"); n != 1 {
		t.Errorf("route added again: %v requests recorded, want 1", n)
	}
}

// meshPeers is the Peers of the benchmarks: every client and endpoint a
// pod of a known workload.
func meshPeers() *tablePeers {
	lo := netip.MustParseAddr("127.0.0.1")
	return &tablePeers{
		sources: map[netip.Addr]Workload{lo: {Name: "frontend", Namespace: "web"}},
		dests:   map[netip.Addr]Workload{lo: {Name: "api", Namespace: "shop"}},
	}
}

// BenchmarkEngineLoopbackMesh is BenchmarkEngineLoopback in mesh mode:
// what naming both workloads of each request costs.
func BenchmarkEngineLoopbackMesh(b *testing.B) {
	ec := newEngineClientWith(b, Options{Peers: &benchPeers{meshPeers()}})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ec.get(b)
	}
}

// benchPeers answers from the tables without recording the services
// asked for (tablePeers' record grows per request).
type benchPeers struct{ t *tablePeers }

func (p *benchPeers) Source(a netip.Addr) Workload { return p.t.sources[a] }
func (p *benchPeers) Destination(_ string, a netip.Addr) Workload {
	return p.t.dests[a]
}

// TestMeshAllocatesNothingPerRequest: mesh mode keeps the engine's
// steady state free of allocations: the workload lookups and the series
// map read allocate nothing once the series exists.
func TestMeshAllocatesNothingPerRequest(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers: allocation counts are not the engine's")
	}
	ec := newEngineClientWith(t, Options{Peers: &benchPeers{meshPeers()}})
	ec.get(t)
	if n := testing.AllocsPerRun(2000, func() { ec.get(t) }); n >= 1 {
		t.Errorf("%.2f allocations per request, want 0", n)
	}
}

// BenchmarkObserve compares recording one request in a gateway's series
// (routeMetrics.observe: a scan of the route's short cache) and in a mesh's
// (peerMetrics.observe: two workload lookups, a read lock and a map
// read), in parallel as the engine calls them.
func BenchmarkObserve(b *testing.B) {
	gw, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	m, err := newServerMetrics(prometheus.NewRegistry(), Options{Peers: &benchPeers{meshPeers()}})
	if err != nil {
		b.Fatal(err)
	}
	const gateway, route = "shop/api", "mesh/shop/api/80/rule/0"
	b.Run("gateway", func(b *testing.B) {
		rm := &routeMetrics{m: gw, gateway: gateway, route: route}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rm.observe("GET", "http", 1, 200, 0.001, 1024)
			}
		})
	})
	b.Run("mesh", func(b *testing.B) {
		rm := &routeMetrics{m: m, gateway: gateway, route: route}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.peer.observe(rm, "127.0.0.1", "127.0.0.1:8080", "GET", "http", 1, 200, 0.001, 1024)
			}
		})
	})
}

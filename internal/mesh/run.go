package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/provider/kube"
	"github.com/false-systems/rauta/internal/translate"
)

// Run is "rauta mesh": it attaches the programs, keeps the maps equal to
// the cluster's Services and EndpointSlices until ctx ends, and then
// detaches (or, with KeepAttached, leaves everything for the next agent).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Kubeconfig == "" {
		cfg.Kubeconfig = os.Getenv("KUBECONFIG")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = os.Getenv("NODE_NAME")
	}
	if cfg.ProxyAddr != "" {
		host, port, err := net.SplitHostPort(cfg.ProxyAddr)
		if err != nil {
			return fmt.Errorf("mesh: -proxy-addr %q: %w", cfg.ProxyAddr, err)
		}
		if host == "" {
			host = os.Getenv("NODE_IP")
		}
		if host == "" {
			logger.Warn("mesh: -proxy-addr has no host and NODE_IP is unset: the GAMMA proxy is off, HTTPRoutes with a Service parent do not apply")
			cfg.ProxyAddr = ""
		} else {
			cfg.ProxyAddr = net.JoinHostPort(host, port)
		}
	}
	cfg.StatusLease = leaseInOwnNamespace(cfg.StatusLease)
	clients, err := kubeClients(cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	return Serve(ctx, cfg, clients, logger)
}

// Serve is Run with a given Kubernetes client.
func Serve(ctx context.Context, cfg Config, clients Clients, logger *slog.Logger) (err error) {
	cgroup, err := ResolveCgroup(cfg.Cgroup)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	d, err := Open(Options{Cgroup: cgroup, PinDir: cfg.PinDir, Sockmap: cfg.Sockmap})
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	defer func() {
		if cerr := d.Close(cfg.KeepAttached); cerr != nil {
			err = errors.Join(err, fmt.Errorf("mesh: detach: %w", cerr))
		}
	}()
	w, err := d.Writer()
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	if cfg.KeepAttached && cfg.PinDir == "" {
		logger.Warn("mesh: -keep-attached without -pin-dir: nothing can be kept, the programs are detached on exit")
	}
	logger.Info("mesh programs attached", "cgroup", cgroup, "pin_dir", cfg.PinDir, "sockmap", cfg.Sockmap,
		"frontends_found", w.Frontends(), "slots_found", w.Slots())

	s := &syncer{writer: w, node: cfg.NodeName, onSync: cfg.OnSync, logger: logger, gamma: emptyGamma()}
	m := newMetrics(d.Stats)
	s.metrics = m

	gamma, policies := false, false
	if cfg.ProxyAddr != "" && clients.Gateway != nil {
		gamma, policies, err = gammaKinds(clients.Kube)
		if err != nil || !gamma {
			logger.Warn("mesh: the API server serves no HTTPRoutes (Gateway API CRDs not installed?): the GAMMA proxy is off", "err", err)
			gamma = false
		}
	}
	// Steering goes to this agent's proxy or nowhere: a proxy address
	// left in pinned maps by an earlier agent is replaced or removed.
	if err := d.SetProxy(netip.AddrPort{}, netip.AddrPort{}); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	coalescer := kube.NewCoalescer(cfg.HoldOff, cfg.MaxDelay)
	if gamma {
		p, err := newMeshProxy(cfg.ProxyAddr, d, m.reg, logger, cfg.MaxWorkloadValues, cfg.ProxySpares)
		if err != nil {
			return fmt.Errorf("mesh: proxy listener %s: %w", cfg.ProxyAddr, err)
		}
		a := p.addr()
		if a.Addr().IsUnspecified() {
			p.ln.Close()
			return fmt.Errorf("mesh: -proxy-addr %s: needs the address the pods reach, not a wildcard", cfg.ProxyAddr)
		}
		s.proxy, s.setProxy, s.setLocal, s.setOptOut = p, d.SetProxy, d.SetLocal, d.SetOptOut
		s.podCgroups = newPodCgroups(cgroup)
		s.optOutRetry = &optOutRetry{poke: coalescer.Poke}
		defer s.optOutRetry.stop()
		if a.Addr().Unmap().Is4() {
			s.proxy4 = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		} else {
			s.proxy6 = a
		}
		// Steering starts at the first sync, once the proxy has its
		// listeners (gammasync.go), and stops before the proxy does.
		defer func() {
			if cerr := d.SetProxy(netip.AddrPort{}, netip.AddrPort{}); cerr != nil {
				err = errors.Join(err, fmt.Errorf("mesh: stop steering: %w", cerr))
			}
		}()
		logger.Info("mesh proxy listening", "addr", p.addr().String())
	}

	watch, err := newWatcher(clients, gamma, policies, cfg.RemoteWorkloads, cfg.NodeName, coalescer.Poke)
	if err != nil {
		if s.proxy != nil {
			s.proxy.ln.Close()
		}
		return fmt.Errorf("mesh: %w", err)
	}

	var servers []*admin.Server
	src := admin.Source{Ready: s.ready, Config: s.dump, Status: s.status}
	adm, err := admin.New(cfg.AdminAddr, m.reg, src, logger)
	if err != nil {
		return fmt.Errorf("mesh: admin listener %s: %w", cfg.AdminAddr, err)
	}
	servers = append(servers, adm)
	if cfg.MetricsAddr != "" {
		probes, err := admin.NewProbes(cfg.MetricsAddr, m.reg, s.ready, logger)
		if err != nil {
			_ = adm.Close()
			return fmt.Errorf("mesh: metrics listener %s: %w", cfg.MetricsAddr, err)
		}
		servers = append(servers, probes)
	}

	// The servers and the sync loop run until ctx ends or one of them
	// fails, which ends the others.
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, len(servers)+2)
	for _, srv := range servers {
		go func() { errc <- srv.Run(gctx) }()
	}
	running := len(servers) + 1
	if s.proxy != nil {
		running++
		go func() {
			errc <- s.proxy.run(gctx, func() {
				// New connections go to endpoints directly from here on,
				// also with -keep-attached.
				if err := d.SetProxy(netip.AddrPort{}, netip.AddrPort{}); err != nil {
					logger.Error("mesh: stop steering", "err", err)
				}
			})
		}()
	}
	var side sync.WaitGroup
	defer side.Wait() // after stop: the Lease is released, the writer done
	if s.proxy != nil && cfg.StatusLease != "" {
		s.routeStatus = newRouteStatusWriter(clients.Gateway, logger)
		identity := cfg.NodeName
		if identity == "" {
			identity, _ = os.Hostname()
		}
		side.Go(func() { s.routeStatus.run(gctx) })
		side.Go(func() { elect(gctx, clients.Kube, cfg.StatusLease, identity, s.routeStatus, logger) })
	}
	go func() {
		if watch.start(gctx) {
			s.sync(watch)
			coalescer.Run(gctx, func() { s.sync(watch) })
		}
		errc <- nil
	}()
	var errs []error
	for range running {
		if err := <-errc; err != nil {
			errs = append(errs, err)
			stop()
		}
	}
	stop()
	watch.shutdown() // the informers' goroutines end with gctx
	return errors.Join(errs...)
}

// syncer writes the caches' content into the maps.
type syncer struct {
	writer  *Writer
	node    string
	onSync  func(State, error)
	logger  *slog.Logger
	metrics *metrics

	// proxy is the GAMMA proxy, nil when GAMMA is off; proxy4 and proxy6
	// are its address in each family it has one for. setProxy
	// (Datapath.SetProxy) gives them to the programs; steering says it
	// did.
	proxy          *meshProxy
	proxy4, proxy6 netip.AddrPort
	setProxy       func(v4, v6 netip.AddrPort) error
	// setLocal (Datapath.SetLocal) gives the programs this node's
	// addresses for sockmap: the proxy's and the local pods'.
	setLocal func([]netip.Addr) error
	// setOptOut (Datapath.SetOptOut) gives the programs the cgroups of
	// the pods that opted out (OptOutLabel), found by podCgroups under
	// the agent's cgroup.
	setOptOut   func([]uint64) error
	podCgroups  *podCgroups
	optOutRetry *optOutRetry
	steering    bool
	// gamma is what the proxy serves now.
	gamma gammaConfig
	// routeStatus writes the GAMMA route status while this agent holds
	// the Lease; nil when GAMMA is off or no Lease is configured.
	routeStatus *routeStatusWriter

	mu         sync.Mutex
	meshStatus *translate.Status
	state      State
	synced     bool
	lastErr    error
	lastAt     time.Time
}

func (s *syncer) sync(w *watcher) {
	in, err := w.input(s.node)
	var st State
	if err == nil {
		st = FromKube(in)
		err = s.apply(w, in, st)
	}
	result := "ok"
	if err != nil {
		result = "error"
		s.logger.Error("mesh: map update", "err", err)
	}
	s.metrics.syncs.WithLabelValues(result).Inc()
	s.metrics.frontends.Set(float64(s.writer.Frontends()))
	s.metrics.slots.Set(float64(s.writer.Slots()))
	s.mu.Lock()
	s.state, s.synced, s.lastErr, s.lastAt = st, true, err, time.Now()
	s.mu.Unlock()
	s.logger.Debug("mesh: maps updated", "frontends", len(st), "endpoints", st.Endpoints())
	if s.onSync != nil {
		s.onSync(st, err)
	}
}

// ready: the maps were written from complete caches at least once. A
// later failed update (a full map) leaves the agent ready: the other
// frontends are served; /status and the metrics show the error.
func (s *syncer) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		return errors.New("the maps are not yet written from the Services and EndpointSlices")
	}
	return nil
}

// dumpEntry is one frontend in /config_dump.
type dumpEntry struct {
	Frontend string   `json:"frontend"`
	Service  string   `json:"service"`
	Steer    bool     `json:"steer,omitempty"`
	Backends []string `json:"backends"`
}

func (s *syncer) dump() any {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	out := make([]dumpEntry, 0, len(st))
	for _, f := range st.Frontends() {
		e := st[f]
		d := dumpEntry{Frontend: f.String(), Service: e.Service, Steer: e.Steer, Backends: []string{}}
		for _, b := range e.Backends {
			d.Backends = append(d.Backends, b.String())
		}
		out = append(out, d)
	}
	return out
}

func (s *syncer) status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]any{"synced": s.synced, "frontends": len(s.state), "endpoints": s.state.Endpoints()}
	if !s.lastAt.IsZero() {
		st["last_sync"] = s.lastAt.UTC().Format(time.RFC3339Nano)
	}
	if s.lastErr != nil {
		st["last_error"] = s.lastErr.Error()
	}
	if s.proxy != nil {
		st["proxy"] = s.proxy.addr().String()
		st["gamma_routes"] = gammaRouteStatus(s.meshStatus)
	}
	return st
}

// leaseInOwnNamespace puts a bare Lease name in the agent's namespace:
// env POD_NAMESPACE, else the service account's, else "default".
func leaseInOwnNamespace(lease string) string {
	if lease == "" || strings.Contains(lease, "/") {
		return lease
	}
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + lease
}

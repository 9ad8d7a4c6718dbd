// Package gateway is what `rauta run` and `rauta controller` share: the
// proxy, the admin endpoints, the Prometheus registry, and applying each
// translation result (skipping identical ones, counting reloads, keeping the
// last good configuration when one is refused).
package gateway

import (
	"errors"
	"fmt"
	"github.com/false-systems/rauta/internal/h2"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/objstatus"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/wellknown"
)

// Options configure a Gateway.
type Options struct {
	// Address is where listeners bind when a Gateway has no address of its own.
	Address string
	// PortOffset is added to every listener port (run unprivileged: 80 -> 8080).
	PortOffset int
	// LowPortOffset is added to listener ports below 1024 when binding only
	// (proxy.Options.LowPortOffset: a data-plane pod behind a Service).
	LowPortOffset int
	// AdminAddr serves every admin endpoint: /metrics, /healthz, /readyz,
	// /config_dump and /status (and /debug/pprof/ with Profiling). The
	// configuration it shows is for operators: keep it on loopback.
	AdminAddr string
	// MetricsAddr serves only /metrics, /healthz and /readyz, for kubelet
	// probes and Prometheus on the pod address; "" (or "off") serves none.
	MetricsAddr string
	// Profiling adds Go's profiles under /debug/pprof/ on AdminAddr.
	Profiling bool
	// AccessLog receives one JSON line per request; nil turns it off.
	AccessLog io.Writer
	// Tracing configures OTLP traces (proxy.TracingOptions); off without
	// an endpoint.
	Tracing proxy.TracingOptions
	// RequestTimings is how many request timing records the admin port
	// keeps (/debug/requests); 0 turns them off.
	RequestTimings int
	// Version is reported by the rauta_build_info metric.
	Version string
	// DrainPeriod is how long Run keeps serving after its context ends,
	// with /readyz answering 503 and clients told to go elsewhere, before
	// the listeners close (see Run). 0 skips it; the commands default to
	// DefaultDrainPeriod.
	DrainPeriod time.Duration
	// ShutdownTimeout bounds how long in-flight requests may finish once
	// the listeners are closed; 0 means the proxy's default (15s). The
	// commands default to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// The limits and timeouts of client and backend connections: 0 means
	// the proxy's default (see proxy.Options, and docs/proxy.md).
	ReadHeaderTimeout      time.Duration
	IdleTimeout            time.Duration
	MaxHeaderBytes         int
	MaxHeaderFields        int
	MaxResponseHeaderBytes int
	ClientBodyTimeout      time.Duration
	ClientSendTimeout      time.Duration
	BackendResponseTimeout time.Duration
	BackendIdleTimeout     time.Duration
	// StreamIdleTimeout and MaxStreamConns bound relayed (TLS
	// passthrough, TCP) connections (proxy.Options).
	StreamIdleTimeout time.Duration
	MaxStreamConns    int
	// UpgradeIdleTimeout bounds an upgraded (WebSocket) connection's
	// silence (proxy.Options).
	UpgradeIdleTimeout time.Duration
	// UDPIdleTimeout and MaxUDPFlows bound UDP flows (proxy.Options).
	UDPIdleTimeout time.Duration
	MaxUDPFlows    int
	// HTTP2 and MaxConcurrentStreams bound HTTP/2 clients
	// (proxy.Options.HTTP2).
	HTTP2                h2.Limits
	MaxConcurrentStreams uint32
	// Paths is how request paths are normalised (proxy.Options.Paths).
	Paths router.PathOptions
	// Health is passive health and the retry budget (proxy.Options.Health).
	Health lb.HealthOptions
	// ForgetRoutes leaves the routes out of /config_dump, so that nothing
	// keeps them once compiled (proxy.Options.ForgetRoutes): the data plane
	// sets it.
	ForgetRoutes bool
	// BindFailuresChanged, if set, is called with the new BindFailures
	// when Run's retry of unbound listeners (every few seconds, see
	// bindretry.go) binds one, so that status can follow without an Apply.
	// It runs on Run's goroutine, without locks held.
	BindFailuresChanged func(map[string]error)
}

// The defaults of the commands' -drain-period and -shutdown-timeout. A pod's
// terminationGracePeriodSeconds must exceed their sum.
const (
	DefaultDrainPeriod     = wellknown.DrainPeriod
	DefaultShutdownTimeout = wellknown.ShutdownTimeout
)

// Gateway serves translation results.
type Gateway struct {
	Registry *prometheus.Registry
	logger   *slog.Logger
	px       *proxy.Server
	adm      *admin.Server

	probes *admin.Server // nil without MetricsAddr
	opts   Options

	ready    atomic.Bool // a first configuration is applied
	draining atomic.Bool // Run's context ended
	// unbound holds the listeners of the applied configuration that could
	// not be bound (IR listener name -> why); never modified once stored.
	unbound atomic.Pointer[map[string]error]
	status  atomic.Pointer[Status]

	mu sync.Mutex // serialises Apply
	// applied is the digest of the applied snapshot (digest.go), valid
	// when hasApplied; unboundSnap is the snapshot itself while a listener
	// of it is unbound, for Run's retry of the bind (bindretry.go), else
	// nil: nothing here keeps the routes once they are compiled.
	applied     digest
	hasApplied  bool
	unboundSnap *ir.Snapshot
	problems    map[objstatus.Problem]bool

	// bindRetry is the const bindRetry; tests change it.
	bindRetry time.Duration

	reloadOK, reloadFailed prometheus.Counter
	lastReload             prometheus.Gauge
	unboundGauge           prometheus.Gauge
}

// New creates the proxy and binds the admin port, so that a port conflict is
// reported at start-up.
func New(opts Options, logger *slog.Logger) (*Gateway, error) {
	g := &Gateway{Registry: prometheus.NewRegistry(), logger: logger, opts: opts, bindRetry: bindRetry}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_config_reloads_total",
		Help: "Configuration reloads by result (success, failure).",
	}, []string{"result"})
	g.reloadOK, g.reloadFailed = reloads.WithLabelValues("success"), reloads.WithLabelValues("failure")
	g.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last configuration that was applied.",
	})
	g.unboundGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_listeners_unbound",
		Help: "Listeners of the applied configuration whose socket could not be bound (address in use, not local, or privileged).",
	})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rauta_build_info",
		Help: "Build information of the running RAUTA binary; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	g.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, reloads, g.lastReload, g.unboundGauge,
	)

	px, err := proxy.New(proxy.Options{
		DefaultAddress:  opts.Address,
		PortOffset:      opts.PortOffset,
		LowPortOffset:   opts.LowPortOffset,
		AccessLog:       opts.AccessLog,
		Tracing:         opts.Tracing,
		RequestTimings:  requestTimings(opts.RequestTimings),
		Registerer:      g.Registry,
		Logger:          logger,
		ShutdownTimeout: opts.ShutdownTimeout,
		Paths:           opts.Paths,
		Health:          opts.Health,
		ForgetRoutes:    opts.ForgetRoutes,

		ReadHeaderTimeout:      opts.ReadHeaderTimeout,
		IdleTimeout:            opts.IdleTimeout,
		MaxHeaderBytes:         opts.MaxHeaderBytes,
		MaxHeaderFields:        opts.MaxHeaderFields,
		MaxResponseHeaderBytes: opts.MaxResponseHeaderBytes,
		ClientBodyTimeout:      opts.ClientBodyTimeout,
		ClientSendTimeout:      opts.ClientSendTimeout,
		BackendResponseTimeout: opts.BackendResponseTimeout,
		BackendIdleTimeout:     opts.BackendIdleTimeout,
		StreamIdleTimeout:      opts.StreamIdleTimeout,
		UpgradeIdleTimeout:     opts.UpgradeIdleTimeout,
		MaxStreamConns:         opts.MaxStreamConns,
		UDPIdleTimeout:         opts.UDPIdleTimeout,
		MaxUDPFlows:            opts.MaxUDPFlows,
		HTTP2:                  opts.HTTP2,
		MaxConcurrentStreams:   opts.MaxConcurrentStreams,
	})
	if err != nil {
		return nil, fmt.Errorf("create proxy: %w", err)
	}
	g.px = px
	adm, err := admin.New(opts.AdminAddr, g.Registry, admin.Source{
		Ready:    g.Ready,
		Config:   func() any { return px.Active() },
		Status:   g.loadStatus,
		Requests: func(after uint64, limit int) any { return px.RequestTimings(after, limit) },
		Request:  func(id string) (any, bool) { return px.RequestTiming(id) },
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", opts.AdminAddr, err)
	}
	if opts.Profiling {
		adm.EnableProfiling()
	}
	g.adm = adm
	logger.Info("admin endpoints", "addr", adm.Addr().String(), "profiling", opts.Profiling)
	if opts.MetricsAddr != "" && opts.MetricsAddr != "off" {
		probes, err := admin.NewProbes(opts.MetricsAddr, g.Registry, g.Ready, logger)
		if err != nil {
			adm.Close()
			return nil, fmt.Errorf("metrics listener %s: %w", opts.MetricsAddr, err)
		}
		g.probes = probes
		logger.Info("metrics and probe endpoints", "addr", probes.Addr().String())
	}
	return g, nil
}

// Apply serves a translation's IR and keeps its status for /status. An IR
// identical to the one being served is not re-applied (unless a listener of
// it is unbound: applying again retries the bind); a refused one leaves the
// running configuration as it is. A configuration served except for
// listeners that could not be bound is applied: the error then names them,
// BindFailures lists them and /readyz answers 503 until an Apply, or Run's
// retry, binds them. Status problems that are new since the last Apply are
// logged.
func (g *Gateway) Apply(snap *ir.Snapshot, st Status) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status.Store(&st)
	now := problemSet(st)
	logNewProblems(g.logger, g.problems, now)
	g.problems = now
	d, ok := digestOf(snap)
	if ok && g.hasApplied && d == g.applied && len(g.BindFailures()) == 0 {
		return nil
	}
	start := time.Now()
	err := g.px.Apply(snap)
	bindErrs := proxy.BindErrors(err)
	if err != nil && len(bindErrs) == 0 {
		if !errors.Is(err, router.ErrUnknownRoute) {
			// Not a fault of the configuration: its sender sends it
			// whole (configstream's resync).
			g.reloadFailed.Inc()
		}
		return fmt.Errorf("configuration not applied, the last good one keeps serving: %w", err)
	}
	unbound := g.setUnbound(bindErrs)
	g.applied, g.hasApplied = d, ok
	g.unboundSnap = nil
	if len(unbound) > 0 {
		g.unboundSnap = snap
	}
	g.ready.Store(true)
	g.reloadOK.Inc()
	g.lastReload.SetToCurrentTime()
	g.logger.Info("configuration applied", "listeners", len(snap.Listeners), "unbound", len(unbound), "took", time.Since(start).String())
	if err != nil {
		return fmt.Errorf("configuration applied, but %d listener(s) not served: %w", len(unbound), err)
	}
	return nil
}

// loadStatus is the status of the last Apply, for /status; nil before the
// first.
func (g *Gateway) loadStatus() any {
	if p := g.status.Load(); p != nil {
		return *p
	}
	return nil
}

// setUnbound records the listeners that could not be bound. Callers hold
// g.mu.
func (g *Gateway) setUnbound(bindErrs []*proxy.BindError) map[string]error {
	unbound := make(map[string]error, len(bindErrs))
	for _, be := range bindErrs {
		unbound[be.Listener] = be.Err
	}
	g.unbound.Store(&unbound)
	g.unboundGauge.Set(float64(len(unbound)))
	return unbound
}

// BindFailures returns the listeners of the applied configuration whose
// socket could not be bound, by IR listener name, with the reason; empty
// when every listener is served. The map is the caller's.
func (g *Gateway) BindFailures() map[string]error {
	p := g.unbound.Load()
	if p == nil {
		return map[string]error{}
	}
	return maps.Clone(*p)
}

// Ready returns nil when the gateway serves everything it was asked to,
// else why not: it is draining, no configuration is applied yet, or a
// listener is unbound. /readyz answers with it.
func (g *Gateway) Ready() error {
	if g.draining.Load() {
		return errors.New("draining: the process is stopping")
	}
	if !g.ready.Load() {
		return errors.New("no configuration applied yet")
	}
	if p := g.unbound.Load(); p != nil && len(*p) > 0 {
		names := slices.Sorted(maps.Keys(*p))
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s: %v", n, (*p)[n])
		}
		return fmt.Errorf("listeners not bound: %s", strings.Join(parts, "; "))
	}
	return nil
}

// Rejected counts a configuration that never reached Apply (a bad file, a
// failed list), so that reload failures show in one metric.
func (g *Gateway) Rejected() { g.reloadFailed.Inc() }

// requestTimings maps the gateway's RequestTimings (0: off) to the
// proxy's (negative: off).
func requestTimings(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// Package gateway is what `rauta run` and `rauta controller` share: the
// proxy, the admin endpoints, the Prometheus registry, and applying each
// translation result (skipping identical ones, counting reloads, keeping the
// last good configuration when one is refused).
package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/translate"
)

// Options configure a Gateway.
type Options struct {
	// Address is where listeners bind when a Gateway has no address of its own.
	Address string
	// PortOffset is added to every listener port (run unprivileged: 80 -> 8080).
	PortOffset int
	// AdminAddr serves /metrics, /healthz, /readyz, /config_dump and /status.
	AdminAddr string
	// Profiling adds Go's profiles under /debug/pprof/ on AdminAddr.
	Profiling bool
	// AccessLog receives one JSON line per request; nil turns it off.
	AccessLog io.Writer
	// Version is reported by the rauta_build_info metric.
	Version string
}

// Gateway serves translation results.
type Gateway struct {
	Registry *prometheus.Registry
	logger   *slog.Logger
	px       *proxy.Server
	adm      *admin.Server

	ready  atomic.Bool
	status atomic.Pointer[translate.Status]

	mu       sync.Mutex // serialises Apply
	applied  *ir.Snapshot
	problems map[problem]bool

	reloadOK, reloadFailed prometheus.Counter
	lastReload             prometheus.Gauge
}

// New creates the proxy and binds the admin port, so that a port conflict is
// reported at start-up.
func New(opts Options, logger *slog.Logger) (*Gateway, error) {
	g := &Gateway{Registry: prometheus.NewRegistry(), logger: logger}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_config_reloads_total",
		Help: "Configuration reloads by result (success, failure).",
	}, []string{"result"})
	g.reloadOK, g.reloadFailed = reloads.WithLabelValues("success"), reloads.WithLabelValues("failure")
	g.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last configuration that was applied.",
	})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rauta_build_info",
		Help: "Build information of the running RAUTA binary; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	g.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, reloads, g.lastReload,
	)

	px, err := proxy.New(proxy.Options{
		DefaultAddress: opts.Address,
		PortOffset:     opts.PortOffset,
		AccessLog:      opts.AccessLog,
		Registerer:     g.Registry,
		Logger:         logger,
	})
	if err != nil {
		return nil, fmt.Errorf("create proxy: %w", err)
	}
	g.px = px
	adm, err := admin.New(opts.AdminAddr, g.Registry, admin.Source{
		Ready:  g.ready.Load,
		Config: func() any { return px.Active() },
		Status: func() any { return g.status.Load() },
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", opts.AdminAddr, err)
	}
	if opts.Profiling {
		adm.EnableProfiling()
	}
	g.adm = adm
	logger.Info("admin endpoints", "addr", adm.Addr().String(), "profiling", opts.Profiling)
	return g, nil
}

// Apply serves a translation result. An IR identical to the one being served
// is not re-applied; a refused one leaves the running configuration as it is.
// Status problems that are new since the last result are logged.
func (g *Gateway) Apply(r translate.Result) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status.Store(r.Status)
	now := problems(r.Status)
	logNewProblems(g.logger, g.problems, now)
	g.problems = now
	if g.applied != nil && reflect.DeepEqual(g.applied, r.IR) {
		return nil
	}
	start := time.Now()
	if err := g.px.Apply(r.IR); err != nil {
		g.reloadFailed.Inc()
		return fmt.Errorf("configuration not applied, the last good one keeps serving: %w", err)
	}
	g.applied = r.IR
	g.ready.Store(true)
	g.reloadOK.Inc()
	g.lastReload.SetToCurrentTime()
	g.logger.Info("configuration applied", "listeners", len(r.IR.Listeners), "took", time.Since(start).String())
	return nil
}

// Rejected counts a configuration that never reached Apply (a bad file, a
// failed list), so that reload failures show in one metric.
func (g *Gateway) Rejected() { g.reloadFailed.Inc() }

// Run serves until ctx ends; each of also runs alongside and ends the
// Gateway if it returns an error.
func (g *Gateway) Run(ctx context.Context, also ...func(context.Context) error) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.px.Run(ctx) })
	eg.Go(func() error { return g.adm.Run(ctx) })
	for _, f := range also {
		eg.Go(func() error { return f(ctx) })
	}
	return eg.Wait()
}

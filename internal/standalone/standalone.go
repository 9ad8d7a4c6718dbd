// Package standalone runs RAUTA without a cluster: Gateway API manifests from
// files, translated and served by the in-process proxy, reloaded on change.
package standalone

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/false-systems/rauta/internal/admin"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// Config configures a standalone gateway.
type Config struct {
	// Path is a manifest file or a folder of them.
	Path string
	// Address is where listeners bind when a Gateway has no spec.addresses.
	Address string
	// PortOffset is added to every listener port (run unprivileged: 80 -> 8080).
	PortOffset int
	// AdminAddr serves /metrics, /healthz, /readyz, /config_dump and /status.
	AdminAddr string
	// AccessLog receives one JSON line per request; nil turns it off.
	AccessLog io.Writer
	// ControllerName selects the GatewayClasses to serve.
	ControllerName string
	// Version is reported by the rauta_build_info metric.
	Version string
}

// Run serves until ctx ends or a component fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(cfg.Version),
	)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_config_reloads_total",
		Help: "Configuration reloads by result (success, failure).",
	}, []string{"result"})
	lastReload := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last configuration that was applied.",
	})
	reg.MustRegister(reloads, lastReload)
	reloadOK, reloadFailed := reloads.WithLabelValues("success"), reloads.WithLabelValues("failure")

	px, err := proxy.New(proxy.Options{
		DefaultAddress: cfg.Address,
		PortOffset:     cfg.PortOffset,
		AccessLog:      cfg.AccessLog,
		Registerer:     reg,
		Logger:         logger,
	})
	if err != nil {
		return fmt.Errorf("create proxy: %w", err)
	}

	var ready atomic.Bool
	var status atomic.Pointer[translate.Status]
	adm, err := admin.New(cfg.AdminAddr, reg, admin.Source{
		Ready:  ready.Load,
		Config: func() any { return px.Active() },
		Status: func() any { return status.Load() },
	}, logger)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", cfg.AdminAddr, err)
	}
	logger.Info("admin endpoints", "addr", adm.Addr().String())

	var applied *ir.Snapshot
	onChange := func(res *resources.Resources, warnings []file.Warning, err error) {
		for _, w := range warnings {
			logger.Warn("manifest ignored", "file", w.File, "line", w.Line, "reason", w.Message)
		}
		if err != nil {
			reloadFailed.Inc()
			logger.Error("configuration rejected; the last good configuration keeps serving", "path", cfg.Path, "err", err)
			return
		}
		start := time.Now()
		result := translate.Translate(res, translate.Options{ControllerName: cfg.ControllerName, DefaultAddress: cfg.Address})
		logProblems(logger, result.Status)
		status.Store(result.Status)
		if applied != nil && reflect.DeepEqual(applied, result.IR) {
			logger.Debug("configuration unchanged")
			return
		}
		if err := px.Apply(result.IR); err != nil {
			reloadFailed.Inc()
			logger.Error("configuration not applied; the last good configuration keeps serving", "err", err)
			return
		}
		applied = result.IR
		ready.Store(true)
		reloadOK.Inc()
		lastReload.SetToCurrentTime()
		logger.Info("configuration applied", "listeners", len(result.IR.Listeners), "took", time.Since(start).String())
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return px.Run(ctx) })
	g.Go(func() error { return adm.Run(ctx) })
	g.Go(func() error { return file.Watch(ctx, cfg.Path, onChange) })
	return g.Wait()
}

func buildInfo(version string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rauta_build_info",
		Help: "Build information of the running RAUTA binary; always 1.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	return g
}

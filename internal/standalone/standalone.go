// Package standalone runs RAUTA without a cluster: Gateway API manifests from
// files, translated and served by the in-process proxy, reloaded on change.
package standalone

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// Config configures a standalone gateway.
type Config struct {
	gateway.Options
	// Path is a manifest file or a folder of them.
	Path string
	// ControllerName selects the GatewayClasses to serve.
	ControllerName string
}

// Run serves until ctx ends or a component fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	gw, err := gateway.New(cfg.Options, logger)
	if err != nil {
		return err
	}
	onChange := func(res *resources.Resources, warnings []file.Warning, err error) {
		for _, w := range warnings {
			logger.Warn("manifest ignored", "file", w.File, "line", w.Line, "reason", w.Message)
		}
		if err != nil {
			gw.Rejected()
			logger.Error("configuration rejected; the last good configuration keeps serving", "path", cfg.Path, "err", err)
			return
		}
		result := translate.Translate(res, translate.Options{ControllerName: cfg.ControllerName, DefaultAddress: cfg.Address})
		if err := gw.Apply(result.IR, result.Status); err != nil {
			logger.Error("apply", "err", err)
		}
		// Loading and translating a large configuration needs several
		// times the memory of what is served afterwards (10,000 HTTPRoutes:
		// a heap of about 130 MiB at the peak, 50 MiB live after), and Go's
		// background scavenger hands the difference back to the OS only
		// over minutes. Reloads are coalesced file changes, rare next to
		// the cost of a translation, so one more collection here is cheap.
		debug.FreeOSMemory()
	}
	return gw.Run(ctx, func(ctx context.Context) error { return file.Watch(ctx, cfg.Path, onChange) })
}

// Package dataplane runs one Gateway's data plane in Kubernetes: the proxy
// and admin endpoints of package gateway, fed by the controller over the
// config stream (package configstream) instead of by a translation of its
// own. It needs no API server access: the controller sends it everything.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/router"
)

// Config configures a data plane.
type Config struct {
	gateway.Options
	// Controller is the controller's config stream address, host:port.
	Controller string
	// ServerName is the name in the controller's certificate.
	ServerName string
	// CA is the PEM certificate of the controller's CA, or a path to a
	// file holding it.
	CA string
	// TokenFile holds this pod's bound ServiceAccount token.
	TokenFile string
	// Gateway is "namespace/name" of the Gateway served.
	Gateway string
	// Pod is this pod's name, reported to the controller.
	Pod string
}

// Run serves until ctx ends (then drains as package gateway does). It keeps
// serving the last configuration the controller sent while the controller
// is unreachable.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Controller == "" || cfg.Gateway == "" || cfg.CA == "" {
		return errors.New("dataplane: -controller, -gateway and -controller-ca are required")
	}
	if ns, name, ok := strings.Cut(cfg.Gateway, "/"); !ok || ns == "" || name == "" {
		return fmt.Errorf("dataplane: -gateway %q: want namespace/name", cfg.Gateway)
	}
	caPEM, err := readCA(cfg.CA)
	if err != nil {
		return err
	}
	pool, err := configstream.Pool(caPEM)
	if err != nil {
		return fmt.Errorf("dataplane: controller CA: %w", err)
	}
	gw, err := newGateway(cfg.Options, logger)
	if err != nil {
		return err
	}
	logger = logger.With("gateway", cfg.Gateway)
	release := newHeapRelease()
	client := &configstream.Client{
		Address:    cfg.Controller,
		ServerName: cfg.ServerName,
		RootCAs:    pool,
		TokenFile:  cfg.TokenFile,
		Gateway:    cfg.Gateway,
		Pod:        cfg.Pod,
		Apply: func(c configstream.Config) configstream.Report {
			rep := apply(gw, c, logger)
			release.applied()
			return rep
		},
		OnError: func(err error) {
			logger.Warn("config stream: the last applied configuration keeps serving", "controller", cfg.Controller, "err", err)
		},
	}
	logger.Info("data plane starting", "controller", cfg.Controller, "pod", cfg.Pod)
	return gw.Run(ctx, client.Run)
}

// newGateway is gateway.New as a data plane runs it: the routes, once
// compiled, are not kept for /config_dump (gateway.Options.ForgetRoutes),
// so the decoded Configs are garbage after their apply.
func newGateway(opts gateway.Options, logger *slog.Logger) (*gateway.Gateway, error) {
	opts.ForgetRoutes = true
	return gateway.New(opts, logger)
}

// apply serves one Config and reports what is served. A Config eliding a
// route that is not compiled here is not served; the report asks for a
// whole one (Report.Resync).
func apply(gw *gateway.Gateway, c configstream.Config, logger *slog.Logger) configstream.Report {
	var rep configstream.Report
	if c.Gateway != "" && c.Snapshot != nil {
		for _, l := range c.Snapshot.Listeners {
			if l.Gateway != c.Gateway {
				// The controller only sends a Gateway its own listeners;
				// anything else is a fault, refused whole.
				rep.Error = fmt.Sprintf("listener %q belongs to gateway %q, not %q", l.Name, l.Gateway, c.Gateway)
				logger.Error("configuration refused", "version", c.Version, "err", rep.Error)
				return rep
			}
		}
	}
	err := gw.Apply(c.Resolve(), gateway.NoStatus{})
	if errors.Is(err, router.ErrUnknownRoute) {
		rep.Resync = true
		logger.Warn("configuration elides routes not compiled here; streaming again from a whole one", "version", c.Version, "err", err)
		return rep
	}
	failures := gw.BindFailures()
	if err != nil && len(failures) == 0 {
		rep.Error = err.Error()
		logger.Error("configuration refused; the previous one keeps serving", "version", c.Version, "err", err)
		return rep
	}
	for name, e := range failures {
		rep.Unbound = append(rep.Unbound, configstream.ListenerError{Listener: name, Error: e.Error()})
	}
	sort.Slice(rep.Unbound, func(i, j int) bool { return rep.Unbound[i].Listener < rep.Unbound[j].Listener })
	logger.Debug("configuration received", "version", c.Version, "generation", c.Generation, "unbound", len(rep.Unbound))
	return rep
}

// readCA takes PEM text as it is, anything else as a file path.
func readCA(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("dataplane: controller CA: %w", err)
	}
	return b, nil
}

package dataplane

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/false-systems/rauta/internal/cli"
	"github.com/false-systems/rauta/internal/wellknown"
)

// Main parses the data plane's flags (each also RAUTA_<FLAG>) and runs it.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	fs := flag.NewFlagSet("rauta dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c cli.Common
	c.Register(fs)
	// A data-plane pod keeps its admin endpoints on loopback and its probes
	// and metrics on a port no listener is likely to want; ports below 1024
	// are shifted so the pod needs no privileges (the Service maps them).
	cli.SetDefault(fs, "admin-addr", fmt.Sprintf("127.0.0.1:%d", wellknown.AdminPort))
	cli.SetDefault(fs, "metrics-addr", fmt.Sprintf(":%d", wellknown.MetricsPort))
	host, _ := os.Hostname()
	var cfg Config
	fs.StringVar(&cfg.Controller, "controller", "", "the controller's config stream address, host:port")
	fs.StringVar(&cfg.ServerName, "controller-server-name", "", "the name in the controller's certificate")
	fs.StringVar(&cfg.CA, "controller-ca", "", "PEM certificate of the controller's CA, or a file holding it")
	fs.StringVar(&cfg.TokenFile, "token-file", wellknown.TokenDir+"/token", "this pod's bound ServiceAccount token")
	fs.StringVar(&cfg.Gateway, "gateway", "", "namespace/name of the Gateway served")
	fs.StringVar(&cfg.Pod, "pod", host, "this pod's name")
	lowOffset := fs.Int("low-port-offset", wellknown.LowPortOffset, "added to listener ports below 1024 when binding (the Service maps them back)")
	var rt runtimeSettings
	rt.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := c.Finish(fs, stdout, stderr, version)
	if err != nil {
		return err
	}
	gcPercent, limit := rt.applyRuntime()
	logger.Debug("go runtime", "gc_percent", gcPercent, "memory_limit_bytes", limit)
	cfg.Options = c.Opts
	cfg.LowPortOffset = *lowOffset
	return Run(ctx, cfg, logger)
}

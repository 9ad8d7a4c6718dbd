package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/false-systems/rauta/internal/dataplane"
	"github.com/false-systems/rauta/internal/provision"
)

// runDataPlane serves one Gateway's data plane, fed by the controller (the
// kubernetes provisioner creates the pods that run it).
func runDataPlane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	// A data-plane pod keeps its admin endpoints on loopback and its probes
	// and metrics on a port no listener is likely to want; ports below 1024
	// are shifted so the pod needs no privileges (the Service maps them).
	setDefault(fs, "admin-addr", "127.0.0.1:19000")
	setDefault(fs, "metrics-addr", ":19001")
	host, _ := os.Hostname()
	var cfg dataplane.Config
	fs.StringVar(&cfg.Controller, "controller", "", "the controller's config stream address, host:port")
	fs.StringVar(&cfg.ServerName, "controller-server-name", "", "the name in the controller's certificate")
	fs.StringVar(&cfg.CA, "controller-ca", "", "PEM certificate of the controller's CA, or a file holding it")
	fs.StringVar(&cfg.TokenFile, "token-file", provision.TokenDir+"/token", "this pod's bound ServiceAccount token")
	fs.StringVar(&cfg.Gateway, "gateway", "", "namespace/name of the Gateway served")
	fs.StringVar(&cfg.Pod, "pod", host, "this pod's name")
	lowOffset := fs.Int("low-port-offset", provision.LowPortOffset, "added to listener ports below 1024 when binding (the Service maps them back)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := c.finish(fs, stdout, stderr)
	if err != nil {
		return err
	}
	cfg.Options = c.opts
	cfg.Options.LowPortOffset = *lowOffset
	return dataplane.Run(ctx, cfg, logger)
}

// setDefault changes a registered flag's default (and its help text).
func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if f == nil {
		return
	}
	f.DefValue = value
	_ = f.Value.Set(value)
}

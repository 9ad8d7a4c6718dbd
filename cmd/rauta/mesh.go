package main

import (
	"context"
	"flag"
	"io"

	"github.com/false-systems/rauta/internal/cli"
	"github.com/false-systems/rauta/internal/mesh"
)

// runMesh is the node agent of the mesh: Service routing at the socket
// (cgroup eBPF programs), without kube-proxy or iptables.
func runMesh(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta mesh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg mesh.Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cli.EnvDefaults(fs); err != nil {
		return err
	}
	logger, err := cfg.Logger(stderr)
	if err != nil {
		return err
	}
	return mesh.Run(ctx, cfg, logger)
}

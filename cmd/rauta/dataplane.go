package main

import (
	"context"
	"io"

	"github.com/false-systems/rauta/internal/dataplane"
)

// runDataPlane serves one Gateway's data plane, fed by the controller (the
// kubernetes provisioner creates the pods that run it). The image's
// /rauta-dataplane is the same command without the control plane's code.
func runDataPlane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dataplane.Main(ctx, args, stdout, stderr, version)
}

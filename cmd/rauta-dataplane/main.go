// Command rauta-dataplane is one Gateway's data plane, fed by `rauta
// controller` over the config stream: the same as `rauta dataplane`, built
// without the control plane's Kubernetes API types and client code
// (deps_test.go keeps them out), so the pods that carry traffic start faster
// and hold less memory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/false-systems/rauta/internal/cli"
	"github.com/false-systems/rauta/internal/dataplane"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The first SIGTERM starts the drain; a second exits at once.
	ctx, stop := cli.ShutdownContext(context.Background(), os.Stderr, os.Exit)
	err := dataplane.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, version)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "rauta-dataplane:", err)
		os.Exit(1)
	}
}

// Command rauta is RAUTA's single binary: a Gateway API gateway with its own
// L7 proxy (rauta run, rauta controller), an eBPF HTTP observer
// (rauta observe) and the mesh's node agent (rauta mesh).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/false-systems/rauta/internal/cli"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const usage = `rauta: Kubernetes Gateway API gateway with its own L7 proxy and eBPF HTTP observability.

Usage:
  rauta run -f PATH [flags]   serve Gateway API manifests from a file or folder (no cluster needed)
  rauta controller [flags]    watch a Kubernetes API server, provision a data plane per Gateway, write status
  rauta dataplane [flags]     one Gateway's data plane, fed by the controller (the controller creates these pods)
  rauta observe [flags]       eBPF capture of HTTP on node/pod interfaces: latency, 5xx spikes, failing probes
  rauta mesh [flags]          node agent: Service routing at the socket with eBPF (no kube-proxy, no iptables)
  rauta version               print build information

Run "rauta COMMAND -h" for the flags of a command. Every flag can also be set
from the environment: RAUTA_<FLAG> with dashes as underscores (RAUTA_ADMIN_ADDR).
Without a command, RAUTA_MODE picks one: ingress (controller), observability
(observe) or mesh (mesh).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rauta:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && os.Getenv("RAUTA_MODE") != "" {
		cmd, err := modeCommand(os.Getenv("RAUTA_MODE"))
		if err != nil {
			fmt.Fprint(stderr, usage)
			return err
		}
		args = append([]string{cmd}, args...)
	}
	ctx, stop := cli.ShutdownContext(context.Background(), stderr, os.Exit)
	defer stop()
	switch args[0] {
	case "run":
		return runStandalone(ctx, args[1:], stdout, stderr)
	case "controller":
		return runController(ctx, args[1:], stdout, stderr)
	case "dataplane":
		return runDataPlane(ctx, args[1:], stdout, stderr)
	case "observe":
		return runObserve(ctx, args[1:], stdout, stderr)
	case "mesh":
		return runMesh(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "rauta %s %s %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if commit != "" {
			fmt.Fprintf(stdout, " commit %s", commit)
		}
		fmt.Fprintln(stdout)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// modeCommand maps the seed's RAUTA_MODE to a command.
func modeCommand(mode string) (string, error) {
	switch mode {
	case "ingress":
		return "controller", nil
	case "observability":
		return "observe", nil
	case "mesh":
		return "mesh", nil
	case "":
		return "", errors.New("no command given (and RAUTA_MODE is not set)")
	}
	return "", fmt.Errorf("RAUTA_MODE=%q: want ingress, observability or mesh", mode)
}

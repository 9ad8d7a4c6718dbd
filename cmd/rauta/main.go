// Command rauta is RAUTA's single binary: a Gateway API gateway with its own
// L7 proxy (rauta run, rauta controller) and an eBPF HTTP observer
// (rauta observe).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/translate"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `rauta: Kubernetes Gateway API gateway with its own L7 proxy and eBPF HTTP observability.

Usage:
  rauta run -f PATH [flags]   serve Gateway API manifests from a file or folder (no cluster needed)
  rauta controller [flags]    watch a Kubernetes API server, provision a data plane per Gateway, write status
  rauta dataplane [flags]     one Gateway's data plane, fed by the controller (the controller creates these pods)
  rauta observe [flags]       eBPF capture of HTTP on node/pod interfaces: latency, 5xx spikes, failing probes
  rauta version               print build information

Run "rauta COMMAND -h" for the flags of a command. Every flag can also be set
from the environment: RAUTA_<FLAG> with dashes as underscores (RAUTA_ADMIN_ADDR).
Without a command, RAUTA_MODE picks one: ingress (controller), observability
(observe) or mesh (not available yet).
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
	ctx, stop := shutdownContext(context.Background(), stderr, os.Exit)
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
	case "version":
		fmt.Fprintf(stdout, "rauta %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
		return "", errors.New("RAUTA_MODE=mesh: the service mesh is not available in this version")
	case "":
		return "", errors.New("no command given (and RAUTA_MODE is not set)")
	}
	return "", fmt.Errorf("RAUTA_MODE=%q: want ingress, observability or mesh", mode)
}

// common are the flags every gateway command has.
type common struct {
	opts           gateway.Options
	accessLog      bool
	logLevel       string
	controllerName string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.opts.Address, "address", "0.0.0.0", "address listeners bind when a Gateway has no address of its own")
	fs.IntVar(&c.opts.PortOffset, "port-offset", 0, "added to every listener port, e.g. 8000 serves port 80 on 8080")
	fs.StringVar(&c.opts.AdminAddr, "admin-addr", "127.0.0.1:9091", "address of every admin endpoint: /metrics, /healthz, /readyz, /config_dump, /status (keep it on loopback)")
	fs.StringVar(&c.opts.MetricsAddr, "metrics-addr", ":9090", "address of /metrics, /healthz and /readyz only, for probes and Prometheus; empty disables")
	fs.BoolVar(&c.opts.Profiling, "pprof", false, "also serve Go's profiles under /debug/pprof/ on the admin address")
	fs.DurationVar(&c.opts.DrainPeriod, "drain-period", gateway.DefaultDrainPeriod, "after SIGTERM, how long to keep serving with /readyz at 503 while clients are told to reconnect (a second signal exits at once)")
	fs.DurationVar(&c.opts.ShutdownTimeout, "shutdown-timeout", gateway.DefaultShutdownTimeout, "after the drain, how long in-flight requests may take to finish")
	fs.BoolVar(&c.accessLog, "access-log", true, "write one JSON line per request to stdout")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.controllerName, "controller-name", translate.DefaultControllerName, "serve GatewayClasses with this controllerName")
}

// finish applies environment defaults and builds the logger.
func (c *common) finish(fs *flag.FlagSet, stdout, stderr io.Writer) (*slog.Logger, error) {
	if err := envDefaults(fs); err != nil {
		return nil, err
	}
	c.opts.Version = version
	if c.accessLog {
		c.opts.AccessLog = stdout
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.logLevel, err)
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}

// envDefaults sets every flag not given on the command line from RAUTA_<NAME>.
func envDefaults(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		key := "RAUTA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", key, v, e)
			}
		}
	})
	return err
}

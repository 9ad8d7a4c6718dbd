// Command rauta is RAUTA's single binary: a Gateway API gateway with its own
// L7 proxy (rauta run, rauta controller) and an eBPF HTTP observer
// (rauta observe).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/false-systems/rauta/internal/standalone"
	"github.com/false-systems/rauta/internal/translate"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `rauta: Kubernetes Gateway API gateway with its own L7 proxy and eBPF HTTP observability.

Usage:
  rauta run -f PATH [flags]   serve Gateway API manifests from a file or folder (no cluster needed)
  rauta version               print build information

Run "rauta COMMAND -h" for the flags of a command. Every flag can also be set
from the environment: RAUTA_<FLAG> with dashes as underscores (RAUTA_ADMIN_ADDR).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rauta:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		return runStandalone(ctx, args[1:], stdout, stderr)
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

func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rauta run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("f", "", "manifest file or folder (required)")
	address := fs.String("address", "0.0.0.0", "address listeners bind when a Gateway has no spec.addresses")
	portOffset := fs.Int("port-offset", 0, "added to every listener port, e.g. 8000 serves port 80 on 8080")
	adminAddr := fs.String("admin-addr", ":9090", "address of /metrics, /healthz, /readyz, /config_dump and /status")
	accessLog := fs.Bool("access-log", true, "write one JSON line per request to stdout")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	class := fs.String("controller-name", translate.DefaultControllerName, "serve GatewayClasses with this controllerName")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return fmt.Errorf("-f is required")
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg := standalone.Config{
		Path:           *path,
		Address:        *address,
		PortOffset:     *portOffset,
		AdminAddr:      *adminAddr,
		ControllerName: *class,
		Version:        version,
	}
	if *accessLog {
		cfg.AccessLog = stdout
	}
	return standalone.Run(ctx, cfg, logger)
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

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

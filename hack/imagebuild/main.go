// Command imagebuild builds RAUTA's container image without Docker: an OCI
// image layout (dist/oci) and a tarball for docker/podman load
// (dist/rauta-VERSION.tar). `make image` runs it; see docs/image.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/false-systems/rauta/internal/image"
)

// commands collects repeated -cmd flags.
type commands []string

func (c *commands) String() string     { return strings.Join(*c, ",") }
func (c *commands) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "imagebuild:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	var opts image.BuildOptions
	var cmds commands
	fs.StringVar(&opts.OutDir, "out", "dist", "output folder: gets oci/ and NAME-VERSION.tar")
	fs.StringVar(&opts.Version, "version", "", "image tag and main.version (default: hack/version.sh, i.e. git describe)")
	fs.StringVar(&opts.Repository, "repository", image.DefaultRepository, "image repository the tag belongs to")
	fs.StringVar(&opts.RepoRoot, "root", ".", "the module's root folder")
	fs.StringVar(&opts.Arch, "arch", "", "GOARCH to build for (default: this machine's)")
	fs.Var(&cmds, "cmd", "main package to put in the image, repeatable; the first is the entrypoint\n(default ./cmd/rauta and ./cmd/rauta-dataplane: image.Commands)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opts.Commands = cmds
	if len(opts.Commands) == 0 {
		opts.Commands = image.Commands
	}
	// Reproducible-builds convention: SOURCE_DATE_EPOCH pins every date.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		opts.Created = time.Unix(sec, 0)
	}

	res, err := image.BuildRepo(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reference  %s\n", res.Reference)
	fmt.Fprintf(stdout, "digest     %s\n", res.Digest)
	fmt.Fprintf(stdout, "layout     %s  (ref name %s)\n", res.LayoutPath, res.Version)
	fmt.Fprintf(stdout, "tarball    %s\n", res.TarballPath)
	fmt.Fprintf(stdout, "layer      %s compressed\n", mib(res.LayerSize))
	paths := make([]string, 0, len(res.Binaries))
	for p := range res.Binaries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(stdout, "binary     %s %s\n", p, mib(res.Binaries[p]))
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

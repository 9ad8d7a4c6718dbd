// Command probes sends the same attack and fault probes to RAUTA, nginx and
// HAProxy side by side and prints a markdown table of which passed:
// HTTP/1.1 smuggling and parsing, request limits, path normalisation,
// stalls and timeouts, backend faults, and HTTP/2 floods and malformed
// frames (issue 14).
//
//	go run ./bench/probes [-only NAME[,NAME]] [-proxies rauta,nginx,haproxy] [-timeout-scale 1]
//
// The harness builds RAUTA from this tree (or takes -rauta), starts each
// proxy on loopback in front of the same Go backends (bench/probes
// backends.go), all timeouts set to the same shortened value, and runs
// every probe against each proxy in turn. Root is not required.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/false-systems/rauta/bench/internal/procgroup"
)

// baseTimeout is every proxy's timeout in a run at -timeout-scale 1: nginx
// and HAProxy default to 60 s, RAUTA to 60 s (10 s for the request head).
const baseTimeout = 5 * time.Second

func main() { os.Exit(run()) }

type options struct {
	only    map[string]bool
	proxies []string
	rauta   string
	// rautaArgs are added to rauta run's flags.
	rautaArgs []string
	scale     float64
	keepDir   bool
	markdown  string
	verbose   bool
}

func run() int {
	var o options
	only := flag.String("only", "", "comma-separated probe names (or prefixes ending in *) to run; empty runs all")
	proxies := flag.String("proxies", "rauta,nginx,haproxy", "comma-separated proxies to probe")
	flag.StringVar(&o.rauta, "rauta", "", "rauta binary; empty builds ./cmd/rauta from the current tree")
	rautaArgs := flag.String("rauta-args", "", "more flags for rauta run, space-separated (e.g. \"-escaped-slashes reject\")")
	flag.Float64Var(&o.scale, "timeout-scale", 1, fmt.Sprintf("multiplies the %s every proxy's timeouts are set to", baseTimeout))
	flag.BoolVar(&o.keepDir, "keep", false, "keep the temp dir with configs and logs")
	flag.StringVar(&o.markdown, "out", "", "also write the table to this file")
	flag.BoolVar(&o.verbose, "v", false, "print the first bytes the backends received in each probe")
	list := flag.Bool("list", false, "list the probes and exit")
	flag.Parse()
	all := allProbes()
	if *list {
		for _, p := range all {
			fmt.Printf("%-28s %s\n", p.name, p.pass)
		}
		return 0
	}
	o.proxies = strings.Split(*proxies, ",")
	o.rautaArgs = strings.Fields(*rautaArgs)
	o.only = map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			o.only[n] = true
		}
	}
	var sel []probe
	for _, p := range all {
		if selected(o.only, p.name) {
			sel = append(sel, p)
		}
	}
	if len(sel) == 0 {
		fmt.Fprintln(os.Stderr, "probes: no probe matches -only")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "rauta-probes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "probes:", err)
		return 1
	}
	if o.keepDir {
		fmt.Fprintln(os.Stderr, "probes: files in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep, err := runAll(ctx, o, dir, sel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probes:", err)
		return 1
	}
	table := rep.markdown()
	fmt.Print(table)
	if o.markdown != "" {
		if err := os.WriteFile(o.markdown, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "probes:", err)
			return 1
		}
	}
	return 0
}

func selected(only map[string]bool, name string) bool {
	if len(only) == 0 || only[name] {
		return true
	}
	for n := range only {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// runAll starts the backends once and each proxy in turn, and runs every
// selected probe against it.
func runAll(ctx context.Context, o options, dir string, sel []probe) (*report, error) {
	t := time.Duration(float64(baseTimeout) * o.scale).Round(time.Second)
	if t < time.Second {
		t = time.Second
	}
	if o.rauta == "" && containsString(o.proxies, "rauta") {
		o.rauta = filepath.Join(dir, "bin", "rauta")
		fmt.Fprintln(os.Stderr, "probes: building ./cmd/rauta")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.rauta, "./cmd/rauta")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("build rauta (run from the module root or pass -rauta): %w", err)
		}
	}
	be, err := startBackends()
	if err != nil {
		return nil, fmt.Errorf("backends: %w", err)
	}
	defer be.close()
	ps := procgroup.NewSet()
	defer ps.StopAll()
	rep := &report{timeout: t, proxies: o.proxies, probes: sel, cells: map[string]map[string]result{}, rautaArgs: o.rautaArgs}
	for _, name := range o.proxies {
		pdir := filepath.Join(dir, name)
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return nil, err
		}
		c, err := newContender(name, pdir, o.rauta, be.routes(), t)
		if name == "rauta" {
			c.argv = append(c.argv, o.rautaArgs...)
		}
		if err != nil {
			return nil, err
		}
		p, err := ps.Start(name, c.argv, c.env, filepath.Join(pdir, name+".log"))
		if err != nil {
			return nil, err
		}
		tg := &target{contender: c, proc: p, be: be, timeout: t}
		if err := tg.waitReady(ctx); err != nil {
			ps.Stop(p, 3*time.Second)
			return nil, fmt.Errorf("%s: %w (log: %s)", name, err, tail(p.Log))
		}
		rep.cells[name] = map[string]result{}
		for _, pr := range sel {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res := tg.run(ctx, pr)
			rep.cells[name][pr.name] = res
			verdict := "FAIL"
			if res.pass {
				verdict = "pass"
			}
			fmt.Fprintf(os.Stderr, "%-8s %-26s %s  %s\n", name, pr.name, verdict, res.what)
			if o.verbose {
				w := be.w.bytes()
				fmt.Fprintf(os.Stderr, "    backend received %d bytes: %.2000q\n", len(w), w)
			}
			if res.died != "" {
				rep.died = append(rep.died, name+": "+res.died)
				break
			}
		}
		ps.Stop(p, 5*time.Second)
	}
	return rep, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// Command mesh measures the mesh's data path on one node (issue 17 point
// 4): pod -> Service (ClusterIP) -> pod, where pods are network namespaces
// joined by veths to a bridge, the client and the server each in a cgroup
// v2 of its own under the cgroup the mesh agent attaches to. Paths:
//
//	plain     client -> the server pod's IP, no mesh
//	sockmap   the RAUTA mesh agent, GAMMA proxy, -sockmap on
//	mesh      the same, -sockmap off
//	sidecar   a proxy (nginx) in each pod, traffic captured by iptables REDIRECT
//	mesh-b, sockmap-b  mesh and sockmap with the agent of -agent-bin (another
//	          build), to compare two builds in the same rounds
//
// Cells: HTTP/1.1 keep-alive and a new connection per request, 1 KiB and
// 64 KiB responses. Per cell and path: p50/p99 latency, requests/s and CPU
// per request (the CPU time of every process on the path, read from their
// cgroups, plus the machine's softirq time), in rounds that run the paths
// back to back (order reversed every other round), and paired ratios with a
// 95 % interval (bench/internal/verdict).
//
// It needs root, iptables and nginx (hack/deps.sh bench), and cleans up
// its namespaces, bridge, cgroups and processes, also after a failure or
// SIGINT.
//
//	go run ./bench/mesh -rounds 5 -requests 2000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// roleEnv selects a child role: the bench runs its own binary as the
// agent, the server and the client, each in its cgroup (and pod).
const roleEnv = "RAUTA_MESHBENCH_ROLE"

type config struct {
	rounds     int
	requests   int
	warmup     int
	runTimeout time.Duration
	timeLimit  time.Duration
	paths      []string
	cells      []cell
	keepDir    bool
	profileDir string
	agentProcs int
	agentBin   string
}

// cell is one traffic shape.
type cell struct {
	newConn bool
	size    int
}

func (c cell) String() string {
	conn := "keep-alive"
	if c.newConn {
		conn = "new conn"
	}
	return fmt.Sprintf("%s %d KiB", conn, c.size/1024)
}

func allCells() []cell {
	return []cell{{false, 1024}, {false, 64 << 10}, {true, 1024}, {true, 64 << 10}}
}

// cellNames are the names -cells takes, in allCells' order.
var cellNames = []string{"ka1", "ka64", "new1", "new64"}

// pickCells parses -cells: a comma-separated subset of cellNames, run in
// allCells' order.
func pickCells(list string) ([]cell, error) {
	want := make(map[string]bool)
	for _, n := range strings.Split(list, ",") {
		if !slices.Contains(cellNames, n) {
			return nil, fmt.Errorf("-cells: unknown %q (want some of %s)", n, strings.Join(cellNames, ","))
		}
		want[n] = true
	}
	var out []cell
	for i, cl := range allCells() {
		if want[cellNames[i]] {
			out = append(out, cl)
		}
	}
	return out, nil
}

func main() {
	var err error
	switch role := os.Getenv(roleEnv); role {
	case "agent":
		err = runAgent(os.Args[1:])
	case "server":
		err = runServer(os.Args[1:])
	case "client":
		err = runClient(os.Args[1:])
	case "":
		err = runBench(os.Args[1:], os.Stdout)
	default:
		err = fmt.Errorf("unknown %s %q", roleEnv, role)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

func runBench(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mesh", flag.ContinueOnError)
	var c config
	var paths, cells string
	fs.IntVar(&c.rounds, "rounds", 5, "rounds; each runs every path once per cell, the paths back to back (the pairs)")
	fs.IntVar(&c.requests, "requests", 2000, "timed requests per run (one client, one request at a time)")
	fs.IntVar(&c.warmup, "warmup", 100, "untimed requests before each run")
	fs.DurationVar(&c.runTimeout, "run-timeout", 30*time.Second, "a run's timed requests end after this even if fewer were sent")
	fs.DurationVar(&c.timeLimit, "time-limit", 20*time.Minute, "the whole bench ends after this")
	fs.StringVar(&paths, "paths", "plain,sockmap,mesh,sidecar", "paths to run, comma-separated: plain, sockmap, mesh, sidecar; mesh-b and sockmap-b need -agent-bin")
	fs.StringVar(&cells, "cells", strings.Join(cellNames, ","), "cells to run, comma-separated: ka1 and ka64 (keep-alive, 1 and 64 KiB), new1 and new64 (a new connection per request)")
	fs.BoolVar(&c.keepDir, "keep-dir", false, "keep the sidecars' configuration directory")
	fs.StringVar(&c.profileDir, "agent-cpuprofile", "", "directory for a CPU profile of the agent per mesh path and round (<path>-<round>.pprof); empty: none")
	fs.IntVar(&c.agentProcs, "agent-gomaxprocs", 0, "GOMAXPROCS of the agent (as a CPU limit of that many cores would set it); 0: Go's default")
	fs.StringVar(&c.agentBin, "agent-bin", "", "the agent of the paths mesh-b and sockmap-b: a bench/mesh binary built from another commit, compared with mesh and sockmap in the same rounds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.rounds < 1 || c.requests < 1 || c.warmup < 0 {
		return errors.New("-rounds and -requests must be at least 1, -warmup not negative")
	}
	for _, p := range strings.Split(paths, ",") {
		if _, ok := pathSpecs()[p]; !ok {
			return fmt.Errorf("-paths: unknown %q", p)
		}
		if pathSpecs()[p].otherAgent && c.agentBin == "" {
			return fmt.Errorf("-paths: %s needs -agent-bin", p)
		}
		c.paths = append(c.paths, p)
	}
	if c.agentBin != "" {
		abs, err := filepath.Abs(c.agentBin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("-agent-bin: %w", err)
		}
		c.agentBin = abs
	}
	var err error
	if c.cells, err = pickCells(cells); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, cgroups, eBPF)")
	}
	// A closed stdout (| head) must not kill the bench before teardown:
	// writes then fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeLimit)
	defer cancel()
	return bench(ctx, c, out)
}

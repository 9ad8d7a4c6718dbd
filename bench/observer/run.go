package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

type benchOptions struct {
	duration time.Duration
	rounds   int
	conns    int
	rate     int
	saturate bool
	mode     string
}

// load is what wrk offers in one series.
type load struct {
	conns   int
	delayMS int // per-connection pause between requests; 0: closed loop
}

type runResult struct {
	rps      float64
	p99      time.Duration
	requests float64
	obs      *observerStats // nil for baseline runs
	// BPF run-time accounting of the observer programs (observed runs).
	kernelRuns       uint64
	kernelNsPerRun   float64
	kernelCPUPercent float64
}

// pairResult is one baseline run and one observed run back to back.
type pairResult struct {
	base, obs     runResult
	observedFirst bool
}

func bench(ctx context.Context, o benchOptions) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
	for _, tool := range []string{"ip", "wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed: %w", tool, err)
		}
	}
	net, err := setupNet()
	if err != nil {
		return err
	}
	defer net.teardown()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The server gets CPU 1, wrk CPU 0; the observer and the kernel's
	// softirq work share both, as on a real node.
	server := exec.CommandContext(ctx, "ip", "netns", "exec", net.server, "taskset", "-c", "1", self, "-serve", net.serverAddr)
	server.Stdout, server.Stderr = os.Stderr, os.Stderr
	server.Env = append(os.Environ(), "GOMAXPROCS=1")
	if err := server.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		_ = server.Process.Signal(syscall.SIGTERM)
		_ = server.Wait() // exits by our signal
	}()
	if err := net.waitServer(ctx); err != nil {
		return err
	}

	fmt.Printf("observer overhead benchmark: %d baseline/observed pairs of %v per series, 1 KiB responses, mode %s, wrk -t1 on CPU 0, server on CPU 1\n", o.rounds, o.duration, o.mode)
	// Warm up caches and the server.
	if _, err := net.wrk(ctx, load{conns: o.conns}, 2*time.Second); err != nil {
		return err
	}

	if o.rate > 0 {
		l, achieved, err := net.calibrate(ctx, o.rate)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("paced: ~%d requests/s offered (wrk -c%d, Lua delay %d ms per connection; calibrated without the observer to %.0f req/s, same load for both sides)", o.rate, l.conns, l.delayMS, achieved)
		pairs, err := net.series(ctx, o, l, title)
		if err != nil {
			return err
		}
		printSummary(title, pairs)
	}
	if o.saturate {
		title := fmt.Sprintf("capacity cost at saturation (wrk -c%d closed loop, as fast as the server answers)", o.conns)
		pairs, err := net.series(ctx, o, load{conns: o.conns}, title)
		if err != nil {
			return err
		}
		printSummary(title, pairs)
	}
	return nil
}

// series runs o.rounds baseline/observed pairs, alternating which side
// goes first.
func (n *netSetup) series(ctx context.Context, o benchOptions, l load, title string) ([]pairResult, error) {
	fmt.Printf("\n== %s ==\n", title)
	var pairs []pairResult
	for i := range o.rounds {
		p := pairResult{observedFirst: i%2 == 1}
		order := []bool{p.observedFirst, !p.observedFirst}
		for _, withObserver := range order {
			r, err := n.measure(ctx, o, l, withObserver)
			if err != nil {
				return nil, err
			}
			if withObserver {
				p.obs = r
			} else {
				p.base = r
			}
			printRun(i+1, r)
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

func (n *netSetup) measure(ctx context.Context, o benchOptions, l load, withObserver bool) (runResult, error) {
	var ob *runningObserver
	if withObserver {
		var err error
		ob, err = startObserver(ctx, n, o.mode)
		if err != nil {
			return runResult{}, err
		}
	}
	ks, kerr := enableKernelStats()
	if kerr == nil {
		defer ks.Close()
	}
	res, err := n.wrk(ctx, l, o.duration)
	if ob != nil {
		if kerr == nil {
			rt, runs, perr := observerPrograms()
			if perr == nil && runs > 0 {
				res.kernelRuns, res.kernelNsPerRun = runs, float64(rt.Nanoseconds())/float64(runs)
				res.kernelCPUPercent = float64(rt) / float64(o.duration) * 100
			}
		}
		// Give userspace a moment to drain, then read its counters.
		time.Sleep(500 * time.Millisecond)
		st, serr := ob.stats()
		ob.stop()
		if err == nil {
			err = serr
		}
		res.obs = &st
	}
	return res, err
}

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
	// pacedConns fixes the paced series' connection count (0: calibrate).
	pacedConns int
	// maxOther and maxSteal: a pair is run again when other jobs, or the
	// hypervisor, took more than this percent of a CPU during it (0: never).
	maxOther, maxSteal float64
	readerNice         int // observe.Config.ReaderNice
	// pollInterval overrides the observer's poll period when > 0.
	pollInterval time.Duration
	// checkPairing: requests name their status and the observer's JSON
	// exchanges are checked against it (pairing.go).
	checkPairing bool
}

// load is what wrk offers in one series.
type load struct {
	conns   int
	delayMS int // per-connection pause between requests; 0: closed loop
	// checkPairing: each request asks for a status (pairingScript).
	checkPairing bool
}

type runResult struct {
	rps      float64
	p99      time.Duration
	requests float64
	wrkCPU   time.Duration
	cpu      cpuUse
	obs      *observerStats // nil for baseline runs
	// BPF run-time accounting of the observer programs (observed runs),
	// sampled over the last statsWindow of the run only.
	kernelRuns       uint64
	kernelNsPerRun   float64
	kernelCPUPercent float64
	kernelProgs      map[string]progStats
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
	// ip netns exec and taskset exec into the server: same pid.
	net.serverPID = server.Process.Pid
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
		l, achieved, how, err := net.pacedLoad(ctx, o)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("paced: ~%d requests/s offered (wrk -c%d, Lua delay %d ms per connection; %s %.0f req/s, same load for both sides)", o.rate, l.conns, l.delayMS, how, achieved)
		pairs, err := net.series(ctx, o, l, title)
		if err != nil {
			return err
		}
		printSummary(title, pairs)
	}
	if o.saturate {
		title := fmt.Sprintf("capacity cost at saturation (wrk -c%d closed loop, as fast as the server answers)", o.conns)
		pairs, err := net.series(ctx, o, load{conns: o.conns, checkPairing: o.checkPairing}, title)
		if err != nil {
			return err
		}
		printSummary(title, pairs)
	}
	return nil
}

// series runs o.rounds baseline/observed pairs, alternating which side
// goes first. A disturbed pair is reported and run again, at most
// 2*o.rounds extra times: it measures the other job, not the observer.
func (n *netSetup) series(ctx context.Context, o benchOptions, l load, title string) ([]pairResult, error) {
	fmt.Printf("\n== %s ==\n", title)
	var pairs []pairResult
	retries := 0
	for i := 0; len(pairs) < o.rounds; i++ {
		p := pairResult{observedFirst: len(pairs)%2 == 1}
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
			printRun(len(pairs)+1, r)
		}
		if disturbed(p, o) && retries < 2*o.rounds {
			retries++
			fmt.Printf("pair disturbed: other jobs took %.0f%% / %.0f%% of a CPU (limit %.0f%%), the hypervisor %.0f%% / %.0f%% (limit %.0f%%); running it again\n",
				p.base.cpu.other, p.obs.cpu.other, o.maxOther, p.base.cpu.stolen(), p.obs.cpu.stolen(), o.maxSteal)
			continue
		}
		pairs = append(pairs, p)
	}
	if retries > 0 {
		fmt.Printf("%d disturbed pairs were run again\n", retries)
	}
	return pairs, nil
}

// disturbed: during either half other jobs took more than o.maxOther
// percent of a CPU, or the hypervisor more than o.maxSteal (steal time,
// summed over CPUs). Both hit one half of the pair only, by chance.
func disturbed(p pairResult, o benchOptions) bool {
	if o.maxOther > 0 && max(p.base.cpu.other, p.obs.cpu.other) > o.maxOther {
		return true
	}
	return o.maxSteal > 0 && max(p.base.cpu.stolen(), p.obs.cpu.stolen()) > o.maxSteal
}

func (n *netSetup) measure(ctx context.Context, o benchOptions, l load, withObserver bool) (runResult, error) {
	var ob *runningObserver
	if withObserver {
		var err error
		ob, err = startObserver(ctx, n, o)
		if err != nil {
			return runResult{}, err
		}
	}
	// BPF run-time accounting costs every program run two clock reads
	// (~100 ns here), which would be charged to the observed side only.
	// It is therefore switched on for the last statsWindow of an observed
	// run, not for all of it.
	var ks kernelSample
	if ob != nil {
		ks = sampleKernel(ctx, o.duration-statsWindow(o.duration))
	}
	probe := startCPUProbe(n.serverPID)
	res, err := n.wrk(ctx, l, o.duration)
	res.cpu = probe.finish(res.wrkCPU)
	if ob != nil {
		if progs, window, kerr := ks.finish(); kerr == nil {
			var total progStats
			for _, p := range progs {
				total.runtime += p.runtime
				total.runs += p.runs
			}
			res.kernelRuns, res.kernelNsPerRun = total.runs, total.nsPerRun()
			res.kernelCPUPercent = float64(total.runtime) / float64(window) * 100
			res.kernelProgs = progs
		}
		// Give userspace a moment to drain, then read its counters.
		time.Sleep(500 * time.Millisecond)
		st, serr := ob.stats()
		ob.stop()
		if ob.pairing != nil { // after stop: every exchange written
			st.checked, st.misPaired, st.unjudged = ob.pairing.counts()
		}
		if err == nil {
			err = serr
		}
		res.obs = &st
	}
	return res, err
}

// statsWindow is how much of an observed run BPF accounting covers.
func statsWindow(d time.Duration) time.Duration { return min(2*time.Second, d/2) }

// pacedLoad is the paced series' load: calibrated without the observer,
// or fixed by -paced-connections (then checked once without it), so that
// runs at different times can offer the same load.
func (n *netSetup) pacedLoad(ctx context.Context, o benchOptions) (load, float64, string, error) {
	if o.pacedConns <= 0 {
		l, achieved, err := n.calibrate(ctx, o)
		return l, achieved, "calibrated without the observer to", err
	}
	l := load{conns: o.pacedConns, delayMS: pacedDelayMS, checkPairing: o.checkPairing}
	r, err := n.wrk(ctx, l, 2*time.Second)
	return l, r.rps, "fixed by -paced-connections; 2 s without the observer gave", err
}

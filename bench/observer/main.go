// Command observer measures the overhead of the eBPF HTTP observer: HTTP
// throughput and p99 latency through a veth path with and without the
// observer attached, side by side in one run, and the event rate its
// userspace side sustains. It needs root, iproute2, taskset and wrk.
//
//	go run ./bench/observer -duration 10s -rounds 3
//
// Topology: netns C (wrk) <-veth-> netns S (a Go HTTP server answering
// 1 KiB). The observer attaches to S's veth (TC ingress+egress) from this
// process through -netns. Rounds alternate baseline/observed (ABBA) so
// drift on a shared machine hits both sides alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	serve := flag.String("serve", "", "internal: run the HTTP server on this address")
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "baseline/observed pairs")
	conns := flag.Int("connections", 64, "wrk connections")
	rate := flag.Int("paced-rate", 20000, "target requests/s of the paced run (0 skips it)")
	mode := flag.String("mode", "tc", "observer attach mode")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the observer) to this file")
	flag.Parse()

	if *serve != "" {
		if err := runServer(*serve); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := bench(ctx, benchOptions{duration: *duration, rounds: *rounds, conns: *conns, rate: *rate, mode: *mode}); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runServer serves 1 KiB bodies with HTTP/1.1 keep-alive.
func runServer(addr string) error {
	body := []byte(strings.Repeat("x", 1024))
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(body)
		}),
	}
	return srv.ListenAndServe()
}

type benchOptions struct {
	duration time.Duration
	rounds   int
	conns    int
	rate     int
	mode     string
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

	fmt.Printf("observer overhead benchmark: %d rounds of %v, wrk -t1 -c%d, 1 KiB responses, mode %s\n", o.rounds, o.duration, o.conns, o.mode)
	// Warm up caches and the server.
	if _, err := net.wrk(ctx, o.conns, 2*time.Second, 0); err != nil {
		return err
	}
	var base, obs []runResult
	for i := range o.rounds {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, withObserver := range order {
			r, err := net.measure(ctx, o, withObserver, 0)
			if err != nil {
				return err
			}
			if withObserver {
				obs = append(obs, r)
			} else {
				base = append(base, r)
			}
			printRun(i+1, r)
		}
	}
	fmt.Println()
	printSummary(base, obs)

	if o.rate > 0 {
		const pacedConns = 200
		delay, err := net.calibrate(ctx, pacedConns, o.rate)
		if err != nil {
			return err
		}
		fmt.Printf("\npaced run at ~%d requests/s (wrk -c%d, Lua delay %dms per connection), observer attached:\n", o.rate, pacedConns, delay)
		po := o
		po.conns = pacedConns
		r, err := net.measure(ctx, po, true, delay)
		if err != nil {
			return err
		}
		printRun(0, r)
		lost := r.obs.ringDropped + r.obs.evictedPending
		fmt.Printf("paced: %.0f req/s achieved, p99 %v, kernel events %d, ring drops %d, exchanges %d of %d requests, lost %d\n",
			r.rps, r.p99, r.obs.kernelEvents, r.obs.ringDropped, r.obs.exchanges, int64(r.requests), lost)
	}
	return nil
}

func (n *netSetup) measure(ctx context.Context, o benchOptions, withObserver bool, delayMS int) (runResult, error) {
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
	res, err := n.wrk(ctx, o.conns, o.duration, delayMS)
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

func printRun(round int, r runResult) {
	label := "baseline"
	if r.obs != nil {
		label = "observed"
	}
	fmt.Printf("round %d %-8s %9.0f req/s  p99 %-9v", round, label, r.rps, r.p99)
	if r.obs != nil {
		fmt.Printf("  kernel events %d (%.0f/s), ring drops %d, exchanges %d (%.0f/s), userspace CPU %.1f%%, BPF %.0f ns/packet over %d packets (%.1f%% of a CPU)",
			r.obs.kernelEvents, r.obs.eventsPerSec, r.obs.ringDropped, r.obs.exchanges, r.obs.exchangesPerSec, r.obs.cpuPercent,
			r.kernelNsPerRun, r.kernelRuns, r.kernelCPUPercent)
	}
	fmt.Println()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printSummary(base, obs []runResult) {
	get := func(rs []runResult, f func(runResult) float64) []float64 {
		var out []float64
		for _, r := range rs {
			out = append(out, f(r))
		}
		return out
	}
	rps := func(r runResult) float64 { return r.rps }
	p99 := func(r runResult) float64 { return float64(r.p99) }
	bR, oR := median(get(base, rps)), median(get(obs, rps))
	bP, oP := median(get(base, p99)), median(get(obs, p99))
	var drops, events, exch, req float64
	for _, r := range obs {
		drops += float64(r.obs.ringDropped)
		events += r.obs.eventsPerSec
		exch += float64(r.obs.exchanges)
		req += r.requests
	}
	fmt.Printf("| | requests/s (median) | p99 (median) |\n|---|---|---|\n")
	fmt.Printf("| baseline | %.0f | %v |\n", bR, time.Duration(bP).Round(time.Microsecond))
	fmt.Printf("| observer | %.0f | %v |\n", oR, time.Duration(oP).Round(time.Microsecond))
	fmt.Printf("throughput change with observer: %+.2f%%, p99 change: %+.2f%%\n", (oR-bR)/bR*100, (oP-bP)/bP*100)
	fmt.Printf("observed runs: %.0f requests, %.0f exchanges reported (%.2f%%), ring drops %.0f, mean kernel events/s %.0f\n",
		req, exch, exch/req*100, drops, events/float64(len(obs)))
}

// Command observer measures the overhead of the eBPF HTTP observer: HTTP
// throughput and p99 latency through a veth path with and without the
// observer attached, side by side in one run, and the event rate its
// userspace side sustains. It needs root, iproute2, taskset and wrk.
//
//	go run ./bench/observer -duration 8s -rounds 7
//
// Topology: netns C (wrk) <-veth-> netns S (a Go HTTP server answering
// 1 KiB). The observer attaches to S's veth (TC ingress+egress) from this
// process through -netns. Two series, each of -rounds baseline/observed
// pairs whose order alternates (ABBA) so drift on a shared machine hits
// both sides alike:
//
//   - paced: ~-paced-rate requests/s offered (wrk -c<N> with a fixed Lua
//     delay per connection, N calibrated without the observer and then
//     kept for both sides). This is the target: throughput and p99
//     at a given load, and whether any event is lost.
//   - capacity cost at saturation: wrk -c64 as fast as the server answers.
//     Server and wrk then fill both cores, so whatever CPU the observer
//     takes comes out of their throughput.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

func main() {
	serve := flag.String("serve", "", "internal: run the HTTP server on this address")
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "baseline/observed pairs per series")
	conns := flag.Int("connections", 64, "wrk connections of the saturating series")
	rate := flag.Int("paced-rate", 20000, "requests/s offered in the paced series (0 skips it)")
	saturate := flag.Bool("saturation", true, "run the saturating series (capacity cost at saturation)")
	mode := flag.String("mode", "tc", "observer attach mode")
	pacedConns := flag.Int("paced-connections", 0, "wrk connections of the paced series (0: calibrate to -paced-rate without the observer)")
	maxOther := flag.Float64("max-other", 5, "run a pair again when other jobs took more than this % of a CPU during it (0: never)")
	nice := flag.Int("reader-nice", observe.Defaults().ReaderNice, "nice value of the observer's reader thread")
	maxSteal := flag.Float64("max-steal", 10, "run a pair again when the hypervisor's steal time exceeded this % of a CPU (summed over CPUs) during it (0: never)")
	poll := flag.Duration("poll-interval", 0, "observer poll period (0: the observer's default)")
	cpus := flag.String("observer-cpus", "", "pin this process (the observer) to these CPUs, e.g. 0 or 0-1 (empty: not pinned, as on a node)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the observer) to this file")
	checkPairing := flag.Bool("check-pairing", false, "request /s/<code>/<n> and count observed exchanges whose status is not the one their target asked for (the observer then also encodes every exchange as JSON, which it does not by default)")
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
	if *cpus != "" {
		if err := pinProcess(*cpus); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	o := benchOptions{duration: *duration, rounds: *rounds, conns: *conns, rate: *rate, saturate: *saturate, mode: *mode, pollInterval: *poll, pacedConns: *pacedConns, maxOther: *maxOther, maxSteal: *maxSteal, readerNice: *nice, checkPairing: *checkPairing}
	if err := bench(ctx, o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runServer serves 1 KiB bodies with HTTP/1.1 keep-alive, with the status
// a /s/<code>/<n> target asks for (-check-pairing), 200 otherwise.
func runServer(addr string) error {
	body := []byte(strings.Repeat("x", 1024))
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			if code := statusOfTarget(r.URL.Path); code != 0 {
				w.WriteHeader(code)
			}
			_, _ = w.Write(body)
		}),
	}
	return srv.ListenAndServe()
}

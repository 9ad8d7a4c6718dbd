// Command propagation measures how fast `rauta controller` turns an applied
// HTTPRoute into traffic (issue #3, point 5), on the project's local cluster
// (test/devcluster), with the controller run as a real process:
//
//   - latency: time from applying an HTTPRoute to the first 200 through the
//     gateway, p50 and p99, with 1, 100 and 1,000 routes already present;
//   - churn: the requests that fail while 1,000 routes are added one by one
//     under steady load, the method of the public gateway-api-bench: every
//     new route is polled every 5 ms, and anything but 404-then-200 is an
//     error; routes already serving are polled alongside and must stay 200.
//
// It needs root (the local cluster's node agent), starts and tears down
// everything itself, and prints a table. -quick is a smoke run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	quick     bool
	samples   int
	levels    []int
	churn     int
	interval  time.Duration
	poll      time.Duration
	gap       time.Duration
	holdOff   time.Duration
	maxDelay  time.Duration
	keepLogs  bool
	follower  bool
	timeLimit time.Duration
	// deployed measures RAUTA as users deploy it: the image, the chart and
	// a data-plane pod per Gateway (issue 13 point 9).
	deployed bool
	replicas int
	// logLevel is the controller's -log-level (debug logs each sync's
	// steps; read them with -keep-logs).
	logLevel string
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "propagation:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("propagation", flag.ContinueOnError)
	var c config
	fs.BoolVar(&c.quick, "quick", os.Getenv("QUICK") == "1", "smoke run: few samples, levels 1 and 20, 50 churn routes (also QUICK=1)")
	fs.IntVar(&c.samples, "samples", 100, "routes timed per level")
	fs.IntVar(&c.churn, "churn", 1000, "routes added one by one in the churn phase")
	fs.DurationVar(&c.interval, "churn-interval", 50*time.Millisecond, "time between two route creations in the churn phase")
	fs.DurationVar(&c.poll, "poll", time.Millisecond, "probe interval")
	fs.DurationVar(&c.gap, "gap", 50*time.Millisecond, "quiet time before each timed route, so each sample is a lone change (the controller batches changes that come within its hold-off of the last one; the churn phase times changes in a stream)")
	fs.DurationVar(&c.holdOff, "hold-off", 0, "passed to rauta controller; 0 keeps its default")
	fs.DurationVar(&c.maxDelay, "max-delay", 0, "passed to rauta controller; 0 keeps its default (500ms)")
	fs.BoolVar(&c.follower, "follower", false, "measure a replica that does not hold the status Lease (another replica, started first, writes status)")
	fs.BoolVar(&c.keepLogs, "keep-logs", false, "keep the cluster folder and controller log after the run")
	fs.BoolVar(&c.deployed, "deployed", false, "run the chart-installed controller and a data-plane Deployment per Gateway from the image, and measure through the Gateway's load-balancer address")
	fs.IntVar(&c.replicas, "dataplane-replicas", 1, "data-plane pods per Gateway with -deployed")
	fs.StringVar(&c.logLevel, "controller-log-level", "", "the controller's -log-level with -deployed (debug times each sync's steps; keep the logs with -keep-logs)")
	fs.DurationVar(&c.timeLimit, "time-limit", 15*time.Minute, "the whole run ends after this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.levels = []int{1, 100, 1000}
	if c.quick {
		c.samples, c.levels, c.churn = 10, []int{1, 20}, 50
	}
	if c.samples < 1 || c.churn < 0 || c.interval <= 0 || c.poll <= 0 || c.gap < 0 {
		return fmt.Errorf("-samples must be >= 1, -churn >= 0, -churn-interval and -poll > 0, -gap >= 0")
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: the local cluster's node agent creates network namespaces and a bridge")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeLimit)
	defer cancel()

	b, err := setUp(ctx, c, os.Stderr)
	if err != nil {
		return err
	}
	defer b.tearDown()
	res, err := b.measure(ctx)
	printResults(out, c, res)
	if err != nil && b.ctrl != nil {
		b.logf("controller log (tail):\n%s", b.ctrl.LogTail(16<<10))
	}
	return err
}

package main

// The "client" subcommand: load generators for the cells wrk and h2load
// cannot make (a new TLS connection per request, gRPC, WebSocket). The
// harness runs this same binary pinned to the load CPU, like wrk, and reads
// the one CLIENTRESULT line it prints.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// clientOptions are the flags of "proxybench client".
type clientOptions struct {
	kind     string // tls, grpc-unary, grpc-stream, ws
	addr     string // host:port of the contender
	ca       string // PEM file(s) the TLS client trusts, comma-separated
	tlsVer   string // "1.2" or "1.3"
	resume   bool   // keep a session cache: resumed handshakes
	conns    int    // concurrent connections (tls, ws) or calls (grpc)
	n        int    // stop after this many operations...
	duration time.Duration
	size     int // body, payload or message bytes
	stream   int // messages per server-streaming call
}

func parseClientFlags(args []string) (clientOptions, error) {
	var o clientOptions
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.StringVar(&o.kind, "kind", "", "tls, grpc-unary, grpc-stream or ws")
	fs.StringVar(&o.addr, "addr", "", "host:port to load")
	fs.StringVar(&o.ca, "ca", "", "PEM certificates to trust (tls), comma-separated")
	fs.StringVar(&o.tlsVer, "tls", "1.3", "TLS version: 1.2 or 1.3")
	fs.BoolVar(&o.resume, "resume", false, "resume sessions (tickets) instead of full handshakes")
	fs.IntVar(&o.conns, "conns", 16, "concurrent connections or calls")
	fs.IntVar(&o.n, "n", 100000, "stop after this many operations")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "...or after this long")
	fs.IntVar(&o.size, "size", 1024, "body, payload or message size in bytes")
	fs.IntVar(&o.stream, "stream", 100, "messages per server-streaming call (grpc-stream)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.addr == "" || o.conns < 1 || o.n < 1 || o.duration <= 0 || o.size < 0 || o.stream < 1 {
		return o, errors.New("client: -addr, and positive -conns, -n, -d and -stream are required")
	}
	return o, nil
}

// clientResult is what the client prints: counts of one bounded run and
// its latency percentiles, in microseconds.
type clientResult struct {
	Ops        uint64  `json:"ops"` // handshakes, calls' messages, or WebSocket round trips
	Seconds    float64 `json:"seconds"`
	Bytes      uint64  `json:"bytes"` // body, payload or message bytes received
	Errors     uint64  `json:"errors"`
	BadStatus  uint64  `json:"bad_status"`
	Resumed    uint64  `json:"resumed"` // handshakes that resumed a session (tls)
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	FirstError string  `json:"first_error,omitempty"`
}

const clientResultPrefix = "CLIENTRESULT "

// runClient is main for "proxybench client".
func runClient(args []string) int {
	o, err := parseClientFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench client:", err)
		return 2
	}
	var w worker
	switch o.kind {
	case "tls":
		w, err = newTLSWorker(o)
	case "grpc-unary", "grpc-stream":
		w, err = newGRPCWorker(o)
	case "ws":
		w, err = newWSWorker(o)
	default:
		err = fmt.Errorf("unknown -kind %q", o.kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench client:", err)
		return 1
	}
	defer w.close()
	res := drive(o, w)
	b, _ := json.Marshal(res)
	fmt.Printf("%s%s\n", clientResultPrefix, b)
	return 0
}

// op is one measured operation's outcome.
type op struct {
	ops, bytes uint64 // a streaming call counts its messages
	resumed    bool
	badStatus  bool
}

// worker runs operations for one of o.conns goroutines; id tells it which.
type worker interface {
	do(ctx context.Context, id int) (op, error)
	close()
}

// drive runs w on o.conns goroutines until o.n operations are done or
// o.duration passes, every operation bounded by a 5 s timeout.
func drive(o clientOptions, w worker) clientResult {
	var (
		mu    sync.Mutex
		res   clientResult
		lat   []float64
		count int
	)
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for id := 0; id < o.conns; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if count >= o.n || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				count++
				mu.Unlock()
				octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
				t0 := time.Now()
				r, err := w.do(octx, id)
				d := time.Since(t0)
				ocancel()
				mu.Lock()
				switch {
				case err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
					// cut by the end of the run, not a failure
				case err != nil:
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				case r.badStatus:
					res.BadStatus++
				default:
					res.Ops += r.ops
					res.Bytes += r.bytes
					if r.resumed {
						res.Resumed++
					}
					lat = append(lat, float64(d.Microseconds()))
				}
				mu.Unlock()
				if err != nil && ctx.Err() == nil {
					// a refused or reset connection must not spin
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	slices.Sort(lat)
	res.P50us, res.P99us = percentile(lat, 50), percentile(lat, 99)
	return res
}

// parseClientResult reads the CLIENTRESULT line of the client's output.
func parseClientResult(out []byte) (clientResult, error) {
	for _, line := range strings.Split(string(out), "\n") {
		js, ok := strings.CutPrefix(line, clientResultPrefix)
		if !ok {
			continue
		}
		var r clientResult
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return r, fmt.Errorf("parse client result %q: %w", js, err)
		}
		if r.Seconds <= 0 {
			return r, fmt.Errorf("parse client result %q: zero duration", js)
		}
		return r, nil
	}
	return clientResult{}, fmt.Errorf("parse client output: no %sline in %q", clientResultPrefix, tail(out, 400))
}

// asResult turns a client result into the harness's result, so the
// medians, paired ratios and verdicts of report.go apply unchanged:
// requests are the operations (handshakes, messages), CPU per request is
// CPU per operation.
func (r clientResult) asResult(argv []string) result {
	out := result{
		Requests: r.Ops, Seconds: r.Seconds, P50ms: r.P50us / 1e3, P99ms: r.P99us / 1e3,
		BodyBytes: r.Bytes, Errors: r.Errors, BadStatus: r.BadStatus, Command: strings.Join(argv, " "),
	}
	if r.Seconds > 0 {
		out.RPS = float64(r.Ops) / r.Seconds
	}
	return out
}

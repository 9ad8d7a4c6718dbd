package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/enrich"
	"github.com/false-systems/rauta/internal/observe/export"
	"github.com/false-systems/rauta/internal/observe/join"
)

// tickEvery paces timeouts and counter publication.
const tickEvery = 250 * time.Millisecond

// jsonQueue bounds the JSON lines waiting for stdout (~300 B each).
const jsonQueue = 8192

// clockEvery: the loop looks at the clock once per this many events.
const clockEvery = 64

// Run loads and attaches the kernel programs, and processes events until ctx
// ends. Every link, filter, program and map it made is removed before it
// returns.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (err error) {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("observe config: %w", err)
	}
	mode, _ := capture.ParseMode(cfg.Mode)
	out := cfg.Output
	if out == nil {
		out = os.Stdout
	}

	resolver, err := newResolver(ctx, cfg, logger)
	if err != nil {
		return err
	}

	objs, err := capture.Load(capture.LoadOptions{XDP: mode == capture.ModeXDP, RingBytes: uint32(cfg.RingBytes), WakeupBytes: uint64(cfg.RingWakeupBytes), NoH2: !cfg.HTTP2})
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer func() { err = errors.Join(err, objs.Close()) }()

	sel, _ := cfg.selector() // Validate parsed it
	att := newAttacher(objs, mode, cfg.Netns, sel, cfg.MaxInterfaces, logger)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	defer func() {
		// The watcher stops before the attachments go, so that it cannot
		// attach again behind the teardown.
		stopWatch()
		<-watchDone
		err = errors.Join(err, att.closeAll())
	}()
	if aerr := att.attachAll(); aerr != nil {
		close(watchDone)
		return fmt.Errorf("observe: %w", aerr)
	}
	go func() {
		defer close(watchDone)
		att.watch(watchCtx)
	}()

	rd, err := capture.NewReader(objs.Events)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer rd.Close()

	box := &counterBox{ifaces: att.stats}
	counters := box.load
	opts := pipelineOptions{cfg: cfg, resolver: resolver, box: box, ifaces: att.stats}
	// Before the metrics listener: a caller that waits for it finds the
	// libraries probed.
	if cfg.TLS.Enabled {
		src, stopTLS, terr := startTLS(ctx, cfg.TLS, logger)
		if terr != nil {
			return fmt.Errorf("observe: %w", terr)
		}
		opts.tls = src
		// Runs after the loop returned (Run waits for it).
		defer func() { err = errors.Join(err, stopTLS()) }()
	}
	if cfg.JSONEvents || cfg.JSONExchanges {
		j := export.NewAsyncJSON(out, jsonQueue)
		opts.json = j
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if cerr := j.Close(sctx); cerr != nil {
				logger.Warn("json output", "err", cerr, "dropped", j.Dropped())
			}
		}()
	}

	if len(cfg.GatewayAdmin) > 0 {
		opts.join = join.New(cfg.Join, export.DurationBuckets)
		var polls sync.WaitGroup
		pollCtx, stopPolls := context.WithCancel(ctx)
		defer func() { stopPolls(); polls.Wait() }()
		if gatewayNetnsPattern(cfg.GatewayNetns) {
			do := join.DiscoverOptions{Pattern: cfg.GatewayNetns, URLs: cfg.GatewayAdmin, Interval: cfg.JoinPollInterval,
				Limit: joinPageLimit, Rescan: cfg.GatewayNetnsRescan, MaxNamespaces: cfg.GatewayNetnsMax}
			polls.Go(func() { join.Discover(pollCtx, do, opts.join, logger) })
		} else {
			for _, u := range cfg.GatewayAdmin {
				po := join.PollOptions{URL: u, Netns: cfg.GatewayNetns, Interval: cfg.JoinPollInterval, Limit: joinPageLimit}
				polls.Go(func() { join.Poll(pollCtx, po, opts.join, logger) })
			}
		}
		logger.Info("joining gateway timing records", "gateways", cfg.GatewayAdmin, "netns", cfg.GatewayNetns)
	}

	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" && cfg.MetricsAddr != "off" {
		opts.prom = export.NewProm(counters)
		ln, lerr := net.Listen("tcp", cfg.MetricsAddr)
		if lerr != nil {
			return fmt.Errorf("observe: metrics listener %s: %w", cfg.MetricsAddr, lerr)
		}
		if ap, perr := netip.ParseAddrPort(ln.Addr().String()); perr == nil {
			opts.own = newOwnAddrs(ap, nil)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", opts.prom.Handler())
		if opts.join != nil {
			opts.prom.Registry().MustRegister(opts.join)
			mux.HandleFunc("GET /debug/requests/{id}", joinLookup(opts.join))
		}
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if serr := metricsSrv.Serve(ln); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "err", serr)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = metricsSrv.Shutdown(sctx)
		}()
		logger.Info("metrics listening", "addr", ln.Addr().String())
	}
	if cfg.OTLPEndpoint != "" {
		o, oerr := export.NewOTLP(export.OTLPOptions{Endpoint: cfg.OTLPEndpoint, Interval: cfg.OTLPInterval, NodeName: cfg.NodeName}, counters)
		if oerr != nil {
			return fmt.Errorf("observe: %w", oerr)
		}
		opts.otlp = o
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if serr := o.Shutdown(sctx); serr != nil {
				logger.Warn("otlp shutdown", "err", serr)
			}
		}()
	}
	if cfg.OTLPEndpoint != "" && cfg.Traces {
		tr, terr := export.NewTracer(export.TraceOptions{
			Endpoint: cfg.OTLPEndpoint, SampleRatio: cfg.TraceSampleRatio, QueueSize: cfg.TraceQueueSize, NodeName: cfg.NodeName,
		})
		if terr != nil {
			return fmt.Errorf("observe: %w", terr)
		}
		opts.traces, box.spans = tr, tr
		// Deferred after the pipeline's loop has returned: what it queued
		// is sent within the shutdown timeout.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if cerr := tr.Close(sctx); cerr != nil {
				logger.Warn("span export shutdown", "err", cerr)
			}
		}()
	}
	p := newPipeline(ctx, opts)

	// Close the reader when ctx ends so the blocking read returns.
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()

	// The reader gets its own thread so that its priority can be lowered
	// without touching the rest of the process (the metrics server keeps
	// its own). The goroutine never unlocks it: the thread exits with the
	// goroutine instead of going back to the pool with a changed nice.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if cfg.ReaderNice != 0 {
			if err := setThreadNice(cfg.ReaderNice); err != nil {
				logger.Warn("reader priority unchanged", "nice", cfg.ReaderNice, "err", err)
			}
		}
		errc <- loop(ctx, rd, objs, p, cfg.PollInterval, mode == capture.ModeXDP, logger)
	}()
	return <-errc
}

// setThreadNice sets the nice value of the calling thread only: on Linux
// setpriority(PRIO_PROCESS, tid) acts on one thread.
func setThreadNice(nice int) error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		return fmt.Errorf("setpriority %d: %w", nice, err)
	}
	return nil
}

// loop reads until the reader is closed. The kernel wakes the reader only
// in batches (RingWakeupBytes), so it also polls every pollEvery.
func loop(ctx context.Context, rd *capture.Reader, objs *capture.Objects, p *pipeline, pollEvery time.Duration, xdp bool, logger *slog.Logger) error {
	warnedOneWay := false
	var ev capture.Event
	now := time.Now()
	nextTick := now.Add(tickEvery)
	rd.SetDeadline(now.Add(pollEvery))
	for n := uint(1); ; n++ {
		err := rd.Next(&ev)
		switch {
		case err == nil:
			p.handle(&ev)
			// Reading the clock after every event was a tenth of this
			// loop's CPU; every clockEvery-th event, and every poll
			// timeout, is often enough for a 250 ms tick.
			if n%clockEvery != 0 {
				continue
			}
		case errors.Is(err, capture.ErrTimeout):
			p.drainTLS()
			rd.SetDeadline(time.Now().Add(pollEvery))
		case errors.Is(err, capture.ErrClosed) || ctx.Err() != nil:
			// Closing the reader is how ctx ending stops the loop.
			tickOnce(rd, objs, p, logger)
			return nil //nolint:nilerr // a closed reader is the normal stop
		default:
			return fmt.Errorf("observe: read ring buffer: %w", err)
		}
		if now := time.Now(); !now.Before(nextTick) {
			tickOnce(rd, objs, p, logger)
			nextTick = now.Add(tickEvery)
			if xdp && !warnedOneWay && p.oneWay() {
				warnedOneWay = true
				logger.Error("XDP mode sees traffic in one direction only: XDP hooks only packets entering an interface, so these interfaces carry requests or responses into the host, not both, and exchanges end as timeouts; use -mode tc, or xdp on every interface both directions enter")
			}
		}
	}
}

func tickOnce(rd *capture.Reader, objs *capture.Objects, p *pipeline, logger *slog.Logger) {
	ks, err := objs.ReadStats()
	if err != nil {
		logger.Warn("read kernel counters", "err", err)
	}
	p.tick(monoNow(), ks, rd.Malformed())
}

func newResolver(ctx context.Context, cfg Config, logger *slog.Logger) (enrich.Resolver, error) {
	if cfg.EnrichFile != "" {
		s, err := enrich.LoadStatic(cfg.EnrichFile)
		if err != nil {
			return nil, fmt.Errorf("observe: %w", err)
		}
		return s, nil
	}
	if cfg.Kube == "off" {
		return enrich.None{}, nil
	}
	client, err := kubeClient(cfg.Kubeconfig)
	if err != nil {
		if cfg.Kube == "on" {
			return nil, fmt.Errorf("observe: kubernetes enrichment: %w", err)
		}
		logger.Info("no kubernetes API reachable, enrichment off", "reason", err)
		return enrich.None{}, nil
	}
	syncCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	k, err := enrich.NewKube(ctx, client, enrich.KubeOptions{NodeName: cfg.NodeName, Resync: 10 * time.Minute, SyncContext: syncCtx})
	if err != nil {
		return nil, fmt.Errorf("observe: kubernetes enrichment: %w", err)
	}
	return k, nil
}

// joinPageLimit is the most timing records fetched from a gateway at once
// (its admin port caps a page at 10,000).
const joinPageLimit = 5000

// joinLookup serves the joined breakdown of one request ID.
func joinLookup(j *join.Joiner) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := j.Lookup(r.PathValue("id"))
		if !ok {
			http.Error(w, "request id not joined (yet), or no longer among the kept results", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(b)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

type runningObserver struct {
	cancel  context.CancelFunc
	done    chan error
	metrics string
	start   time.Time
	cpu0    time.Duration
	pairing *pairingCheck // -check-pairing: the observer's JSON exchanges
}

type observerStats struct {
	kernelEvents, ringDropped, exchanges, evictedPending int64
	eventsPerSec, exchangesPerSec                        float64
	cpuPercent                                           float64
	// -check-pairing: exchanges written, those whose status is not the
	// one their target asked for, and those that could not be judged.
	checked, misPaired, unjudged int64
}

func startObserver(ctx context.Context, n *netSetup, bo benchOptions) (*runningObserver, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := observe.Defaults()
	cfg.Interfaces = []string{n.serverIf}
	cfg.Netns = "/var/run/netns/" + n.server
	cfg.Mode = bo.mode
	cfg.ReaderNice = bo.readerNice
	if bo.pollInterval > 0 {
		cfg.PollInterval = bo.pollInterval
	}
	cfg.Kube = "off"
	cfg.MetricsAddr = addr
	cfg.Output = io.Discard // events are still encoded, as on stdout
	ctx, cancel := context.WithCancel(ctx)
	o := &runningObserver{cancel: cancel, done: make(chan error, 1), metrics: "http://" + addr + "/metrics"}
	if bo.checkPairing {
		o.pairing = &pairingCheck{}
		cfg.JSONExchanges = true
		cfg.Output = o.pairing
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { o.done <- observe.Run(ctx, cfg, logger) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-o.done:
			cancel()
			return nil, fmt.Errorf("observer: %w", err)
		default:
		}
		if res, err := http.Get(o.metrics); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, fmt.Errorf("observer did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.start, o.cpu0 = time.Now(), selfCPU()
	return o, nil
}

func (o *runningObserver) stats() (observerStats, error) {
	elapsed := time.Since(o.start)
	cpu := selfCPU() - o.cpu0
	res, err := http.Get(o.metrics)
	if err != nil {
		return observerStats{}, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	val := func(name string) int64 {
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+" ") {
				v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				return int64(v)
			}
		}
		return 0
	}
	s := observerStats{
		kernelEvents:   val("rauta_observer_kernel_events_total"),
		ringDropped:    val("rauta_observer_ringbuf_dropped_total"),
		exchanges:      val("rauta_observer_exchanges_total"),
		evictedPending: val("rauta_observer_evicted_requests_total"),
		cpuPercent:     float64(cpu) / float64(elapsed) * 100,
	}
	if o.pairing != nil {
		s.checked, s.misPaired, s.unjudged = o.pairing.counts()
	}
	s.eventsPerSec = float64(s.kernelEvents) / elapsed.Seconds()
	s.exchangesPerSec = float64(s.exchanges) / elapsed.Seconds()
	return s, nil
}

func (o *runningObserver) stop() {
	o.cancel()
	if err := <-o.done; err != nil {
		fmt.Fprintln(os.Stderr, "observer:", err)
	}
}

package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/false-systems/rauta/internal/admin"
)

// Run serves until ctx ends, then stops without losing requests, in the
// order a load balancer or a Kubernetes Service needs:
//
//  1. /readyz answers 503 at once (/healthz stays 200), so the endpoint is
//     taken out of rotation;
//  2. for DrainPeriod, the listeners keep accepting and serving while
//     clients are told to go elsewhere (proxy.Server.Drain: Connection:
//     close, idle keep-alive connections closed, HTTP/2 GOAWAY); the
//     providers in also keep applying configuration;
//  3. the listeners close, and in-flight requests have up to
//     ShutdownTimeout to finish before what is left is closed;
//  4. the admin endpoints stop last, so probes and metrics answer until
//     the end.
//
// Each of also runs alongside with a context that ends at step 3; one
// returning an error ends the Gateway at once (no drain period) and Run
// returns that error.
func (g *Gateway) Run(ctx context.Context, also ...func(context.Context) error) error {
	var (
		once     sync.Once
		firstErr error
		failed   = make(chan struct{})
	)
	fail := func(err error) {
		if err != nil {
			once.Do(func() { firstErr = err; close(failed) })
		}
	}
	// Each stage's context ends only when Run says so, not with ctx.
	base := context.WithoutCancel(ctx)
	provCtx, stopProviders := context.WithCancel(base)
	pxCtx, stopProxy := context.WithCancel(base)
	admCtx, stopAdmin := context.WithCancel(base)
	defer stopProviders()
	defer stopProxy()
	defer stopAdmin()

	var providers, admins sync.WaitGroup
	for _, f := range also {
		providers.Go(func() { fail(f(provCtx)) })
	}
	providers.Go(func() { g.retryBinds(provCtx) })
	for _, s := range g.adminServers() {
		admins.Go(func() { fail(s.Run(admCtx)) })
	}
	pxDone := make(chan struct{})
	go func() { fail(g.px.Run(pxCtx)); close(pxDone) }()

	var start time.Time
	select {
	case <-failed:
	case <-ctx.Done():
		start = time.Now()
		g.drain(failed)
	}
	stopProviders()
	stopProxy()
	<-pxDone
	providers.Wait()
	stopAdmin()
	admins.Wait()
	if !start.IsZero() {
		g.logger.Info("shutdown complete", "took", time.Since(start).Round(time.Millisecond).String(),
			"connections_left", g.px.Cut())
	}
	return firstErr
}

// drain runs step 1 and 2 of Run: not ready, clients told to go, for
// DrainPeriod or until a component fails.
func (g *Gateway) drain(failed <-chan struct{}) {
	g.draining.Store(true)
	g.px.Drain()
	g.logger.Info("draining: /readyz answers 503, clients are told to reconnect elsewhere",
		"drain_period", g.opts.DrainPeriod.String(), "shutdown_timeout", g.shutdownTimeout().String(),
		"connections", g.px.Conns())
	if g.opts.DrainPeriod <= 0 {
		return
	}
	t := time.NewTimer(g.opts.DrainPeriod)
	defer t.Stop()
	select {
	case <-t.C:
	case <-failed:
	}
}

func (g *Gateway) shutdownTimeout() time.Duration {
	if g.opts.ShutdownTimeout > 0 {
		return g.opts.ShutdownTimeout
	}
	return 15 * time.Second // the proxy's default
}

func (g *Gateway) adminServers() []*admin.Server {
	s := []*admin.Server{g.adm}
	if g.probes != nil {
		s = append(s, g.probes)
	}
	return s
}

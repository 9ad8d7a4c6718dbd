package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/false-systems/rauta/test/integration/harness"
)

// churnResult counts requests during the churn phase. A new route's prober
// expects 404 until the first 200 and 200 after it; the steady prober
// expects 200 from routes that were already serving.
type churnResult struct {
	added                 int
	newRequests, newBad   int64
	steadyReqs, steadyBad int64
	notReady              int64 // routes that never served within a minute
	badKinds              map[string]int64
	propagation           []time.Duration
	reloads               float64
	took                  time.Duration
}

// afterReady is how long a new route keeps being polled after its first 200.
const afterReady = 20

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

func (b *bench) runChurn(ctx context.Context, steady []string) (*churnResult, error) {
	res := &churnResult{badKinds: make(map[string]int64)}
	var mu sync.Mutex
	bad := func(kind string) {
		mu.Lock()
		res.badKinds[kind]++
		mu.Unlock()
	}
	reloads := func() float64 {
		if b.ctrl == nil {
			return 0 // -deployed: the data planes' reloads are not scraped
		}
		v, _ := b.ctrl.Metric(ctx, "rauta_config_reloads_total")
		return v
	}
	reloadsBefore := reloads()

	loadCtx, stopLoad := context.WithCancel(ctx)
	var steadyReqs, steadyBad atomic.Int64
	var loadDone sync.WaitGroup
	if len(steady) > 0 {
		loadDone.Go(func() {
			c := harness.NewClient(time.Second)
			for i := 0; loadCtx.Err() == nil; i++ {
				r, err := harness.Get(loadCtx, c, b.addr, hostOf(steady[i%len(steady)]), "/")
				if loadCtx.Err() != nil {
					return
				}
				steadyReqs.Add(1)
				if k := classify(r, err, true); k != "" {
					steadyBad.Add(1)
					bad("steady: " + k)
				}
				time.Sleep(b.cfg.poll)
			}
		})
	}

	start := time.Now()
	var probes sync.WaitGroup
	var newReqs, newBad, notReady atomic.Int64
	var createErr error
	tick := time.NewTicker(b.cfg.interval)
	for i := range b.cfg.churn {
		name := fmt.Sprintf("churn-%d", i)
		created := make(chan time.Time, 1)
		probes.Go(func() {
			n, nb, d, ok := b.probeNew(ctx, hostOf(name), created, bad)
			newReqs.Add(n)
			newBad.Add(nb)
			if !ok {
				notReady.Add(1)
				return
			}
			mu.Lock()
			res.propagation = append(res.propagation, d)
			mu.Unlock()
		})
		t0 := time.Now()
		if err := b.cl.Create(ctx, newRoute(name)); err != nil {
			createErr = fmt.Errorf("create route %s: %w", name, err)
			close(created)
			break
		}
		created <- t0
		res.added++
		if i%100 == 99 {
			b.logf("churn: %d routes added", i+1)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	tick.Stop()
	probes.Wait()
	res.took = time.Since(start)
	stopLoad()
	loadDone.Wait()
	res.newRequests, res.newBad, res.notReady = newReqs.Load(), newBad.Load(), notReady.Load()
	res.steadyReqs, res.steadyBad = steadyReqs.Load(), steadyBad.Load()
	res.reloads = reloads() - reloadsBefore
	return res, errors.Join(createErr, ctx.Err())
}

// probeNew polls a new route every cfg.poll from just before it is created:
// 404 is fine until the first 200, after which only 200 is. It returns the
// requests sent, how many broke that rule, and the time from the create
// call to the first 200.
func (b *bench) probeNew(ctx context.Context, host string, created <-chan time.Time, bad func(string)) (n, nbad int64, took time.Duration, ready bool) {
	c := harness.NewClient(time.Second)
	var t0 time.Time
	after := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
		if t0.IsZero() {
			select {
			case t, ok := <-created:
				if !ok {
					return n, nbad, 0, false
				}
				t0 = t
			default:
			}
		}
		r, err := harness.Get(ctx, c, b.addr, host, "/")
		if ctx.Err() != nil {
			break
		}
		n++
		if k := classify(r, err, ready); k != "" {
			nbad++
			bad("new: " + k)
		} else if r.Status == 200 && !ready {
			if t0.IsZero() { // served before the create call returned to us
				t0 = <-created
			}
			ready, took = true, time.Since(t0)
		}
		if ready {
			if after++; after > afterReady {
				return n, nbad, took, true
			}
		}
		time.Sleep(b.cfg.poll)
	}
	return n, nbad, took, ready
}

// classify names what is wrong with a reply, or returns "" when it is what
// gateway-api-bench expects: 404 or 200 before the route is ready, 200 after.
func classify(r harness.Reply, err error, ready bool) string {
	switch {
	case err != nil:
		return "transport error"
	case r.Status == 200:
		return ""
	case r.Status == 404 && !ready:
		return ""
	case r.Status == 404:
		return "404 after 200"
	default:
		return fmt.Sprintf("status %d", r.Status)
	}
}

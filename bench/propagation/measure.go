package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/test/integration/harness"
)

// levelResult is the apply-to-first-200 time of each sample at one level.
type levelResult struct {
	present  int
	samples  []time.Duration
	timeouts int
	settle   time.Duration // how long the level's routes took to be served and get status
}

type results struct {
	levels []levelResult
	churn  *churnResult
}

func hostOf(name string) string { return name + ".bench.example" }

func newRoute(name string) *gwv1.HTTPRoute {
	port := gwv1.PortNumber(8080)
	section := gwv1.SectionName("http")
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw", SectionName: &section}}},
			Hostnames:       []gwv1.Hostname{gwv1.Hostname(hostOf(name))},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: &port},
			}}}}},
		},
	}
}

func (b *bench) measure(ctx context.Context) (results, error) {
	var res results
	var fillers []string
	for _, level := range b.cfg.levels {
		start := time.Now()
		for len(fillers) < level {
			fillers = append(fillers, fmt.Sprintf("filler-%d", len(fillers)))
		}
		b.logf("level %d: creating routes", level)
		if err := b.createAll(ctx, fillers); err != nil {
			return res, err
		}
		// In -follower mode status comes from another replica, slowly
		// (see docs/controller.md): wait for traffic only.
		wantStatus := len(fillers)
		if b.cfg.follower {
			wantStatus = 0
		}
		if err := b.settle(ctx, fillers[len(fillers)-1], wantStatus); err != nil {
			return res, fmt.Errorf("level %d: %w", level, err)
		}
		lr := levelResult{present: level, settle: time.Since(start)}
		b.logf("level %d: settled in %s; timing %d routes", level, lr.settle.Round(time.Millisecond), b.cfg.samples)
		for i := range b.cfg.samples {
			d, err := b.timeOne(ctx, fmt.Sprintf("probe-%d-%d", level, i))
			if err != nil {
				return res, err
			}
			if d < 0 {
				lr.timeouts++
				continue
			}
			lr.samples = append(lr.samples, d)
		}
		res.levels = append(res.levels, lr)
	}
	if b.cfg.churn > 0 {
		b.logf("churn: adding %d routes, one every %s, under load", b.cfg.churn, b.cfg.interval)
		c, err := b.runChurn(ctx, fillers)
		res.churn = c
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// createAll creates the routes that do not exist yet, a few at a time.
func (b *bench) createAll(ctx context.Context, names []string) error {
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for name := range work {
				if err := b.cl.Create(ctx, newRoute(name)); err != nil && !isAlreadyExists(err) {
					errs <- fmt.Errorf("create route %s: %w", name, err)
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

// settle waits until the last route serves and every route in the
// namespace carries status for its current generation: a level is measured
// on a quiet controller.
func (b *bench) settle(ctx context.Context, last string, want int) error {
	c := harness.NewClient(time.Second)
	deadline := time.Now().Add(6 * time.Minute)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done := 0
		served := false
		if r, err := harness.Get(ctx, c, b.addr, hostOf(last), "/"); err == nil && r.Status == 200 {
			served = true
			var list gwv1.HTTPRouteList
			if err := b.cl.List(ctx, &list, client.InNamespace(namespace)); err == nil {
				for _, r := range list.Items {
					if hasStatus(&r) {
						done++
					}
				}
			}
		}
		if served && done >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d routes not settled within 6 minutes (%d with status)", want, done)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func hasStatus(r *gwv1.HTTPRoute) bool {
	for _, p := range r.Status.Parents {
		if p.ControllerName == controllerName {
			for _, c := range p.Conditions {
				if c.Type == "Accepted" && c.ObservedGeneration == r.Generation {
					return true
				}
			}
		}
	}
	return false
}

// timeOne waits cfg.gap, creates a route and returns the time from the
// create call to the first 200 through the gateway (-1 after 60 s), then
// deletes the route and waits until it is gone from the gateway, so the
// level stays as it is.
func (b *bench) timeOne(ctx context.Context, name string) (time.Duration, error) {
	c := harness.NewClient(time.Second)
	host := hostOf(name)
	time.Sleep(b.cfg.gap)
	// Polling starts with the create call, not after it returns: the API
	// server sends the watch event before its response, so the route can
	// be served before the call returns, and a first poll only after it
	// would add the call's tail to the sample.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	start := time.Now()
	first := make(chan time.Duration, 1)
	go func() {
		took := time.Duration(-1)
		for time.Since(start) < time.Minute && pollCtx.Err() == nil {
			if r, err := harness.Get(pollCtx, c, b.addr, host, "/"); err == nil && r.Status == 200 {
				took = time.Since(start)
				break
			}
			time.Sleep(b.cfg.poll)
		}
		first <- took
	}()
	if err := b.cl.Create(ctx, newRoute(name)); err != nil {
		stopPolling()
		<-first
		return 0, fmt.Errorf("create route %s: %w", name, err)
	}
	created := time.Now()
	took := <-first
	// With -keep-logs, the timeline of each sample, to set beside the
	// controller's and data plane's logs.
	if b.cfg.keepLogs {
		b.logf("sample %s: create sent %s, returned +%s, first 200 +%s", name,
			start.UTC().Format("15:04:05.000000"), created.Sub(start).Round(10*time.Microsecond), took.Round(10*time.Microsecond))
	}
	if err := b.cl.Delete(ctx, newRoute(name)); err != nil {
		return 0, fmt.Errorf("delete route %s: %w", name, err)
	}
	gone := time.Now()
	for time.Since(gone) < time.Minute && ctx.Err() == nil {
		if r, err := harness.Get(ctx, c, b.addr, host, "/"); err == nil && r.Status == 404 {
			return took, nil
		}
		time.Sleep(b.cfg.poll)
	}
	return 0, fmt.Errorf("deleted route %s still served after a minute", name)
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

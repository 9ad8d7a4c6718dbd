package gateway

import (
	"context"
	"maps"
	"time"

	"github.com/false-systems/rauta/internal/proxy"
)

// bindRetry is how often Run tries again to bind the listeners that could
// not be bound: a port held by a process that is stopping (the previous
// pod of a hostNetwork DaemonSet, a restarted process) frees up without
// any configuration change that would bring an Apply.
const bindRetry = 5 * time.Second

// retryBinds re-applies the served configuration every g.bindRetry while a
// listener of it is unbound, until ctx ends or the drain begins.
func (g *Gateway) retryBinds(ctx context.Context) {
	t := time.NewTicker(g.bindRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.draining.Load() {
			return
		}
		if now, changed := g.retryBindsOnce(); changed {
			g.logger.Info("listener bound on retry", "unbound", len(now))
			if f := g.opts.BindFailuresChanged; f != nil {
				f(now)
			}
		}
	}
}

// retryBindsOnce applies the served configuration again if a listener of
// it is unbound, and reports the unbound listeners when they changed.
func (g *Gateway) retryBindsOnce() (map[string]error, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	before := g.unbound.Load()
	if g.unboundSnap == nil || before == nil || len(*before) == 0 {
		return nil, false
	}
	err := g.px.Apply(g.unboundSnap)
	bindErrs := proxy.BindErrors(err)
	if err != nil && len(bindErrs) == 0 {
		return nil, false // compiled before; a stopped proxy refuses it
	}
	now := g.setUnbound(bindErrs)
	if len(now) == 0 {
		g.unboundSnap = nil
	}
	changed := len(now) != len(*before)
	for name := range now {
		if _, ok := (*before)[name]; !ok {
			changed = true
		}
	}
	return maps.Clone(now), changed
}

package observe

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const (
	// resyncEvery: a full reconciliation this often, in case a netlink
	// notification was lost (netlink drops them under load).
	resyncEvery = 10 * time.Second
	// settleAfter: notifications come in bursts (a pod's veth is created,
	// moved, renamed, addressed, routed, set up); one reconciliation runs
	// this long after the first, so at most 10 a second whatever the
	// churn. Each lists the namespace's links (and routes).
	settleAfter = 100 * time.Millisecond
)

// watch follows link (and, when selection depends on them, route) changes
// in the observed namespace until ctx ends.
func (a *attacher) watch(ctx context.Context) {
	var ns *netns.NsHandle
	if a.netns != "" {
		h, err := netns.GetFromPath(a.netns)
		if err != nil {
			a.logger.Error("interface watch off: cannot open the network namespace", "netns", a.netns, "err", err)
			return
		}
		defer h.Close()
		ns = &h
	}
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		done := make(chan struct{})
		// Closing done makes the subscriptions' pending reads fail; that
		// is not worth a warning.
		var closing atomic.Bool
		warn := func(what string) func(error) {
			return func(err error) {
				if !closing.Load() {
					a.logger.Warn(what, "err", err)
				}
			}
		}
		links := make(chan netlink.LinkUpdate, 256)
		err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
			Namespace:     ns,
			ErrorCallback: warn("interface watch"),
		})
		if err != nil {
			a.logger.Warn("interface watch: subscribe failed, resyncing every 10s only", "err", err)
			links = nil
		}
		var routes chan netlink.RouteUpdate
		if links != nil && a.sel.needsRoutes() {
			routes = make(chan netlink.RouteUpdate, 256)
			err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{
				Namespace:     ns,
				ErrorCallback: warn("route watch"),
			})
			if err != nil {
				a.logger.Warn("route watch: subscribe failed, routes are seen at the 10s resync only", "err", err)
				routes = nil
			}
		}
		// Whatever happened before the subscription, see it now.
		a.resync()
		a.follow(ctx, links, routes, tick.C)
		closing.Store(true)
		close(done)
	}
}

// follow handles updates until ctx ends or a subscription breaks.
func (a *attacher) follow(ctx context.Context, links <-chan netlink.LinkUpdate, routes <-chan netlink.RouteUpdate, resync <-chan time.Time) {
	settle := time.NewTimer(settleAfter)
	settle.Stop()
	defer settle.Stop()
	dirty := false
	mark := func() {
		if !dirty {
			dirty = true
			settle.Reset(settleAfter)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync:
			a.resync()
			if links == nil {
				return // try subscribing again
			}
		case <-settle.C:
			dirty = false
			a.resync()
		case u, ok := <-links:
			if !ok {
				return
			}
			if u.Link != nil && a.linkMatters(u.Link.Attrs().Name, int(u.Index)) {
				mark()
			}
		case u, ok := <-routes:
			if !ok {
				return
			}
			if a.routeMatters(&u.Route) {
				mark()
			}
		}
	}
}

// linkMatters: with discovery any link may become selected; with names
// only, a configured name or an attached link.
func (a *attacher) linkMatters(name string, idx int) bool {
	return a.sel.discovers() || a.sel.named(name) || a.attachedIndex(idx)
}

// routeMatters: a default route (uplinks change) or, with pod CIDRs, a
// route into one. Other route churn (a BGP full table) is ignored.
func (a *attacher) routeMatters(r *netlink.Route) bool {
	dst, def := routeDst(r.Dst)
	if def {
		return a.sel.auto
	}
	return dst.IsValid() && a.sel.anyInPods([]netip.Prefix{dst})
}

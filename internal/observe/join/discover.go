package join

import (
	"context"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Gateways in pods: a data-plane pod's admin port listens on the pod's
// own loopback, in a network namespace the container runtime pins under a
// name it chooses (containerd: /var/run/netns/cni-<id>), one per Gateway
// replica, coming and going. Discover finds them by a glob pattern over
// namespace paths: every Rescan it polls the admin URLs from inside each
// matching namespace that has no poller. A poller probes: in a namespace
// without a gateway its first fetch fails (connection refused) and it
// returns, quietly; where a gateway answers it keeps polling until a
// fetch fails (the pod went away, or restarts), and the next scan starts
// it again from the cursor it reached, so no record is offered twice.
//
// Trust: whatever answers on the admin URL in a matching namespace is
// taken for a gateway. Its records can only join exchanges the kernel
// saw; the label values they bring are bounded (Config.MaxGateways).

// DiscoverOptions say which namespaces and URLs are polled.
type DiscoverOptions struct {
	// Pattern is a filepath.Match pattern of network namespace paths,
	// e.g. /var/run/netns/cni-*.
	Pattern string
	URLs    []string
	// Interval and Limit are each poller's (PollOptions).
	Interval time.Duration
	Limit    int
	// Rescan is how often the pattern is matched again and pollers that
	// returned are restarted.
	Rescan time.Duration
	// MaxNamespaces bounds the namespaces polled at once; further ones
	// wait for a scan with room (counted in Skipped).
	MaxNamespaces int
}

type pollKey struct{ netns, url string }

type pollExit struct {
	key   pollKey
	after uint64
}

// Discover runs until ctx ends and its pollers have returned.
func Discover(ctx context.Context, o DiscoverOptions, j *Joiner, logger *slog.Logger) {
	d := discovery{o: o, j: j, logger: logger,
		running: map[pollKey]bool{}, cursors: map[pollKey]uint64{},
		exits: make(chan pollExit, max(o.MaxNamespaces, 1)*max(len(o.URLs), 1))}
	defer d.wg.Wait()
	d.scan(ctx)
	tick := time.NewTicker(o.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-d.exits:
			delete(d.running, e.key)
			d.cursors[e.key] = e.after
		case <-tick.C:
			d.scan(ctx)
		}
	}
}

type discovery struct {
	o       DiscoverOptions
	j       *Joiner
	logger  *slog.Logger
	wg      sync.WaitGroup
	running map[pollKey]bool
	// cursors: where each namespace's gateway was left; dropped with the
	// namespace, so at most one per matching path and URL.
	cursors map[pollKey]uint64
	// exits holds one slot per poller that can run at once, so a
	// returning poller never waits.
	exits chan pollExit
}

func (d *discovery) scan(ctx context.Context) {
	paths, err := filepath.Glob(d.o.Pattern)
	if err != nil { // the pattern was checked at start
		d.logger.Error("gateway namespaces", "pattern", d.o.Pattern, "err", err)
		return
	}
	sort.Strings(paths)
	matched := make(map[string]bool, len(paths))
	for _, p := range paths {
		matched[p] = true
	}
	for k := range d.cursors {
		if !matched[k.netns] && !d.running[k] {
			delete(d.cursors, k)
		}
	}
	namespaces := map[string]bool{}
	for k := range d.running {
		namespaces[k.netns] = true
	}
	for _, p := range paths {
		for _, u := range d.o.URLs {
			k := pollKey{p, u}
			if d.running[k] {
				continue
			}
			if !namespaces[p] && len(namespaces) >= d.o.MaxNamespaces {
				d.j.skipped.Add(1)
				continue
			}
			namespaces[p] = true
			d.running[k] = true
			po := PollOptions{URL: u, Netns: p, Interval: d.o.Interval, Limit: d.o.Limit, After: d.cursors[k], Probe: true}
			d.wg.Go(func() {
				d.exits <- pollExit{k, Poll(ctx, po, d.j, d.logger)}
			})
		}
	}
}

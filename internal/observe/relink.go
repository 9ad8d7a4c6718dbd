package observe

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/false-systems/rauta/internal/observe/capture"
)

// attacher keeps the selected interfaces attached. Selection (selector.go)
// is by exact name, glob pattern or auto; the attacher compares it with
// what is attached, by ifindex, on every link change it is told of
// (watch.go) and on a periodic resync:
//
//   - a selected link without our programs is attached (a pod's new veth,
//     or a named interface deleted and created again under a new ifindex);
//   - an attachment whose link is gone is closed and forgotten, and the
//     pipeline is told to release the connections captured on it;
//   - an attachment whose link is no longer selected (renamed, now holding
//     the default route, out of the pod CIDR) is detached;
//   - at most limit links are attached; past it a selected link is logged
//     once and counted, and attached when room is made.
//
// Ifindexes are not reused by the kernel while it has fresh ones (6.x
// allocates them cyclically), so an ifindex names one link for the life
// of an attachment.
type attacher struct {
	objs   *capture.Objects
	mode   capture.Mode
	netns  string
	sel    *ifaceSelector
	limit  int
	logger *slog.Logger

	mu      sync.Mutex
	atts    map[int]*capture.Attachment // by ifindex
	refused map[int]bool                // over the cap: logged and counted once
	failed  map[int]bool                // attach failed: logged once, retried
	// named are the exact names attached before: attaching one again is a
	// re-attachment (bounded by the configured list).
	named map[string]bool

	stats *ifaceStats
}

func newAttacher(objs *capture.Objects, mode capture.Mode, netnsPath string, sel *ifaceSelector, limit int, logger *slog.Logger) *attacher {
	return &attacher{
		objs: objs, mode: mode, netns: netnsPath, sel: sel, limit: limit, logger: logger,
		atts: make(map[int]*capture.Attachment), refused: make(map[int]bool), failed: make(map[int]bool),
		named: make(map[string]bool), stats: &ifaceStats{},
	}
}

// handle opens netlink in the observed namespace.
func (a *attacher) handle() (*netlink.Handle, error) {
	if a.netns == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(a.netns)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %q: %w", a.netns, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// attachAll is the first reconciliation. A named interface that is
// missing or cannot be attached is a configuration error; discovered ones
// that fail are retried later.
func (a *attacher) attachAll() error {
	h, err := a.handle()
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	defer h.Close()
	links, err := listLinks(h, a.sel.needsRoutes())
	if err != nil {
		return err
	}
	for _, name := range a.sel.names {
		found := false
		for i := range links {
			found = found || links[i].Name == name
		}
		if !found {
			return fmt.Errorf("interface %q: not found in the observed network namespace", name)
		}
	}
	if err := a.apply(links, true); err != nil {
		return err
	}
	if a.sel.discovers() {
		a.mu.Lock()
		n := len(a.atts)
		a.mu.Unlock()
		a.logger.Info("interface discovery on", "auto", a.sel.auto, "patterns", a.sel.patterns, "pod_cidrs", a.sel.podCIDRs, "attached", n, "max_interfaces", a.limit)
	}
	return nil
}

// resync reconciles with the links as they are now.
func (a *attacher) resync() {
	h, err := a.handle()
	if err != nil {
		a.logger.Warn("interface resync", "err", err)
		return
	}
	defer h.Close()
	links, err := listLinks(h, a.sel.needsRoutes())
	if err != nil {
		a.logger.Warn("interface resync", "err", err)
		return
	}
	_ = a.apply(links, false)
}

// apply carries out the plan for links. At start a failure on a named
// interface is returned.
func (a *attacher) apply(links []linkDesc, start bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	attached := make(map[int]bool, len(a.atts))
	for idx := range a.atts {
		attached[idx] = true
	}
	p := a.sel.plan(links, attached, a.limit)
	present := make(map[int]bool, len(links))
	for i := range links {
		present[links[i].Index] = true
	}
	for _, idx := range p.detach {
		a.detach(idx, !present[idx])
	}
	var errs []error
	for i := range p.attach {
		if err := a.attach(&p.attach[i], start); err != nil {
			errs = append(errs, err)
		}
	}
	over := make(map[int]bool, len(p.refused))
	for _, l := range p.refused {
		over[l.Index] = true
		if a.refused[l.Index] {
			continue
		}
		a.refused[l.Index] = true
		a.stats.refused.Add(1)
		a.logger.Warn("interface selected but not observed: max-interfaces reached", "interface", l.Name, "ifindex", l.Index, "max_interfaces", a.limit)
	}
	for idx := range a.refused {
		if !over[idx] {
			delete(a.refused, idx)
		}
	}
	for idx := range a.failed {
		if !present[idx] {
			delete(a.failed, idx)
		}
	}
	a.stats.attached.Store(int64(len(a.atts)))
	return errors.Join(errs...)
}

func (a *attacher) attach(l *linkDesc, start bool) error {
	named := a.sel.named(l.Name)
	att, err := capture.AttachIndex(a.objs, l.Index, a.mode, a.netns)
	if err != nil {
		a.stats.attachErrors.Add(1)
		if start && named {
			return err
		}
		if !a.failed[l.Index] {
			a.failed[l.Index] = true
			a.logger.Error("attach failed; retried at the next link change or resync", "interface", l.Name, "ifindex", l.Index, "err", err)
		}
		return nil
	}
	delete(a.failed, l.Index)
	a.atts[l.Index] = att
	a.stats.attaches.Add(1)
	msg := "observer attached"
	if named {
		if a.named[l.Name] {
			a.stats.reattached.Add(1)
			msg = "observer re-attached to a recreated interface"
		}
		a.named[l.Name] = true
	}
	a.logger.Info(msg, "interface", att.Interface, "ifindex", att.Index, "mode", att.Mode, "netns", a.netns, "clsact_priority", att.Priority, "stale_filters_removed", att.StaleFiltersRemoved)
	return nil
}

// detach closes one attachment. A deleted link took its hooks with it;
// closing releases our side (TCX link fds, clsact lock) and its
// connections are released by the pipeline.
func (a *attacher) detach(idx int, gone bool) {
	att := a.atts[idx]
	delete(a.atts, idx)
	a.stats.detaches.Add(1)
	if err := att.Close(); err != nil {
		a.logger.Warn("detach", "interface", att.Interface, "ifindex", idx, "err", err)
	}
	if gone {
		a.stats.gone.push(idx)
	}
	switch {
	case gone && a.sel.named(att.Interface):
		a.logger.Warn("observed interface deleted; it is attached again when it comes back", "interface", att.Interface, "ifindex", idx)
	case gone:
		a.logger.Info("observed interface deleted", "interface", att.Interface, "ifindex", idx)
	default:
		a.logger.Info("interface no longer selected; detached", "interface", att.Interface, "ifindex", idx)
	}
}

// closeAll detaches everything.
func (a *attacher) closeAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for idx, att := range a.atts {
		errs = append(errs, att.Close())
		delete(a.atts, idx)
	}
	a.stats.attached.Store(0)
	return errors.Join(errs...)
}

// attachedIndex reports whether ifindex idx is attached.
func (a *attacher) attachedIndex(idx int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.atts[idx] != nil
}

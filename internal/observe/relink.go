package observe

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/observe/capture"
)

// attacher keeps the configured interfaces attached. An interface that is
// deleted and created again (a pod restarted into a new veth of the same
// name, a bond rebuilt) gets a new ifindex and none of our hooks: the
// attacher watches link changes over netlink in the interfaces' namespace
// and attaches to the new one, and also resyncs every resyncEvery in case
// a notification was lost (netlink drops them under load).
type attacher struct {
	objs   *capture.Objects
	mode   capture.Mode
	netns  string
	names  []string
	logger *slog.Logger

	mu   sync.Mutex
	atts map[string]*capture.Attachment // by interface name

	reattached atomic.Uint64
	detached   atomic.Uint64
}

const resyncEvery = 10 * time.Second

func newAttacher(objs *capture.Objects, mode capture.Mode, netnsPath string, names []string, logger *slog.Logger) *attacher {
	return &attacher{objs: objs, mode: mode, netns: netnsPath, names: names, logger: logger, atts: make(map[string]*capture.Attachment)}
}

// attachAll attaches every interface; any failure is returned (a missing
// interface at start is a configuration error).
func (a *attacher) attachAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range a.names {
		att, err := capture.Attach(a.objs, name, a.mode, a.netns)
		if err != nil {
			return err
		}
		a.atts[name] = att
		a.logAttached(att, "observer attached")
	}
	return nil
}

func (a *attacher) logAttached(att *capture.Attachment, msg string) {
	a.logger.Info(msg, "interface", att.Interface, "ifindex", att.Index, "mode", att.Mode, "netns", a.netns, "clsact_priority", att.Priority, "stale_filters_removed", att.StaleFiltersRemoved)
}

// closeAll detaches everything.
func (a *attacher) closeAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for name, att := range a.atts {
		errs = append(errs, att.Close())
		delete(a.atts, name)
	}
	return errors.Join(errs...)
}

// watch follows link changes until ctx ends.
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
		ch := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
			Namespace:     ns,
			ErrorCallback: func(err error) { a.logger.Warn("interface watch", "err", err) },
		})
		if err != nil {
			a.logger.Warn("interface watch: subscribe failed, resyncing every 10s only", "err", err)
			ch = nil
		}
		// Whatever happened before the subscription, see it now.
		a.resync()
		a.follow(ctx, ch, tick.C)
		close(done)
	}
}

// follow handles updates until ctx ends or the subscription breaks.
func (a *attacher) follow(ctx context.Context, ch <-chan netlink.LinkUpdate, resync <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync:
			a.resync()
			if ch == nil {
				return // try subscribing again
			}
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Link == nil || !a.configured(u.Link.Attrs().Name) {
				continue
			}
			if u.Header.Type == unix.RTM_DELLINK {
				a.gone(u.Link.Attrs().Name, int(u.Index))
				continue
			}
			a.ensure(u.Link.Attrs().Name, int(u.Index))
		}
	}
}

func (a *attacher) configured(name string) bool {
	for _, n := range a.names {
		if n == name {
			return true
		}
	}
	return false
}

// resync looks every configured interface up and fixes what differs.
func (a *attacher) resync() {
	var h *netlink.Handle
	var err error
	if a.netns == "" {
		h, err = netlink.NewHandle()
	} else {
		var ns netns.NsHandle
		ns, err = netns.GetFromPath(a.netns)
		if err == nil {
			h, err = netlink.NewHandleAt(ns)
			ns.Close()
		}
	}
	if err != nil {
		a.logger.Warn("interface resync", "err", err)
		return
	}
	defer h.Close()
	for _, name := range a.names {
		l, err := h.LinkByName(name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				a.gone(name, 0)
			}
			continue
		}
		a.ensure(name, l.Attrs().Index)
	}
}

// gone forgets the attachment of a deleted interface (index 0: whatever
// index it had).
func (a *attacher) gone(name string, index int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	att := a.atts[name]
	if att == nil || (index != 0 && att.Index != index) {
		return
	}
	_ = att.Close() // its hooks went with the interface
	delete(a.atts, name)
	a.detached.Add(1)
	a.logger.Warn("observed interface deleted; it is attached again when it comes back", "interface", name, "ifindex", att.Index)
}

// ensure attaches to name at index unless already attached there.
func (a *attacher) ensure(name string, index int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if att := a.atts[name]; att != nil {
		if att.Index == index {
			return
		}
		_ = att.Close()
		delete(a.atts, name)
	}
	att, err := capture.Attach(a.objs, name, a.mode, a.netns)
	if err != nil {
		a.logger.Error("re-attach failed; retried at the next change or resync", "interface", name, "err", err)
		return
	}
	a.atts[name] = att
	a.reattached.Add(1)
	a.logAttached(att, "observer re-attached to a recreated interface")
}

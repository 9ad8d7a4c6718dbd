package capture

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Mode chooses the hooks.
type Mode string

const (
	// ModeTC attaches to TC ingress and egress: TCX on Linux 6.6+, a clsact
	// qdisc with direct-action filters before that.
	ModeTC Mode = "tc"
	// ModeTCX forces TCX (Linux 6.6+).
	ModeTCX Mode = "tcx"
	// ModeClsact forces the netlink clsact path (Linux 4.5+).
	ModeClsact Mode = "clsact"
	// ModeXDP attaches to XDP ingress only (Linux 5.18+). It cannot see
	// egress, so it pairs only traffic whose both directions enter on
	// observed interfaces.
	ModeXDP Mode = "xdp"
)

// ParseMode validates a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeTC, ModeTCX, ModeClsact, ModeXDP:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want tc, tcx, clsact or xdp", s)
}

// detacher undoes one attachment.
type detacher interface{ Close() error }

// Attachment is the set of hooks on one interface.
type Attachment struct {
	Interface string
	Mode      Mode // the mode actually used (tc resolves to tcx or clsact)
	// Index is the interface's ifindex when it was attached: a deleted and
	// recreated interface of the same name has a new one.
	Index int
	// Priority is the clsact filter priority this observer holds (clsact
	// mode only).
	Priority uint16
	// StaleFiltersRemoved counts filters of dead observers deleted at
	// attach (clsact mode only).
	StaleFiltersRemoved int
	links               []detacher
	nl                  *netlink.Handle // bound to the interface's namespace
}

// Close detaches everything, newest first.
func (a *Attachment) Close() error {
	var errs []error
	for i := len(a.links) - 1; i >= 0; i-- {
		if err := a.links[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	a.links = nil
	if a.nl != nil {
		a.nl.Close()
		a.nl = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %s: %w", a.Interface, err)
	}
	return nil
}

// Attach hooks the loaded programs to the named interface. netnsPath, when
// set, names the network namespace the interface lives in (for example
// /var/run/netns/NAME); the attachment is made from a thread switched into
// it, and lives on after the thread switches back.
func Attach(objs *Objects, iface string, mode Mode, netnsPath string) (*Attachment, error) {
	return attach(objs, mode, netnsPath, iface, func(h *netlink.Handle) (netlink.Link, error) {
		l, err := h.LinkByName(iface)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", iface, err)
		}
		return l, nil
	})
}

// AttachIndex is Attach to the interface with this ifindex: discovery
// picks a link by index, and a name may already belong to another link by
// the time it is looked up.
func AttachIndex(objs *Objects, index int, mode Mode, netnsPath string) (*Attachment, error) {
	return attach(objs, mode, netnsPath, fmt.Sprintf("ifindex %d", index), func(h *netlink.Handle) (netlink.Link, error) {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return nil, fmt.Errorf("interface %d: %w", index, err)
		}
		return l, nil
	})
}

func attach(objs *Objects, mode Mode, netnsPath, iface string, lookup func(*netlink.Handle) (netlink.Link, error)) (*Attachment, error) {
	a := &Attachment{Interface: iface}
	err := inNetns(netnsPath, func(h *netlink.Handle) error {
		a.nl = h
		l, err := lookup(h)
		if err != nil {
			return err
		}
		iface = l.Attrs().Name
		a.Interface = iface
		idx := l.Attrs().Index
		a.Index = idx
		switch mode {
		case ModeXDP:
			if objs.XDPIngress == nil {
				return fmt.Errorf("attach xdp to %q: XDP program not loaded", iface)
			}
			xl, err := link.AttachXDP(link.XDPOptions{Program: objs.XDPIngress, Interface: idx})
			if err != nil {
				return fmt.Errorf("attach xdp to %q: %w", iface, explainPerm(err))
			}
			a.links = append(a.links, xl)
			a.Mode = ModeXDP
			return nil
		case ModeTC, ModeTCX:
			err := a.attachTCX(objs, idx)
			if err == nil {
				a.Mode = ModeTCX
				return nil
			}
			if mode == ModeTCX || !errors.Is(err, ebpf.ErrNotSupported) {
				return err
			}
			// Pre-6.6 kernel: fall back to clsact.
			fallthrough
		case ModeClsact:
			if err := a.attachClsact(h, objs, idx); err != nil {
				return err
			}
			a.Mode = ModeClsact
			return nil
		}
		return fmt.Errorf("attach %q: unknown mode %q", iface, mode)
	})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	if a.Mode != ModeClsact && a.nl != nil {
		// Only clsact detaches through netlink; TCX and XDP links do not
		// need the socket, and with discovery there may be a thousand
		// attachments.
		a.nl.Close()
		a.nl = nil
	}
	return a, nil
}

func (a *Attachment) attachTCX(objs *Objects, idx int) error {
	if objs.TCIngress == nil || objs.TCEgress == nil {
		return fmt.Errorf("attach tcx to %q: TC programs not loaded", a.Interface)
	}
	for _, d := range []struct {
		prog *ebpf.Program
		at   ebpf.AttachType
		name string
	}{
		{objs.TCIngress, ebpf.AttachTCXIngress, "ingress"},
		{objs.TCEgress, ebpf.AttachTCXEgress, "egress"},
	} {
		l, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: d.prog, Attach: d.at})
		if err != nil {
			for _, prev := range a.links {
				_ = prev.Close()
			}
			a.links = nil
			return fmt.Errorf("attach tcx %s to %q (TCX needs Linux 6.6+): %w", d.name, a.Interface, explainPerm(err))
		}
		a.links = append(a.links, l)
	}
	return nil
}

// inNetns runs fn with a netlink handle for the namespace at path (the
// current one when empty), on an OS thread switched into that namespace so
// that ifindex-based syscalls (TCX, XDP links) resolve there too.
func inNetns(path string, fn func(h *netlink.Handle) error) error {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("open netlink: %w", explainPerm(err))
		}
		return fn(h)
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", path, explainPerm(err))
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %q: %w", path, explainPerm(err))
	}
	h, err := netlink.NewHandleAt(target)
	if err == nil {
		err = fn(h)
	} else {
		err = fmt.Errorf("open netlink in %q: %w", path, err)
	}
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the wrong namespace: keep it locked so the
		// runtime discards it instead of reusing it.
		return errors.Join(err, fmt.Errorf("return from network namespace %q: %w", path, serr))
	}
	runtime.UnlockOSThread()
	return err
}

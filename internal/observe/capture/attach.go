package capture

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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

// clsactFilter is one direct-action filter we added, plus the qdisc if we
// created it.
type clsactFilter struct {
	h           *netlink.Handle
	filter      *netlink.BpfFilter
	removeQdisc *netlink.GenericQdisc
}

func (c *clsactFilter) Close() error {
	var errs []error
	if err := c.h.FilterDel(c.filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("delete clsact filter: %w", err))
	}
	if c.removeQdisc != nil {
		if err := c.h.QdiscDel(c.removeQdisc); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("delete clsact qdisc: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Attachment is the set of hooks on one interface.
type Attachment struct {
	Interface string
	Mode      Mode // the mode actually used (tc resolves to tcx or clsact)
	links     []detacher
	nl        *netlink.Handle // bound to the interface's namespace
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
	a := &Attachment{Interface: iface}
	err := inNetns(netnsPath, func(h *netlink.Handle) error {
		a.nl = h
		l, err := h.LinkByName(iface)
		if err != nil {
			return fmt.Errorf("interface %q: %w", iface, err)
		}
		idx := l.Attrs().Index
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

func (a *Attachment) attachClsact(h *netlink.Handle, objs *Objects, idx int) error {
	if objs.TCIngress == nil || objs.TCEgress == nil {
		return fmt.Errorf("attach clsact to %q: TC programs not loaded", a.Interface)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	var created *netlink.GenericQdisc
	switch err := h.QdiscAdd(qdisc); {
	case err == nil:
		created = qdisc // ours: remove it again on detach
	case errors.Is(err, unix.EEXIST):
		// Someone else's clsact: share it, remove only our filters.
	default:
		return fmt.Errorf("add clsact qdisc to %q: %w", a.Interface, explainPerm(err))
	}
	for i, d := range []struct {
		prog   *ebpf.Program
		parent uint32
		name   string
	}{
		{objs.TCIngress, netlink.HANDLE_MIN_INGRESS, "ingress"},
		{objs.TCEgress, netlink.HANDLE_MIN_EGRESS, "egress"},
	} {
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: idx,
				Parent:    d.parent,
				Handle:    netlink.MakeHandle(0, 1),
				Protocol:  unix.ETH_P_ALL,
				// A high priority number runs us after existing filters'
				// defaults without colliding with the common prio 1.
				Priority: 0xc0de,
			},
			Fd:           d.prog.FD(),
			Name:         "rauta_observe_" + d.name,
			DirectAction: true,
		}
		if err := h.FilterAdd(f); err != nil {
			if created != nil && i == 0 {
				_ = h.QdiscDel(created)
			}
			return fmt.Errorf("add clsact %s filter to %q: %w", d.name, a.Interface, explainPerm(err))
		}
		cf := &clsactFilter{h: h, filter: f}
		if i == 1 {
			// Delete the qdisc (if ours) after the last filter goes.
			cf.removeQdisc = created
		}
		a.links = append(a.links, cf)
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

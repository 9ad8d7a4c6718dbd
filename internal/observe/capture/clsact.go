package capture

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// clsact filters (kernels before 6.6, or -mode clsact) outlive the process
// that added them: after a SIGKILL they stay, holding their programs. So
// every observer instance owns one priority on the interface, claimed by a
// lock that dies with the process: an abstract unix socket, bound in the
// interface's network namespace, named after the ifindex and priority. A
// filter named clsactNamePrefix... whose lock nobody holds was left by a
// dead observer and is deleted at start; a filter whose lock is held
// belongs to a live observer and is left alone; filters of other names are
// never touched.
const (
	clsactNamePrefix = "rauta_observe_"
	// clsactPrioBase is the first priority tried. A high number runs us
	// after filters at the common low priorities.
	clsactPrioBase = 0xc0de
	// clsactPrioSlots bounds how many observers share one interface.
	clsactPrioSlots = 32
)

// clsactLockName names the lock of a priority on an interface. Abstract
// names are per network namespace, so the ifindex is unique within it.
func clsactLockName(ifindex int, prio uint16) string {
	return fmt.Sprintf("@rauta-observe/clsact/%d/%d", ifindex, prio)
}

// clsactLock is a bound abstract unix socket: held while open, released by
// Close or by the process's death.
type clsactLock struct{ fd int }

// tryLock binds the lock; ok is false when another process holds it. It
// must run on a thread in the interface's network namespace.
func tryLock(name string) (l *clsactLock, ok bool, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false, fmt.Errorf("lock socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("bind lock %q: %w", name, err)
	}
	return &clsactLock{fd: fd}, true, nil
}

func (l *clsactLock) Close() error {
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}

// ignorableDelErr: the object is already gone (with its interface, or by
// someone else's hand).
func ignorableDelErr(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}

// clsactFilter is one direct-action filter we added.
type clsactFilter struct {
	h      *netlink.Handle
	filter *netlink.BpfFilter
}

func (c *clsactFilter) Close() error {
	if err := c.h.FilterDel(c.filter); err != nil && !ignorableDelErr(err) {
		return fmt.Errorf("delete clsact filter: %w", err)
	}
	return nil
}

// clsactQdisc removes the clsact qdisc at detach when no filter is left on
// it (other agents may have added theirs since). It is only armed when the
// qdisc was ours to remove: created by this observer, or found holding
// observers' filters only (created by another observer, live or dead).
type clsactQdisc struct {
	h     *netlink.Handle
	qdisc *netlink.GenericQdisc
}

func (c *clsactQdisc) Close() error {
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: c.qdisc.LinkIndex}}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := c.h.FilterList(link, parent)
		if err != nil {
			if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				return nil // interface or qdisc gone
			}
			return fmt.Errorf("list clsact filters: %w", err)
		}
		if len(fs) > 0 {
			return nil // someone else's filters: the qdisc stays
		}
	}
	if err := c.h.QdiscDel(c.qdisc); err != nil && !ignorableDelErr(err) {
		return fmt.Errorf("delete clsact qdisc: %w", err)
	}
	return nil
}

var clsactParents = [2]uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS}

// clsactFilters lists the bpf filters on both clsact parents, and in
// other the filters of other kinds.
func clsactFilters(h *netlink.Handle, idx int) (bpf []*netlink.BpfFilter, other []netlink.Filter, err error) {
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: idx}}
	for _, parent := range clsactParents {
		fs, err := h.FilterList(link, parent)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range fs {
			if bf, ok := f.(*netlink.BpfFilter); ok {
				bpf = append(bpf, bf)
			} else {
				other = append(other, f)
			}
		}
	}
	return bpf, other, nil
}

// removeStaleFilters deletes our filters whose owner is dead (their lock
// is free) and reports the priorities in use by anyone else, and whether
// any filter is not an observer's.
func removeStaleFilters(h *netlink.Handle, idx int) (busy map[uint16]bool, removed int, foreign bool, err error) {
	fs, all, err := clsactFilters(h, idx)
	if err != nil {
		return nil, 0, false, fmt.Errorf("list clsact filters: %w", err)
	}
	foreign = len(all) > 0
	busy = make(map[uint16]bool)
	for _, f := range fs {
		prio := f.Attrs().Priority
		if !strings.HasPrefix(f.Name, clsactNamePrefix) {
			busy[prio] = true
			foreign = true
			continue
		}
		l, free, lerr := tryLock(clsactLockName(idx, prio))
		if lerr != nil {
			return nil, removed, foreign, lerr
		}
		if !free {
			busy[prio] = true // a live observer's
			continue
		}
		derr := h.FilterDel(f)
		_ = l.Close()
		if derr != nil && !ignorableDelErr(derr) {
			return nil, removed, foreign, fmt.Errorf("delete stale filter %s (prio %d): %w", f.Name, prio, derr)
		}
		removed++
	}
	return busy, removed, foreign, nil
}

func (a *Attachment) attachClsact(h *netlink.Handle, objs *Objects, idx int) error {
	if objs.TCIngress == nil || objs.TCEgress == nil {
		return fmt.Errorf("attach clsact to %q: TC programs not loaded", a.Interface)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	created := false
	switch err := h.QdiscAdd(qdisc); {
	case err == nil:
		created = true
	case errors.Is(err, unix.EEXIST):
		// Someone else's clsact (or another observer's): share it.
	default:
		return fmt.Errorf("add clsact qdisc to %q: %w", a.Interface, explainPerm(err))
	}
	busy, removed, foreign, err := removeStaleFilters(h, idx)
	if err != nil {
		if created {
			_ = h.QdiscDel(qdisc)
		}
		return fmt.Errorf("clsact on %q: %w", a.Interface, explainPerm(err))
	}
	if created || !foreign {
		// Closed after our filters: removed then if nobody's filters are
		// left on it.
		a.links = append(a.links, &clsactQdisc{h: h, qdisc: qdisc})
	}
	a.StaleFiltersRemoved = removed
	prio, lock, err := claimPrio(idx, busy)
	if err != nil {
		return fmt.Errorf("clsact on %q: %w", a.Interface, err)
	}
	// Closed last (links close newest first): the priority stays ours
	// until our filters are gone.
	a.links = append(a.links, lock)
	a.Priority = prio
	for _, d := range []struct {
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
				Priority:  prio,
			},
			Fd:           d.prog.FD(),
			Name:         clsactNamePrefix + d.name,
			DirectAction: true,
		}
		if err := h.FilterAdd(f); err != nil {
			return fmt.Errorf("add clsact %s filter (prio %d) to %q: %w", d.name, prio, a.Interface, explainPerm(err))
		}
		a.links = append(a.links, &clsactFilter{h: h, filter: f})
	}
	return nil
}

// claimPrio takes the first priority of our range that no filter uses and
// whose lock is free.
func claimPrio(idx int, busy map[uint16]bool) (uint16, *clsactLock, error) {
	for i := range clsactPrioSlots {
		prio := uint16(clsactPrioBase + i)
		if busy[prio] {
			continue
		}
		l, ok, err := tryLock(clsactLockName(idx, prio))
		if err != nil {
			return 0, nil, err
		}
		if ok {
			return prio, l, nil
		}
	}
	return 0, nil, fmt.Errorf("all %d observer priorities (%d-%d) are in use by live observers or other filters", clsactPrioSlots, clsactPrioBase, clsactPrioBase+clsactPrioSlots-1)
}

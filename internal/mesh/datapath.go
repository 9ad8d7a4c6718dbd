package mesh

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/bpf"
)

// Options say where the programs go.
type Options struct {
	// Cgroup is a cgroup v2 directory: connects of its processes and of
	// every descendant cgroup's are translated (ResolveCgroup finds the
	// default's real place).
	Cgroup string
	// PinDir is a directory on a BPF file system where the maps and links
	// are pinned, so that an agent started after this one re-uses the maps
	// (their contents, and the original destinations of live sockets) and
	// swaps its programs into the same links, without a moment in which
	// the cgroup has no program. Empty: nothing is pinned, and Close always
	// detaches.
	PinDir string
	// Sockmap puts established TCP sockets between two addresses of this
	// node (SetLocal) into a sockhash, and sends their payload straight to
	// the peer socket's receive queue (bpf/mesh.c, mesh_redirect). Off:
	// the sockops program that does not fill it is attached instead, and
	// no sk_msg program.
	Sockmap bool
}

// Datapath is the loaded and attached programs and their maps.
type Datapath struct {
	objs   bpf.MeshObjects
	links  []link.Link
	pinDir string
	// reused: links of an earlier agent were taken over; a failed Open
	// then leaves them as they were rather than detaching them.
	reused bool
	// sockmap: mesh_redirect is attached to mesh_socks.
	sockmap bool
}

// hooks pairs each program with its attach point.
func (d *Datapath) hooks() []struct {
	name   string
	prog   *ebpf.Program
	attach ebpf.AttachType
} {
	p := &d.objs.MeshPrograms
	return []struct {
		name   string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"connect4", p.MeshConnect4, ebpf.AttachCGroupInet4Connect},
		{"connect6", p.MeshConnect6, ebpf.AttachCGroupInet6Connect},
		{"sendmsg4", p.MeshSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"sendmsg6", p.MeshSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{"recvmsg4", p.MeshRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"recvmsg6", p.MeshRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg},
		{"getpeername4", p.MeshGetpeername4, ebpf.AttachCgroupInet4GetPeername},
		{"getpeername6", p.MeshGetpeername6, ebpf.AttachCgroupInet6GetPeername},
		{"sockops", d.sockopsProg(), ebpf.AttachCGroupSockOps},
	}
}

// sockopsProg is the sockops program for the -sockmap setting. Both go
// into the one pinned link_sockops, so a restart with the other setting
// swaps them without a gap in steering.
func (d *Datapath) sockopsProg() *ebpf.Program {
	if d.sockmap {
		return d.objs.MeshSockopsSockmap
	}
	return d.objs.MeshSockops
}

// Open loads the programs and attaches them to opts.Cgroup. With a PinDir
// holding the pins of an earlier agent, its maps are re-used as they are
// and its links are given the new programs.
func Open(opts Options) (_ *Datapath, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := bpf.LoadMesh()
	if err != nil {
		return nil, fmt.Errorf("load mesh spec: %w", err)
	}
	// The sockhash is never pinned: it is this agent's, with its sk_msg
	// program attached; the next agent's sockops program fills its own,
	// and this one is freed (its sockets leave it) once nothing uses it.
	spec.Maps[bpf.MeshMapMeshSocks].Pinning = ebpf.PinNone
	if opts.PinDir == "" {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	} else if err := preparePinDir(opts.PinDir); err != nil {
		return nil, err
	}
	d := &Datapath{pinDir: opts.PinDir, sockmap: opts.Sockmap}
	if err := spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinDir}}); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("load mesh programs: a map pinned in %s by another version does not fit this one; remove the directory (that detaches the old programs; established connections are not affected): %w", opts.PinDir, err)
		}
		return nil, fmt.Errorf("load mesh programs (needs CAP_BPF, CAP_NET_ADMIN and Linux 5.18+): %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close(d.reused))
		}
	}()
	// The verdict program goes on the map before any socket can enter it.
	if opts.Sockmap {
		if err := link.RawAttachProgram(link.RawAttachProgramOptions{
			Target: d.objs.MeshSocks.FD(), Program: d.objs.MeshRedirect, Attach: ebpf.AttachSkMsgVerdict,
		}); err != nil {
			return nil, fmt.Errorf("attach sk_msg program to the sockhash: %w", err)
		}
	}
	for _, h := range d.hooks() {
		if err := d.attach(opts.Cgroup, h.name, h.prog, h.attach); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func preparePinDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin directory: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pin directory: %w", err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin directory %s is not on a BPF file system (mount one: mount -t bpf bpf /sys/fs/bpf), or pin nothing with an empty -pin-dir", dir)
	}
	return nil
}

// attach links prog to the cgroup. A link pinned by an earlier agent for
// the same cgroup and hook is updated in place (the kernel swaps the
// program atomically); one for another cgroup is removed first.
func (d *Datapath) attach(cgroup, name string, prog *ebpf.Program, at ebpf.AttachType) error {
	var pin string
	if d.pinDir != "" {
		pin = d.pinDir + "/link_" + name
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			if sameCgroupLink(l, cgroup, at) {
				if err := l.Update(prog); err != nil {
					_ = l.Close()
					return fmt.Errorf("update pinned %s link: %w", name, err)
				}
				d.links = append(d.links, l)
				d.reused = true
				return nil
			}
			err = errors.Join(l.Unpin(), l.Close())
			if err != nil {
				return fmt.Errorf("remove pinned %s link of another cgroup: %w", name, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pinned %s link: %w", name, err)
		}
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroup, Attach: at, Program: prog})
	if err != nil {
		return fmt.Errorf("attach %s to cgroup %s: %w", name, cgroup, err)
	}
	d.links = append(d.links, l)
	if pin != "" {
		if err := l.Pin(pin); err != nil {
			return fmt.Errorf("pin %s link (needs bpf_link, Linux 5.7+): %w", name, err)
		}
	}
	return nil
}

func sameCgroupLink(l link.Link, cgroup string, at ebpf.AttachType) bool {
	info, err := l.Info()
	if err != nil {
		return false
	}
	ci := info.Cgroup()
	if ci == nil || ebpf.AttachType(ci.AttachType) != at {
		return false
	}
	id, err := cgroupID(cgroup)
	return err == nil && id == ci.CgroupId
}

// Close releases the programs. keep (with a PinDir) leaves them attached
// and the maps pinned, for the next agent to take over; otherwise the
// programs are detached and the pins removed.
func (d *Datapath) Close(keep bool) error {
	keep = keep && d.pinDir != ""
	var errs []error
	for _, l := range d.links {
		if !keep {
			errs = append(errs, ignoreNotExist(l.Unpin()))
		}
		errs = append(errs, l.Close())
	}
	d.links = nil
	if d.sockmap && !keep {
		// New sockets stop entering the map with the sockops link gone.
		// Sockets already in it keep it (each holds the sk_msg program,
		// which holds the map) and stay redirected until they close: taking
		// them out would drop what was redirected to them and not yet read
		// (TestSockmapExitKeepsConnections).
		errs = append(errs, link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: d.objs.MeshSocks.FD(), Program: d.objs.MeshRedirect, Attach: ebpf.AttachSkMsgVerdict,
		}))
	}
	maps := d.maps()
	if !keep && d.pinDir != "" {
		for _, m := range maps {
			errs = append(errs, ignoreNotExist(m.Unpin()))
		}
	}
	errs = append(errs, d.objs.Close())
	if !keep && d.pinDir != "" {
		// Only when empty: something else may share the directory.
		_ = os.Remove(d.pinDir)
	}
	return errors.Join(errs...)
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (d *Datapath) maps() []*ebpf.Map {
	m := &d.objs.MeshMaps
	return []*ebpf.Map{m.MeshServices, m.MeshEndpoints, m.MeshOrigDst, m.MeshRevNat, m.MeshSteered, m.MeshConfig, m.MeshStats, m.MeshLocal, m.MeshOptout}
}

// Writer returns a Writer for the frontend and endpoint maps that knows
// what they already hold.
func (d *Datapath) Writer() (*Writer, error) {
	return RecoverWriter(d.objs.MeshServices, d.objs.MeshEndpoints)
}

// SetProxy sets the node mesh proxy's addresses, one per family, where
// frontends with Entry.Steer go. A zero AddrPort turns steering off for
// its family (steered frontends are then balanced as the others).
func (d *Datapath) SetProxy(v4, v6 netip.AddrPort) error {
	var c bpf.MeshNodeConfig
	if v4.IsValid() {
		if !v4.Addr().Unmap().Is4() {
			return fmt.Errorf("proxy address %s: want IPv4", v4)
		}
		c.Proxy4 = epValue(v4)
	}
	if v6.IsValid() {
		if !v6.Addr().Is6() || v6.Addr().Is4In6() {
			return fmt.Errorf("proxy address %s: want IPv6", v6)
		}
		c.Proxy6 = epValue(v6)
	}
	return d.objs.MeshConfig.Put(uint32(0), c)
}

// SetLocal makes addrs the addresses of this node whose connections to
// each other sockmap shortcuts (the mesh proxy's and the local pods').
func (d *Datapath) SetLocal(addrs []netip.Addr) error {
	want := make(map[bpf.MeshEpValue]bool, len(addrs))
	for _, a := range addrs {
		if a.IsValid() && !a.IsUnspecified() {
			want[epValue(netip.AddrPortFrom(a.Unmap(), 0))] = true
		}
	}
	var (
		k     bpf.MeshEpValue
		v     uint8
		stale []bpf.MeshEpValue
	)
	it := d.objs.MeshLocal.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read local addresses: %w", err)
	}
	var errs []error
	for k := range want {
		if err := d.objs.MeshLocal.Put(k, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("local address %s: %w", valueAddrPort(k).Addr(), err))
		}
	}
	for _, k := range stale {
		if err := d.objs.MeshLocal.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetOptOut makes ids (cgroup ids, the inode numbers of cgroup v2
// directories) the cgroups whose processes, and their descendants', are
// never steered to the mesh proxy (bpf/mesh.c, opted_out): the pods that
// opted out of the mesh.
func (d *Datapath) SetOptOut(ids []uint64) error {
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var (
		k     uint64
		v     uint8
		stale []uint64
	)
	it := d.objs.MeshOptout.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read opted-out cgroups: %w", err)
	}
	var errs []error
	for id := range want {
		if err := d.objs.MeshOptout.Put(id, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("opted-out cgroup %d: %w", id, err))
		}
	}
	for _, k := range stale {
		if err := d.objs.MeshOptout.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

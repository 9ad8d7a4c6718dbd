package mesh

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/bpf"
)

// Original is what a translated socket was dialled to and where it went.
type Original struct {
	// Frontend is the ClusterIP:port the application dialled.
	Frontend netip.AddrPort
	Proto    Proto
	// Backend is the endpoint (or the mesh proxy) it was sent to instead.
	Backend netip.AddrPort
	// Steered: Backend is the node's mesh proxy.
	Steered bool
}

// ErrNotTranslated: the socket's cookie is not in the original
// destination map (it was never translated, or so long ago that the LRU
// map made room).
var ErrNotTranslated = errors.New("socket was not translated")

// OriginalDestination looks a socket up by its cookie (SocketCookie): the
// mesh proxy learns from it where a steered connection was going, as
// SO_ORIGINAL_DST would tell it under iptables. For an unconnected UDP
// socket it is the last datagram's destination.
func (d *Datapath) OriginalDestination(cookie uint64) (Original, error) {
	var v bpf.MeshOrigValue
	if err := d.objs.MeshOrigDst.Lookup(cookie, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Original{}, ErrNotTranslated
		}
		return Original{}, fmt.Errorf("original destination of socket %d: %w", cookie, err)
	}
	return original(v), nil
}

// SteeredOriginal is the mesh proxy's side of OriginalDestination: the
// original destination of a TCP connection steered to the proxy, looked
// up by the client's address and port (the accepted connection's remote
// address). It is there from before accept returns until the client's
// socket closes.
func (d *Datapath) SteeredOriginal(client netip.AddrPort) (Original, error) {
	k := bpf.MeshPeerKey{Addr: addrWords(client.Addr()), Port: netPort(client.Port())}
	var v bpf.MeshOrigValue
	if err := d.objs.MeshSteered.Lookup(k, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Original{}, ErrNotTranslated
		}
		return Original{}, fmt.Errorf("original destination of the connection from %s: %w", client, err)
	}
	return original(v), nil
}

func original(v bpf.MeshOrigValue) Original {
	return Original{
		Frontend: netip.AddrPortFrom(wordsAddr(v.Vip), hostPort(v.VipPort)),
		Proto:    Proto(v.Proto),
		Backend:  netip.AddrPortFrom(wordsAddr(v.Backend), hostPort(v.BackendPort)),
		Steered:  v.Steered != 0,
	}
}

// SocketCookie is the kernel's cookie of a socket (SO_COOKIE, Linux 4.12+),
// the key of OriginalDestination. On an accepted connection it is the
// accepted socket's own cookie, not the client's.
func SocketCookie(c syscall.Conn) (uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cookie uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		return 0, err
	}
	return cookie, serr
}

// Stats are the programs' counters, summed over CPUs (stat_index in
// bpf/mesh.c).
type Stats struct {
	Translated  uint64 // connects and datagrams sent to an endpoint
	Steered     uint64 // sent to the mesh proxy
	NoEndpoints uint64 // refused: no ready endpoint
	SlotMissing uint64 // a concurrent shrink; slot 0 was used
	Family      uint64 // refused: an IPv4 socket and an IPv6 endpoint
	SockAdded   uint64 // sockmap: local sockets put into the sockhash
	Redirected  uint64 // sockmap: messages handed to the peer socket
	NoPeer      uint64 // sockmap: peer not in the sockhash, normal path
}

// Stats reads the counters.
func (d *Datapath) Stats() (Stats, error) {
	var out [8]uint64
	for i := range out {
		var per []uint64
		if err := d.objs.MeshStats.Lookup(uint32(i), &per); err != nil {
			return Stats{}, fmt.Errorf("read mesh stats: %w", err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return Stats{Translated: out[0], Steered: out[1], NoEndpoints: out[2], SlotMissing: out[3], Family: out[4],
		SockAdded: out[5], Redirected: out[6], NoPeer: out[7]}, nil
}

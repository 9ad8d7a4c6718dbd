package mesh

import (
	"encoding/binary"
	"net/netip"

	"github.com/false-systems/rauta/bpf"
)

// The kernel structs hold addresses as four 32-bit words and ports as
// 16-bit values, all in network byte order in memory; these helpers turn
// netip values into those words and back, IPv4 v4-mapped.

func addrWords(a netip.Addr) [4]uint32 {
	b := a.As16() // IPv4 becomes ::ffff:a.b.c.d
	var w [4]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

func wordsAddr(w [4]uint32) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[4*i:], w[i])
	}
	return netip.AddrFrom16(b).Unmap()
}

func netPort(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func hostPort(p uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], p)
	return binary.BigEndian.Uint16(b[:])
}

func svcKey(f Frontend) bpf.MeshSvcKey {
	return bpf.MeshSvcKey{Addr: addrWords(f.Addr), Port: netPort(f.Port), Proto: uint8(f.Proto)}
}

func keyFrontend(k bpf.MeshSvcKey) Frontend {
	return Frontend{Addr: wordsAddr(k.Addr), Port: hostPort(k.Port), Proto: Proto(k.Proto)}
}

func epValue(ap netip.AddrPort) bpf.MeshEpValue {
	return bpf.MeshEpValue{Addr: addrWords(ap.Addr()), Port: netPort(ap.Port())}
}

func valueAddrPort(v bpf.MeshEpValue) netip.AddrPort {
	return netip.AddrPortFrom(wordsAddr(v.Addr), hostPort(v.Port))
}

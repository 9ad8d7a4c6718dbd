package mesh

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Proto is a frontend's transport protocol (IPPROTO_* numbers, as the
// kernel programs compare them).
type Proto uint8

// The protocols the programs translate. SCTP Service ports are left to
// whatever else serves them.
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Frontend is what a client dials: a ClusterIP, a port and a protocol.
// Addr is never v4-mapped (Unmap it first).
type Frontend struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
}

func (f Frontend) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(f.Addr, f.Port), f.Proto)
}

// Entry is what a frontend leads to.
type Entry struct {
	// Backends are the ready endpoints, sorted, without duplicates, of
	// the frontend's family. None: connects are refused (ECONNREFUSED).
	Backends []netip.AddrPort
	// Steer sends the frontend's sockets to the node's mesh proxy instead
	// (GAMMA routes; set by a later slice). Without a configured proxy
	// address it has no effect.
	Steer bool
	// Service is namespace/name, for logs and dumps.
	Service string
}

// State is the whole content of the frontend and endpoint maps.
type State map[Frontend]Entry

// Frontends returns the frontends in a stable order.
func (s State) Frontends() []Frontend {
	out := make([]Frontend, 0, len(s))
	for f := range s {
		out = append(out, f)
	}
	slices.SortFunc(out, compareFrontends)
	return out
}

func compareFrontends(a, b Frontend) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return cmp.Compare(a.Proto, b.Proto)
}

// Endpoints counts the endpoint slots s needs.
func (s State) Endpoints() int {
	n := 0
	for _, e := range s {
		n += len(e.Backends)
	}
	return n
}

package mesh

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"
)

// TestEncodingIsNetworkOrderInMemory: the kernel compares the words and
// ports byte for byte with the socket's address, which is in network byte
// order; a host-order slip would pass a round trip but never match.
func TestEncodingIsNetworkOrderInMemory(t *testing.T) {
	w := addrWords(netip.MustParseAddr("10.96.231.1"))
	b := unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 16)
	want := [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 96, 14: 231, 15: 1}
	if [16]byte(b) != want {
		t.Fatalf("10.96.231.1 in memory: % x, want % x (v4-mapped, network order)", b, want)
	}
	p := netPort(8080)
	pb := unsafe.Slice((*byte)(unsafe.Pointer(&p)), 2)
	if binary.BigEndian.Uint16(pb) != 8080 {
		t.Fatalf("port 8080 in memory: % x", pb)
	}
	for _, s := range []string{"10.96.231.1:80", "[fd00:10:96:231::1]:65535", "[::1]:1", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(s)
		if got := valueAddrPort(epValue(ap)); got != ap {
			t.Errorf("round trip of %s: %s", ap, got)
		}
		f := Frontend{Addr: ap.Addr(), Port: ap.Port(), Proto: UDP}
		if got := keyFrontend(svcKey(f)); got != f {
			t.Errorf("round trip of %s: %s", f, got)
		}
	}
}

func TestResolveCgroup(t *testing.T) {
	if _, err := ResolveCgroup(t.TempDir()); err == nil {
		t.Error("a directory that is not on cgroup2 was accepted")
	}
	if _, err := ResolveCgroup("/nonexistent/cgroup"); err == nil {
		t.Error("a missing directory was accepted")
	}
	m, err := Cgroup2Mount()
	if err != nil {
		t.Skipf("SKIP: no cgroup2 mount on this host (%v); the default cannot be resolved", err)
	}
	got, err := ResolveCgroup(DefaultCgroup)
	if err != nil {
		t.Fatalf("default %s with cgroup2 at %s: %v", DefaultCgroup, m, err)
	}
	if ok, _ := isCgroup2(got); !ok {
		t.Fatalf("default resolved to %s, not a cgroup2 directory", got)
	}
}

package svcproxy

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPoolLowestFreeAndKept(t *testing.T) {
	p := newPool(netip.MustParsePrefix("127.0.211.0/24"))
	a, err := p.assign("ns/a", netip.Addr{}, netip.Addr{}, nil)
	if err != nil || a != netip.MustParseAddr("127.0.211.1") {
		t.Fatalf("first address %v %v, want 127.0.211.1 (the network address is skipped)", a, err)
	}
	b, _ := p.assign("ns/b", netip.Addr{}, netip.Addr{}, nil)
	if b != netip.MustParseAddr("127.0.211.2") {
		t.Fatalf("second address %v", b)
	}
	// Kept on every later sync.
	if again, _ := p.assign("ns/a", netip.Addr{}, netip.Addr{}, nil); again != a {
		t.Errorf("ns/a moved from %v to %v", a, again)
	}
	// Released addresses are reused, lowest first.
	p.release("ns/a")
	if c, _ := p.assign("ns/c", netip.Addr{}, netip.Addr{}, nil); c != a {
		t.Errorf("after release got %v, want the freed %v", c, a)
	}
}

func TestPoolSkipsReservedAndPrefersStatus(t *testing.T) {
	p := newPool(netip.MustParsePrefix("127.0.211.0/24"))
	reserved := func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.211.1") }
	if a, _ := p.assign("ns/a", netip.Addr{}, netip.Addr{}, reserved); a != netip.MustParseAddr("127.0.211.2") {
		t.Errorf("got %v, want 127.0.211.2 (.1 is claimed by another Service's status)", a)
	}
	prefer := netip.MustParseAddr("127.0.211.9")
	if a, _ := p.assign("ns/b", netip.Addr{}, prefer, nil); a != prefer {
		t.Errorf("got %v, want the status address %v", a, prefer)
	}
	// A preferred address outside the pool is ignored, not an error.
	if a, err := p.assign("ns/c", netip.Addr{}, netip.MustParseAddr("10.0.0.1"), nil); err != nil || a != netip.MustParseAddr("127.0.211.1") {
		t.Errorf("got %v %v, want 127.0.211.1", a, err)
	}
}

func TestPoolRequests(t *testing.T) {
	p := newPool(netip.MustParsePrefix("127.0.211.0/24"))
	want := netip.MustParseAddr("127.0.211.50")
	if a, err := p.assign("ns/a", want, netip.Addr{}, nil); err != nil || a != want {
		t.Fatalf("request: %v %v", a, err)
	}
	if _, err := p.assign("ns/b", want, netip.Addr{}, nil); !errors.Is(err, errTaken) {
		t.Errorf("taken request: %v, want errTaken", err)
	}
	for _, bad := range []string{"127.0.212.1", "127.0.211.0", "127.0.211.255"} {
		if _, err := p.assign("ns/b", netip.MustParseAddr(bad), netip.Addr{}, nil); !errors.Is(err, errOutOfPool) {
			t.Errorf("request %s: %v, want errOutOfPool", bad, err)
		}
	}
	// A failed request leaves the Service without an address, even one it had.
	if _, err := p.assign("ns/c", netip.Addr{}, netip.Addr{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.assign("ns/c", want, netip.Addr{}, nil); err == nil {
		t.Fatal("taken request succeeded")
	}
	if a, ok := p.lookup("ns/c"); ok {
		t.Errorf("ns/c kept %v after a failed request", a)
	}
	// Changing the request moves the Service and frees the old address.
	other := netip.MustParseAddr("127.0.211.60")
	if a, _ := p.assign("ns/a", other, netip.Addr{}, nil); a != other {
		t.Fatalf("moved to %v", a)
	}
	if a, err := p.assign("ns/d", want, netip.Addr{}, nil); err != nil || a != want {
		t.Errorf("old address not freed: %v %v", a, err)
	}
}

func TestPoolExhausted(t *testing.T) {
	p := newPool(netip.MustParsePrefix("127.0.211.0/30")) // .1 and .2 usable
	for _, k := range []string{"a", "b"} {
		if _, err := p.assign(k, netip.Addr{}, netip.Addr{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.assign("c", netip.Addr{}, netip.Addr{}, nil); !errors.Is(err, errExhausted) {
		t.Errorf("third address: %v, want errExhausted", err)
	}
	// /31 and /32 use every address.
	q := newPool(netip.MustParsePrefix("127.0.211.7/32"))
	if a, err := q.assign("a", netip.Addr{}, netip.Addr{}, nil); err != nil || a != netip.MustParseAddr("127.0.211.7") {
		t.Errorf("/32: %v %v", a, err)
	}
}

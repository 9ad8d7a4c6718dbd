package node

import (
	"net/netip"
	"testing"
)

func TestIPAMSkipsReservedAndExhausts(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.244.7.0/29"))
	var got []string
	for {
		a, err := p.allocate()
		if err != nil {
			break
		}
		got = append(got, a.String())
		if len(got) > 8 {
			t.Fatal("allocated more addresses than the prefix holds")
		}
	}
	want := []string{"10.244.7.2", "10.244.7.3", "10.244.7.4", "10.244.7.5", "10.244.7.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
}

func TestIPAMDoesNotReuseAtOnce(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.244.0.0/24"))
	a, _ := p.allocate()
	b, _ := p.allocate()
	p.release(a)
	c, _ := p.allocate()
	if c == a || c == b {
		t.Fatalf("got %s right after releasing %s (b=%s)", c, a, b)
	}
}

func TestIPAMWrapsToReleased(t *testing.T) {
	p := newIPAM(netip.MustParsePrefix("10.0.0.0/29"))
	var addrs []netip.Addr
	for range 5 {
		a, err := p.allocate()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	p.release(addrs[1])
	a, err := p.allocate()
	if err != nil || a != addrs[1] {
		t.Fatalf("allocate after release = %s, %v; want %s", a, err, addrs[1])
	}
}

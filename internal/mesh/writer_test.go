package mesh

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/false-systems/rauta/bpf"
)

// fakeMaps is the services and endpoints maps in memory. After every
// write it runs check, so a test sees each intermediate state a program
// could see.
type fakeMaps struct {
	svc   map[bpf.MeshSvcKey]bpf.MeshSvcValue
	ep    map[bpf.MeshEpKey]bpf.MeshEpValue
	ops   int
	check func()
	// failPutAfter makes Put fail once ops reaches it (0: never).
	failPutAfter int
}

func newFakeMaps() *fakeMaps {
	return &fakeMaps{svc: map[bpf.MeshSvcKey]bpf.MeshSvcValue{}, ep: map[bpf.MeshEpKey]bpf.MeshEpValue{}}
}

type fakeTable struct {
	m   *fakeMaps
	svc bool
}

var errFull = errors.New("map full")

func (t fakeTable) Put(k, v any) error {
	if t.m.failPutAfter > 0 && t.m.ops >= t.m.failPutAfter {
		return errFull
	}
	t.m.ops++
	if t.svc {
		t.m.svc[k.(bpf.MeshSvcKey)] = v.(bpf.MeshSvcValue)
	} else {
		t.m.ep[k.(bpf.MeshEpKey)] = v.(bpf.MeshEpValue)
	}
	if t.m.check != nil {
		t.m.check()
	}
	return nil
}

func (t fakeTable) Delete(k any) error {
	t.m.ops++
	if t.svc {
		if _, ok := t.m.svc[k.(bpf.MeshSvcKey)]; !ok {
			return ebpf.ErrKeyNotExist
		}
		delete(t.m.svc, k.(bpf.MeshSvcKey))
	} else {
		if _, ok := t.m.ep[k.(bpf.MeshEpKey)]; !ok {
			return ebpf.ErrKeyNotExist
		}
		delete(t.m.ep, k.(bpf.MeshEpKey))
	}
	if t.m.check != nil {
		t.m.check()
	}
	return nil
}

func (m *fakeMaps) writer() *Writer { return NewWriter(fakeTable{m, true}, fakeTable{m, false}) }

// view is what a program would pick from for f: its endpoints, or
// ok=false when f is not a frontend.
func (m *fakeMaps) view(t *testing.T, f Frontend) (eps []netip.AddrPort, flags uint16, ok bool) {
	t.Helper()
	v, ok := m.svc[svcKey(f)]
	if !ok {
		return nil, 0, false
	}
	for i := range uint32(v.Count) {
		ep, present := m.ep[bpf.MeshEpKey{Id: v.Id, Slot: i}]
		if !present {
			t.Fatalf("%s: count %d but slot %d missing", f, v.Count, i)
		}
		eps = append(eps, valueAddrPort(ep))
	}
	return eps, v.Flags, true
}

// assertHolds checks that the maps hold exactly want and nothing else.
func (m *fakeMaps) assertHolds(t *testing.T, want State) {
	t.Helper()
	slots := 0
	for f, e := range want {
		got, flags, ok := m.view(t, f)
		if !ok {
			t.Fatalf("%s missing", f)
		}
		if !sameSet(got, e.Backends) {
			t.Fatalf("%s: endpoints %v, want %v", f, got, e.Backends)
		}
		if (flags&flagSteerProxy != 0) != e.Steer {
			t.Fatalf("%s: flags %d, steer %v", f, flags, e.Steer)
		}
		slots += len(e.Backends)
	}
	if len(m.svc) != len(want) || len(m.ep) != slots {
		t.Fatalf("maps hold %d frontends and %d slots, want %d and %d", len(m.svc), len(m.ep), len(want), slots)
	}
}

func sameSet(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[netip.AddrPort]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]--
	}
	for _, n := range in {
		if n != 0 {
			return false
		}
	}
	return true
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func fe(s string, p Proto) Frontend {
	a := ap(s)
	return Frontend{Addr: a.Addr(), Port: a.Port(), Proto: p}
}

func TestWriterAppliesAndIsIdempotent(t *testing.T) {
	m := newFakeMaps()
	w := m.writer()
	want := State{
		fe("10.96.0.1:80", TCP):         {Backends: []netip.AddrPort{ap("10.0.0.1:8080"), ap("10.0.0.2:8080")}},
		fe("10.96.0.1:53", UDP):         {Backends: []netip.AddrPort{ap("10.0.0.3:5353")}},
		fe("[fd00::1]:80", TCP):         {Backends: []netip.AddrPort{ap("[fd00::a]:8080")}, Steer: true},
		fe("10.96.0.2:80", TCP):         {},
		fe("10.96.0.3:80", TCP):         {Backends: []netip.AddrPort{ap("[fd00::a]:8080")}}, // wrong family: dropped
		fe("10.96.0.4:443", TCP):        {Backends: []netip.AddrPort{ap("10.0.0.9:8443")}},
		fe("[fd00::2]:8080", UDP):       {Backends: []netip.AddrPort{ap("[fd00::b]:1"), ap("[fd00::c]:1")}},
		fe("10.96.0.5:65535", TCP):      {Backends: []netip.AddrPort{ap("127.0.0.1:1")}},
		fe("255.255.255.255:1", TCP):    {Backends: []netip.AddrPort{ap("1.2.3.4:65535")}},
		fe("[::ffff:10.96.0.6]:1", UDP): {Backends: []netip.AddrPort{ap("10.0.0.1:1")}},
	}
	// The v4-mapped frontend is given unmapped by FromKube; build it so.
	for f, e := range want {
		if f.Addr.Is4In6() {
			delete(want, f)
			f.Addr = f.Addr.Unmap()
			want[f] = e
		}
	}
	if err := w.Apply(want); err != nil {
		t.Fatal(err)
	}
	expect := State{}
	for f, e := range want {
		if f == fe("10.96.0.3:80", TCP) {
			e.Backends = nil
		}
		expect[f] = e
	}
	m.assertHolds(t, expect)
	ops := m.ops
	if err := w.Apply(want); err != nil {
		t.Fatal(err)
	}
	if m.ops != ops {
		t.Fatalf("applying the same state again made %d writes", m.ops-ops)
	}
	if err := w.Apply(State{}); err != nil {
		t.Fatal(err)
	}
	m.assertHolds(t, State{})
}

// TestWriterNeverEmptiesAServingFrontend: while one non-empty endpoint set
// replaces another, every intermediate state a program can see has a
// non-zero count, every slot below the count present, and only endpoints of
// the old or new set. Random sequences of sets over a small pool, so that
// sets overlap, grow, shrink and swap.
func TestWriterNeverEmptiesAServingFrontend(t *testing.T) {
	pool := make([]netip.AddrPort, 12)
	for i := range pool {
		pool[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 8080)
	}
	frontends := []Frontend{fe("10.96.0.1:80", TCP), fe("10.96.0.2:80", TCP), fe("[fd00::1]:53", UDP)}
	rng := rand.New(rand.NewPCG(1, 2))
	randomSet := func(f Frontend) []netip.AddrPort {
		var out []netip.AddrPort
		n := rng.IntN(len(pool) + 1)
		for _, i := range rng.Perm(len(pool))[:n] {
			a := pool[i]
			if f.Addr.Is6() {
				a = netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
				b := a.Addr().As16()
				b[0], b[1], b[10], b[11] = 0xfd, 0, 0, 0
				a = netip.AddrPortFrom(netip.AddrFrom16(b), a.Port())
			}
			out = append(out, a)
		}
		return out
	}
	m := newFakeMaps()
	w := m.writer()
	prev := State{}
	for step := range 500 {
		next := State{}
		for _, f := range frontends {
			if rng.IntN(5) == 0 {
				continue // absent this step
			}
			next[f] = Entry{Backends: randomSet(f), Steer: rng.IntN(4) == 0}
		}
		m.check = func() {
			for f, n := range next {
				p, had := prev[f]
				if !had {
					continue
				}
				eps, _, ok := m.view(t, f)
				if !ok {
					t.Fatalf("step %d: %s disappeared while it stays", step, f)
				}
				if len(p.Backends) > 0 && len(n.Backends) > 0 && len(eps) == 0 {
					t.Fatalf("step %d: %s has no endpoint between %v and %v", step, f, p.Backends, n.Backends)
				}
				for _, e := range eps {
					if !contains(p.Backends, e) && !contains(n.Backends, e) {
						t.Fatalf("step %d: %s offers %s, in neither %v nor %v", step, f, e, p.Backends, n.Backends)
					}
				}
			}
		}
		if err := w.Apply(next); err != nil {
			t.Fatal(err)
		}
		m.check = nil
		m.assertHolds(t, next)
		prev = next
	}
}

func contains(s []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// TestWriterKeepsSlotsOfStayingEndpoints: removing one endpoint of three
// rewrites at most one slot, so connections keep spreading over the rest.
func TestWriterKeepsSlotsOfStayingEndpoints(t *testing.T) {
	m := newFakeMaps()
	w := m.writer()
	f := fe("10.96.0.1:80", TCP)
	a, b, c := ap("10.0.0.1:80"), ap("10.0.0.2:80"), ap("10.0.0.3:80")
	if err := w.Apply(State{f: {Backends: []netip.AddrPort{a, b, c}}}); err != nil {
		t.Fatal(err)
	}
	ops := m.ops
	if err := w.Apply(State{f: {Backends: []netip.AddrPort{a, c}}}); err != nil {
		t.Fatal(err)
	}
	// b's slot gets c (1 write), the count drops (1), the top slot goes (1).
	if got := m.ops - ops; got > 3 {
		t.Fatalf("removing one endpoint of three took %d writes, want at most 3", got)
	}
	m.assertHolds(t, State{f: {Backends: []netip.AddrPort{a, c}}})
}

// TestWriterRecoversAfterAFailedWrite: a full map fails one frontend's
// write half way; the next Apply completes it and leaves nothing behind.
func TestWriterRecoversAfterAFailedWrite(t *testing.T) {
	m := newFakeMaps()
	w := m.writer()
	f := fe("10.96.0.1:80", TCP)
	want := State{f: {Backends: []netip.AddrPort{ap("10.0.0.1:80"), ap("10.0.0.2:80"), ap("10.0.0.3:80")}}}
	m.failPutAfter = 2
	if err := w.Apply(want); !errors.Is(err, errFull) {
		t.Fatalf("Apply with a full map: %v", err)
	}
	if _, _, ok := m.view(t, f); ok {
		t.Fatal("a frontend was published without all its endpoints")
	}
	m.failPutAfter = 0
	if err := w.Apply(want); err != nil {
		t.Fatal(err)
	}
	m.assertHolds(t, want)
	if err := w.Apply(State{}); err != nil {
		t.Fatal(err)
	}
	m.assertHolds(t, State{})
}

func TestArrange(t *testing.T) {
	v := func(i int) bpf.MeshEpValue {
		return epValue(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80))
	}
	vs := func(is ...int) []bpf.MeshEpValue {
		var out []bpf.MeshEpValue
		for _, i := range is {
			out = append(out, v(i))
		}
		return out
	}
	for _, tc := range []struct {
		old, want, next []int
	}{
		{nil, []int{1, 2}, []int{1, 2}},
		{[]int{1, 2, 3}, []int{1, 2, 3}, []int{1, 2, 3}},
		{[]int{1, 2, 3}, []int{3, 1}, []int{1, 3}},       // 3 moves into 2's hole
		{[]int{1, 2, 3}, []int{1, 2, 4}, []int{1, 2, 4}}, // 4 takes 3's slot
		{[]int{1, 2, 3}, []int{4}, []int{4}},
		{[]int{1, 2, 3, 4}, []int{4}, []int{4}},
		{[]int{1, 2, 3, 4}, []int{2, 5}, []int{5, 2}},
		{[]int{1, 2}, []int{2, 1, 3}, []int{1, 2, 3}},
		{[]int{1, 2}, nil, nil},
	} {
		got := arrange(vs(tc.old...), vs(tc.want...))
		if fmt.Sprint(got) != fmt.Sprint(vs(tc.next...)) {
			t.Errorf("arrange(%v, %v) = %v, want %v", tc.old, tc.want, got, vs(tc.next...))
		}
	}
}

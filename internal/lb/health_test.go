package lb

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// fakeClock drives a Registry's ejections in tests.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() int64              { return c.t.Load() }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func testRegistry(o HealthOptions) (*Registry, *fakeClock) {
	reg := NewRegistryWith(o)
	clk := &fakeClock{}
	clk.t.Store(1) // 0 would read as "never ejected"
	reg.health.now = clk.now
	return reg, clk
}

var allPolicies = []ir.LBPolicy{ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev}

func mustNew(t *testing.T, p ir.LBPolicy, reg *Registry, addrs ...string) Balancer {
	t.Helper()
	b, err := New(p, irEndpoints(addrs...), reg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// picks counts the endpoints chosen for n different keys.
func picks(b Balancer, n int) map[string]int {
	got := map[string]int{}
	for k := range uint64(n) {
		got[b.Pick(Hash(string(rune(k+1)))).Addr]++
	}
	return got
}

func TestEjectedEndpointSkipped(t *testing.T) {
	for _, p := range allPolicies {
		reg, clk := testRegistry(HealthOptions{})
		b := mustNew(t, p, reg, "10.0.0.1", "10.0.0.2", "10.0.0.3")
		dead := reg.Endpoint("10.0.0.2:8080")
		if !b.Eject(dead) {
			t.Fatalf("%s: Eject refused the first endpoint", p)
		}
		got := picks(b, 3000)
		if got[dead.Addr] != 0 || got["10.0.0.1:8080"] == 0 || got["10.0.0.3:8080"] == 0 {
			t.Errorf("%s: picks with 10.0.0.2 ejected: %v", p, got)
		}
		if p == ir.LBRoundRobin && (got["10.0.0.1:8080"] != 1500 || got["10.0.0.3:8080"] != 1500) {
			t.Errorf("round robin shares the ejected turns unevenly: %v", got)
		}
		// 30 s is the default base ejection time.
		clk.advance(29 * time.Second)
		if got := picks(b, 3000); got[dead.Addr] != 0 {
			t.Errorf("%s: ejected endpoint picked %d times before 30s", p, got[dead.Addr])
		}
		clk.advance(time.Second)
		if got := picks(b, 3000); got[dead.Addr] == 0 {
			t.Errorf("%s: endpoint still out after 30s: %v", p, got)
		}
	}
}

// Ejections grow linearly while an endpoint keeps failing, stop at the
// maximum, and start over after it stayed healthy that long.
func TestEjectionBackOff(t *testing.T) {
	reg, clk := testRegistry(HealthOptions{BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 35 * time.Second})
	b := mustNew(t, ir.LBRoundRobin, reg, "10.0.0.1", "10.0.0.2")
	e := reg.Endpoint("10.0.0.1:8080")
	out := func() bool { return !reg.health.usable(e) }
	for i, want := range []time.Duration{10, 20, 30, 35, 35} {
		if !b.Eject(e) {
			t.Fatalf("ejection %d refused", i+1)
		}
		if b.Eject(e) {
			t.Fatalf("ejection %d: an endpoint already out was ejected again", i+1)
		}
		clk.advance(want*time.Second - time.Millisecond)
		if !out() {
			t.Fatalf("ejection %d ended before %ds", i+1, want)
		}
		clk.advance(time.Millisecond)
		if out() {
			t.Fatalf("ejection %d lasted past %ds", i+1, want)
		}
	}
	clk.advance(36 * time.Second) // healthy for longer than the maximum
	b.Eject(e)
	clk.advance(10 * time.Second)
	if out() {
		t.Fatal("the back-off did not start over after a long healthy period")
	}
}

func TestEjectionShare(t *testing.T) {
	tests := []struct {
		n, pct, want int
	}{
		{4, 0, 2},   // default 50%
		{5, 0, 2},   // rounded down
		{10, 10, 1}, // Envoy's 10%
		{5, 10, 1},  // at least one
		{1, 0, 1},   // a lone endpoint may be out; Pick still returns it
		{3, 100, 3},
	}
	for _, tt := range tests {
		reg, _ := testRegistry(HealthOptions{MaxEjectionPercent: tt.pct})
		addrs := make([]string, tt.n)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("10.0.1.%d", i+1)
		}
		b := mustNew(t, ir.LBRoundRobin, reg, addrs...)
		ejected := 0
		for _, a := range addrs {
			if b.Eject(reg.Endpoint(a + ":8080")) {
				ejected++
			}
		}
		if ejected != tt.want {
			t.Errorf("%d endpoints, %d%%: ejected %d, want %d", tt.n, tt.pct, ejected, tt.want)
		}
	}
}

// Concurrent failures never take more than the share out.
func TestEjectionShareConcurrent(t *testing.T) {
	reg, _ := testRegistry(HealthOptions{})
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	b := mustNew(t, ir.LBLeastRequest, reg, addrs...)
	var ejected atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if b.Eject(reg.Endpoint(addrs[i%len(addrs)] + ":8080")) {
				ejected.Add(1)
			}
		})
	}
	wg.Wait()
	if ejected.Load() != 3 {
		t.Fatalf("ejected %d of 6, want 3", ejected.Load())
	}
}

// When every endpoint is out (a lone endpoint, or endpoints other backends
// ejected), Pick still picks: a request sent may succeed, one refused
// cannot.
func TestPanicModePicksAnyway(t *testing.T) {
	for _, p := range allPolicies {
		reg, _ := testRegistry(HealthOptions{})
		both := mustNew(t, p, reg, "10.0.0.1", "10.0.0.2")
		onlyA := mustNew(t, p, reg, "10.0.0.1")
		onlyB := mustNew(t, p, reg, "10.0.0.2")
		if !onlyA.Eject(reg.Endpoint("10.0.0.1:8080")) || !onlyB.Eject(reg.Endpoint("10.0.0.2:8080")) {
			t.Fatalf("%s: lone endpoints not ejected", p)
		}
		got := picks(both, 2000)
		if len(got) != 2 || got[""] != 0 {
			t.Errorf("%s: panic mode picked %v, want both endpoints", p, got)
		}
		if e := both.Retry(1, reg.Endpoint("10.0.0.1:8080")); e != nil {
			t.Errorf("%s: Retry returned ejected %s", p, e.Addr)
		}
	}
}

// Keys of usable endpoints stay where they were; an ejected endpoint's
// keys spread over the others, each key to one endpoint every time.
func TestMaglevEjectionKeepsOtherKeys(t *testing.T) {
	reg, clk := testRegistry(HealthOptions{})
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8"}
	b := mustNew(t, ir.LBMaglev, reg, addrs...)
	keys := clientKeys(50_000)
	before := make([]*Endpoint, len(keys))
	for i, k := range keys {
		before[i] = b.Pick(k)
	}
	dead := reg.Endpoint("10.0.0.3:8080")
	if !b.Eject(dead) {
		t.Fatal("Eject refused")
	}
	moved := map[string]int{}
	for i, k := range keys {
		e := b.Pick(k)
		switch {
		case e == dead:
			t.Fatalf("key %d picked the ejected endpoint", i)
		case before[i] != dead && e != before[i]:
			t.Fatalf("key %d of usable %s moved to %s", i, before[i].Addr, e.Addr)
		case before[i] == dead:
			moved[e.Addr]++
			if again := b.Pick(k); again != e {
				t.Fatalf("key %d of the ejected endpoint went to %s, then %s", i, e.Addr, again.Addr)
			}
		}
	}
	if len(moved) != len(addrs)-1 {
		t.Errorf("the ejected endpoint's keys went to %d endpoints, want all %d others: %v", len(moved), len(addrs)-1, moved)
	}
	clk.advance(30 * time.Second)
	for i, k := range keys {
		if e := b.Pick(k); e != before[i] {
			t.Fatalf("after the ejection, key %d stays on %s instead of %s", i, e.Addr, before[i].Addr)
		}
	}
}

func TestRetryPicksAnotherEndpoint(t *testing.T) {
	for _, p := range allPolicies {
		reg, _ := testRegistry(HealthOptions{})
		b := mustNew(t, p, reg, "10.0.0.1", "10.0.0.2", "10.0.0.3")
		failed := reg.Endpoint("10.0.0.1:8080")
		seen := map[string]bool{}
		for k := range uint64(300) {
			b.Pick(k) // round robin's retries follow the turns of requests
			e := b.Retry(Hash(string(rune(k))), failed)
			if e == nil || e == failed {
				t.Fatalf("%s: Retry = %v", p, e)
			}
			seen[e.Addr] = true
		}
		if len(seen) != 2 {
			t.Errorf("%s: retries went to %v, want both others", p, seen)
		}
		lone := mustNew(t, p, reg, "10.0.0.1")
		if e := lone.Retry(1, failed); e != nil {
			t.Errorf("%s: Retry on a lone endpoint returned %s", p, e.Addr)
		}
		b.Eject(reg.Endpoint("10.0.0.2:8080"))
		for k := range uint64(100) {
			if e := b.Retry(Hash(string(rune(k))), failed); e == nil || e.Addr != "10.0.0.3:8080" {
				t.Fatalf("%s: with .2 ejected, Retry = %v", p, e)
			}
		}
	}
}

func TestRetryBudget(t *testing.T) {
	reg, _ := testRegistry(HealthOptions{})
	b := mustNew(t, ir.LBRoundRobin, reg, "10.0.0.1", "10.0.0.2")
	// Few requests in flight: the minimum of 3 concurrent retries.
	for i := range 3 {
		if !b.StartRetry() {
			t.Fatalf("retry %d refused below the minimum", i+1)
		}
	}
	if b.StartRetry() {
		t.Fatal("a fourth concurrent retry was allowed with nothing in flight")
	}
	b.EndRetry()
	if !b.StartRetry() {
		t.Fatal("a place given back was not reusable")
	}
	// 50 requests in flight on each endpoint: 20% of 100 is 20.
	for _, a := range []string{"10.0.0.1:8080", "10.0.0.2:8080"} {
		for range 50 {
			reg.Endpoint(a).Acquire()
		}
	}
	n := 3
	for b.StartRetry() {
		n++
		if n > 1000 {
			t.Fatal("budget never ran out")
		}
	}
	if n != 20 {
		t.Fatalf("%d concurrent retries with 100 requests in flight, want 20", n)
	}
}

func TestEjectRefused(t *testing.T) {
	reg, _ := testRegistry(HealthOptions{Disable: true})
	b := mustNew(t, ir.LBRoundRobin, reg, "10.0.0.1", "10.0.0.2")
	if b.Eject(reg.Endpoint("10.0.0.1:8080")) {
		t.Error("Eject worked with health checking off")
	}
	reg2, _ := testRegistry(HealthOptions{})
	b2 := mustNew(t, ir.LBRoundRobin, reg2, "10.0.0.1", "10.0.0.2")
	if b2.Eject(reg2.Endpoint("10.9.9.9:8080")) || b2.Eject(nil) {
		t.Error("Eject took an endpoint the balancer does not have")
	}
}

// Passing over ejected endpoints costs no allocation either.
func TestPickWithEjectedDoesNotAllocate(t *testing.T) {
	for _, p := range allPolicies {
		reg, _ := testRegistry(HealthOptions{})
		b := mustNew(t, p, reg, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
		b.Eject(reg.Endpoint("10.0.0.2:8080"))
		b.Eject(reg.Endpoint("10.0.0.3:8080"))
		key := uint64(0)
		if n := testing.AllocsPerRun(1000, func() { key++; b.Pick(key); b.Retry(key, nil) }); n != 0 {
			t.Errorf("%s: Pick with ejected endpoints allocates %v times", p, n)
		}
	}
}

// Ejections live on the shared Endpoint: a reload's new balancer, and
// another backend naming the same address, pass over it too.
func TestEjectionOutlivesReload(t *testing.T) {
	reg, _ := testRegistry(HealthOptions{})
	old := mustNew(t, ir.LBRoundRobin, reg, "10.0.0.1", "10.0.0.2")
	if !old.Eject(reg.Endpoint("10.0.0.1:8080")) {
		t.Fatal("Eject refused")
	}
	for _, p := range allPolicies {
		b := mustNew(t, p, reg, "10.0.0.1", "10.0.0.2", "10.0.0.3")
		if got := picks(b, 1000); got["10.0.0.1:8080"] != 0 {
			t.Errorf("%s built after the ejection picked the ejected endpoint %d times", p, got["10.0.0.1:8080"])
		}
	}
}

package router

import (
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

func TestPickBackendWeights(t *testing.T) {
	r := ir.Route{Name: "r", Match: prefix("/"), Backends: []ir.Backend{
		backend("a", 1, 1001),
		{Name: "bad", Weight: 2, Invalid: true},
		backend("zero", 0, 1003),
		backend("c", 7, 1004),
		{Name: "empty", Weight: 10},
	}}
	tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{r}}}})
	rt := tbl.Match(&Request{Path: "/"})
	// Draws 0..total-1 hit each backend exactly weight times.
	counts := map[string]int{}
	for d := uint64(0); d < 20; d++ {
		counts[rt.PickBackend(d).Name]++
	}
	want := map[string]int{"a": 1, "bad": 2, "c": 7, "empty": 10}
	for name, n := range want {
		if counts[name] != n {
			t.Errorf("backend %q picked %d times of 20, want %d (all: %v)", name, counts[name], n, counts)
		}
	}
	if counts["zero"] != 0 {
		t.Errorf("weight-0 backend picked %d times", counts["zero"])
	}
	// The draw wraps around the total.
	if got := rt.PickBackend(20).Name; got != "a" {
		t.Errorf("draw 20 picked %q, want a", got)
	}
	if got := rt.PickBackend(^uint64(0)).Name; got == "" {
		t.Error("max draw picked nothing")
	}

	var bad, empty *Backend
	for _, b := range rt.Backends() {
		switch b.Name {
		case "bad":
			bad = b
		case "empty":
			empty = b
		}
	}
	if !bad.Invalid || bad.Pick(&Request{}) != nil {
		t.Error("invalid backend must be marked and have no endpoint")
	}
	if empty.Invalid || empty.Pick(&Request{}) != nil {
		t.Error("backend without endpoints must be valid and pick nil (503)")
	}
}

func TestPickBackendNone(t *testing.T) {
	for name, backends := range map[string][]ir.Backend{
		"no backends":  nil,
		"all weight 0": {backend("a", 0, 1), backend("b", 0, 2)},
	} {
		r := ir.Route{Name: "r", Match: prefix("/"), Backends: backends}
		rt := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{r}}}}).Match(&Request{Path: "/"})
		if b := rt.PickBackend(3); b != nil {
			t.Errorf("%s: picked %q, want nil", name, b.Name)
		}
	}
}

func TestBackendPickEndpoint(t *testing.T) {
	eps := []ir.Endpoint{{Address: "10.0.0.1", Port: 80}, {Address: "10.0.0.2", Port: 80}, {Address: "10.0.0.3", Port: 80}}
	reg := lb.NewRegistry()
	r := ir.Route{Name: "r", Match: prefix("/"), Backends: []ir.Backend{
		{Name: "mg", Weight: 1, Endpoints: eps, Policy: ir.LBMaglev, HashHeader: "x-user", AppProtocol: "h2c"},
	}}
	tbl, err := Compile(&ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{r}}}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	b := tbl.Match(&Request{Path: "/"}).PickBackend(0)
	if !b.H2C {
		t.Error("appProtocol h2c not compiled into H2C")
	}
	// The same header value always reaches the same endpoint, whatever the
	// client address; without the header the client address decides.
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		user := string(rune('a' + i%26))
		first := b.Pick(&Request{ClientIP: "192.0.2.1", Header: hdr("X-User", user)})
		again := b.Pick(&Request{ClientIP: "192.0.2.99", Header: hdr("X-User", user)})
		if first != again {
			t.Fatalf("user %q went to %s then %s", user, first.Addr, again.Addr)
		}
		if reg.Endpoint(first.Addr) != first {
			t.Fatalf("endpoint %s not shared through the registry", first.Addr)
		}
		seen[first.Addr] = true
		c1 := b.Pick(&Request{ClientIP: "198.51.100." + user})
		if c2 := b.Pick(&Request{ClientIP: "198.51.100." + user}); c1 != c2 {
			t.Fatalf("client %q went to %s then %s", user, c1.Addr, c2.Addr)
		}
	}
	if len(seen) < 2 {
		t.Errorf("26 users all hashed to %v", seen)
	}
}

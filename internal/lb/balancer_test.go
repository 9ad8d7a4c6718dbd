package lb

import (
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func irEndpoints(addrs ...string) []ir.Endpoint {
	out := make([]ir.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = ir.Endpoint{Address: a, Port: 8080}
	}
	return out
}

func TestNewPolicies(t *testing.T) {
	eps := irEndpoints("10.0.0.1", "10.0.0.2", "10.0.0.3")
	tests := []struct {
		policy ir.LBPolicy
		check  func(Balancer) bool
	}{
		{"", func(b Balancer) bool { _, ok := b.(*roundRobin); return ok }},
		{ir.LBRoundRobin, func(b Balancer) bool { _, ok := b.(*roundRobin); return ok }},
		{ir.LBLeastRequest, func(b Balancer) bool { _, ok := b.(*leastRequest); return ok }},
		{ir.LBMaglev, func(b Balancer) bool {
			m, ok := b.(*Maglev)
			return ok && m.size == DefaultMaglevTableSize
		}},
	}
	for _, tt := range tests {
		b, err := New(tt.policy, eps, NewRegistry())
		if err != nil {
			t.Fatalf("New(%q): %v", tt.policy, err)
		}
		if !tt.check(b) {
			t.Errorf("New(%q) built %T", tt.policy, b)
		}
		seen := map[string]bool{}
		for k := range uint64(3000) {
			seen[b.Pick(Hash(string(rune(k)))).Addr] = true
		}
		if len(seen) != 3 {
			t.Errorf("New(%q): picked %v, want all three endpoints", tt.policy, seen)
		}
	}
}

func TestNewEmptyPicksNil(t *testing.T) {
	for _, p := range []ir.LBPolicy{"", ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev} {
		b, err := New(p, nil, NewRegistry())
		if err != nil {
			t.Fatalf("New(%q, no endpoints): %v", p, err)
		}
		if e := b.Pick(42); e != nil {
			t.Errorf("New(%q, no endpoints).Pick = %s, want nil", p, e.Addr)
		}
	}
}

// Endpoints are shared through the registry, so a request counted by one
// config generation is visible to the next one (a reload does not reset it).
func TestNewSharesEndpointsAcrossReloads(t *testing.T) {
	reg := NewRegistry()
	eps := irEndpoints("10.0.0.1", "10.0.0.2")
	old, err := New(ir.LBLeastRequest, eps, reg)
	if err != nil {
		t.Fatal(err)
	}
	held := old.Pick(0)
	for range 5 {
		held.Acquire()
	}
	reloaded, err := New(ir.LBLeastRequest, eps, reg)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if e := reloaded.Pick(0); e == held {
			t.Fatalf("reloaded balancer picked %s, which holds 5 requests from the old one", e.Addr)
		}
	}
	other, err := New(ir.LBMaglev, eps[:1], reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.Pick(1); got != reg.Endpoint("10.0.0.1:8080") {
		t.Fatal("a second route did not get the registry's endpoint")
	}
}

func TestNewAddressesAndDuplicates(t *testing.T) {
	eps := []ir.Endpoint{
		{Address: "::1", Port: 80},
		{Address: "0:0::1", Port: 80, Weight: 9}, // same address, other spelling
		{Address: "10.1.2.3", Port: 443, Weight: 2},
		{Address: "Backend.Example", Port: 8080},
	}
	reg := NewRegistry()
	b, err := New(ir.LBMaglev, eps, reg)
	if err != nil {
		t.Fatal(err)
	}
	m := b.(*Maglev)
	var addrs []string
	for _, e := range m.eps {
		addrs = append(addrs, e.Addr)
	}
	if got, want := strings.Join(addrs, " "), "10.1.2.3:443 [::1]:80 backend.example:8080"; got != want {
		t.Fatalf("endpoints %q, want %q", got, want)
	}
	// The duplicate's weight 9 is ignored: [::1]:80 keeps weight 1, half of 10.1.2.3's.
	slots := map[string]int{}
	for _, idx := range m.table {
		slots[m.eps[idx].Addr]++
	}
	if r := float64(slots["10.1.2.3:443"]) / float64(slots["[::1]:80"]); r < 1.98 || r > 2.02 {
		t.Errorf("weight ratio %.3f, want 2 (slots %v)", r, slots)
	}
	if reg.Len() != 3 {
		t.Errorf("registry holds %d endpoints, want 3", reg.Len())
	}
}

func TestNewNilRegistry(t *testing.T) {
	b, err := New(ir.LBRoundRobin, irEndpoints("10.0.0.1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := b.Pick(0); e == nil || e.Addr != "10.0.0.1:8080" {
		t.Fatalf("Pick = %v", e)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		policy ir.LBPolicy
		eps    []ir.Endpoint
		want   string
	}{
		{"unknown policy", "Random", irEndpoints("10.0.0.1"), `unknown load balancing policy "Random"`},
		{"port zero", "", []ir.Endpoint{{Address: "10.0.0.1"}}, `endpoint 0: address "10.0.0.1": port 0 out of range`},
		{"port too big", "", []ir.Endpoint{{Address: "10.0.0.1", Port: 8080}, {Address: "10.0.0.2", Port: 70000}}, "endpoint 1: "},
		{"empty address", ir.LBMaglev, []ir.Endpoint{{Port: 80}}, `address "": neither an IP address nor a DNS name`},
		{"address with port", "", []ir.Endpoint{{Address: "10.0.0.1:80", Port: 80}}, "neither an IP address nor a DNS name"},
		{"bracketed", "", []ir.Endpoint{{Address: "[::1]", Port: 80}}, "neither an IP address nor a DNS name"},
		{"bad label", "", []ir.Endpoint{{Address: "-a.example", Port: 80}}, "neither an IP address nor a DNS name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.policy, tt.eps, NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want error containing %q", b, err, tt.want)
			}
		})
	}
}

func TestFormatAddr(t *testing.T) {
	tests := []struct {
		host string
		port uint32
		want string
	}{
		{"10.0.0.1", 8080, "10.0.0.1:8080"},
		{"::1", 80, "[::1]:80"},
		{"2001:DB8::0001", 443, "[2001:db8::1]:443"},
		{"fe80::1%eth0", 80, "[fe80::1%eth0]:80"},
		{"svc.ns.svc.cluster.local.", 53, "svc.ns.svc.cluster.local.:53"},
		{"localhost", 65535, "localhost:65535"},
	}
	for _, tt := range tests {
		got, err := FormatAddr(tt.host, tt.port)
		if err != nil || got != tt.want {
			t.Errorf("FormatAddr(%q, %d) = %q, %v; want %q", tt.host, tt.port, got, err, tt.want)
		}
	}
}

// Pick is on the request path: none of the policies may allocate.
func TestPickDoesNotAllocate(t *testing.T) {
	for _, p := range []ir.LBPolicy{ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev} {
		b, err := New(p, irEndpoints("10.0.0.1", "10.0.0.2", "10.0.0.3"), NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		key := uint64(0)
		if n := testing.AllocsPerRun(1000, func() { key++; b.Pick(key) }); n != 0 {
			t.Errorf("%s Pick allocates %v times", p, n)
		}
	}
}

package observe

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// node is a kind-like node: its own uplink is a veth (the node is a
// container), pods hang off veths with /32 routes (kindnet, Calico), a
// bridge holds flannel-style pods, docker0 holds non-pod containers.
func node() []linkDesc {
	return []linkDesc{
		{Name: "lo", Index: 1, Type: "device", Loopback: true, Routes: pfx("127.0.0.0/8")},
		{Name: "eth0", Index: 2, Type: "veth", Uplink: true, Routes: pfx("172.18.0.0/16")},
		{Name: "ens5", Index: 3, Type: "device", Uplink: true},
		{Name: "veth1a2b", Index: 10, Type: "veth", Routes: pfx("10.244.1.5/32")},
		{Name: "cali77", Index: 11, Type: "veth", Routes: pfx("10.244.1.6/32", "fd00:10:244:1::6/128")},
		{Name: "cni0", Index: 12, Type: "bridge", Routes: pfx("10.244.1.0/24")},
		{Name: "vethbr1", Index: 13, Type: "veth", Master: 12},
		{Name: "docker0", Index: 14, Type: "bridge", Routes: pfx("172.17.0.0/16")},
		{Name: "vethdock", Index: 15, Type: "veth", Master: 14},
		{Name: "lxc42", Index: 16, Type: "veth"},
		{Name: "wide", Index: 17, Type: "veth", Routes: pfx("10.0.0.0/8")},
		{Name: "dummy0", Index: 18, Type: "dummy", Routes: pfx("10.244.1.7/32")},
	}
}

func selectedNames(t *testing.T, entries []string, cidrs []netip.Prefix, links []linkDesc) []string {
	t.Helper()
	s, err := parseSelector(entries, cidrs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range s.plan(links, nil, 1<<20).attach {
		got = append(got, l.Name)
	}
	slices.Sort(got)
	return got
}

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		cidrs   []netip.Prefix
		want    []string
	}{
		// auto: every veth but the uplink; never lo, a NIC, a bridge or
		// a dummy.
		{"auto", []string{"auto"}, nil, []string{"cali77", "lxc42", "veth1a2b", "vethbr1", "vethdock", "wide"}},
		// The pod CIDR keeps veths routed into it, directly or through
		// their bridge; docker's veth, Cilium's unrouted lxc and a veth
		// whose route is wider than the CIDR go.
		{"auto in pod CIDR", []string{"auto"}, pfx("10.244.0.0/16"), []string{"cali77", "veth1a2b", "vethbr1"}},
		{"auto in IPv6 pod CIDR", []string{"auto"}, pfx("fd00:10:244::/48"), []string{"cali77"}},
		{"auto in either family", []string{"auto"}, pfx("10.244.1.5/32", "fd00:10:244::/48"), []string{"cali77", "veth1a2b"}},
		// Patterns go by name only: the uplink is taken if named so.
		{"patterns", []string{"cali*", "lxc*", "eth?"}, nil, []string{"cali77", "eth0", "lxc42"}},
		{"pattern in pod CIDR", []string{"veth*"}, pfx("10.244.0.0/16"), []string{"veth1a2b", "vethbr1"}},
		// Exact names are taken whatever they are, and never narrowed.
		{"names", []string{"lo", "eth0", "docker0"}, nil, []string{"docker0", "eth0", "lo"}},
		{"names with auto and CIDR", []string{"ens5", "auto"}, pfx("10.244.0.0/16"), []string{"cali77", "ens5", "veth1a2b", "vethbr1"}},
		{"nothing matches", []string{"nope*"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectedNames(t, tc.entries, tc.cidrs, node()); !slices.Equal(got, tc.want) {
				t.Errorf("selected %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAutoNeverTakesUplinkOrLoopback: a veth holding the default route
// (the node's own eth0 when the node is a container) and loopback are not
// pods, even when named like one.
func TestAutoNeverTakesUplinkOrLoopback(t *testing.T) {
	links := []linkDesc{
		{Name: "veth0", Index: 2, Type: "veth", Uplink: true, Routes: pfx("10.244.1.0/24")},
		{Name: "lo", Index: 1, Type: "veth", Loopback: true},
		{Name: "veth9", Index: 9, Type: "veth"},
	}
	if got := selectedNames(t, []string{"auto"}, nil, links); !slices.Equal(got, []string{"veth9"}) {
		t.Errorf("auto selected %v, want only veth9", got)
	}
	if got := selectedNames(t, []string{"auto"}, pfx("10.244.0.0/16"), links); len(got) != 0 {
		t.Errorf("auto with the pod CIDR selected %v: the uplink routes into it but is not a pod", got)
	}
}

func TestPlan(t *testing.T) {
	s, err := parseSelector([]string{"ens5", "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	links := node()
	// 10 and 11 attached; 99 was attached and its link is gone; 3 (ens5)
	// is named; lo (1) was attached and is no longer selected.
	attached := map[int]bool{10: true, 11: true, 99: true, 1: true}
	p := s.plan(links, attached, 5)
	if !slices.Equal(p.detach, []int{1, 99}) || !slices.Equal(p.gone, []int{99}) {
		t.Errorf("detach %v gone %v, want [1 99] and [99]", p.detach, p.gone)
	}
	// Room for 3 beside the two kept: the named ens5 first, then the
	// oldest links.
	var att, ref []int
	for _, l := range p.attach {
		att = append(att, l.Index)
	}
	for _, l := range p.refused {
		ref = append(ref, l.Index)
	}
	if !slices.Equal(att, []int{3, 13, 15}) || !slices.Equal(ref, []int{16, 17}) {
		t.Errorf("attach %v refused %v, want [3 13 15] and [16 17]", att, ref)
	}
	// Attached links keep their place even when the cap is lower.
	p = s.plan(links, map[int]bool{10: true, 11: true, 13: true}, 2)
	if len(p.attach) != 0 || len(p.detach) != 0 || len(p.refused) != 4 {
		t.Errorf("over the cap: attach %v detach %v refused %d, want nothing moved and 4 refused", p.attach, p.detach, len(p.refused))
	}
}

func TestSelectorConfig(t *testing.T) {
	for _, tc := range []struct {
		name       string
		adjust     func(*Config)
		wantErrSub string // empty: valid
	}{
		{"auto", func(c *Config) { c.Interfaces = []string{"auto"} }, ""},
		{"auto with pod CIDRs", func(c *Config) { c.Interfaces = []string{"auto"}; c.PodCIDRs = []string{"10.244.0.0/16", "fd00::/48"} }, ""},
		{"bad pattern", func(c *Config) { c.Interfaces = []string{"veth[*"} }, `interface pattern "veth[*"`},
		{"bad CIDR", func(c *Config) { c.Interfaces = []string{"auto"}; c.PodCIDRs = []string{"10.244.0.0"} }, `pod-cidr "10.244.0.0"`},
		{"CIDR without discovery", func(c *Config) { c.Interfaces = []string{"eth0"}; c.PodCIDRs = []string{"10.0.0.0/8"} }, "narrows patterns"},
		{"auto with xdp", func(c *Config) { c.Interfaces = []string{"auto"}; c.Mode = "xdp" }, "mode xdp with -interface auto"},
		{"auto and a name with xdp", func(c *Config) { c.Interfaces = []string{"eth0", "auto"}; c.Mode = "xdp" }, "mode xdp with -interface auto"},
		// A pattern may match every leg traffic enters by: the runtime
		// one-way check judges it.
		{"pattern with xdp", func(c *Config) { c.Interfaces = []string{"veth*"}; c.Mode = "xdp" }, ""},
		{"one name with xdp", func(c *Config) { c.Interfaces = []string{"eth0"}; c.Mode = "xdp" }, "XDP sees only packets entering"},
		{"cap", func(c *Config) { c.Interfaces = []string{"auto"}; c.MaxInterfaces = 0 }, "max-interfaces 0"},
		{"names over the cap", func(c *Config) { c.Interfaces = []string{"a", "b", "c"}; c.MaxInterfaces = 2 }, "3 interfaces named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.adjust(&c)
			err := c.Validate()
			switch {
			case tc.wantErrSub == "" && err != nil:
				t.Errorf("Validate: %v, want valid", err)
			case tc.wantErrSub != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrSub)):
				t.Errorf("Validate: %v, want an error with %q", err, tc.wantErrSub)
			}
		})
	}
}

func TestRouteDst(t *testing.T) {
	mk := func(s string) *net.IPNet {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		in   *net.IPNet
		want string
		def  bool
	}{
		{nil, "invalid Prefix", true},
		{mk("0.0.0.0/0"), "invalid Prefix", true},
		{mk("::/0"), "invalid Prefix", true},
		{mk("10.244.1.5/32"), "10.244.1.5/32", false},
		{&net.IPNet{IP: net.ParseIP("10.244.1.9").To4(), Mask: net.CIDRMask(24, 32)}, "10.244.1.0/24", false},
		{mk("fd00:10:244:1::6/128"), "fd00:10:244:1::6/128", false},
	} {
		got, def := routeDst(tc.in)
		if got.String() != tc.want || def != tc.def {
			t.Errorf("routeDst(%v) = %v, %v; want %s, %v", tc.in, got, def, tc.want, tc.def)
		}
	}
}

// TestGoneQueueBounded: deletions wait for the pipeline's tick in a
// bounded queue.
func TestGoneQueueBounded(t *testing.T) {
	var g goneLinks
	for i := range maxGoneQueued + 10 {
		g.push(i + 1)
	}
	got := g.take(nil)
	if len(got) != maxGoneQueued || got[0] != 1 {
		t.Fatalf("took %d (first %d), want the first %d", len(got), got[0], maxGoneQueued)
	}
	if again := g.take(nil); len(again) != 0 {
		t.Errorf("the queue kept %d after take", len(again))
	}
}

package devcluster

import (
	"strings"
	"testing"

	"github.com/false-systems/rauta/test/devcluster/node"
)

func TestOptionsRangeDefaults(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		svc, lbPool string
	}{
		{name: "no node", opts: Options{}, svc: "10.96.0.0/24", lbPool: "127.0.200.0/24"},
		{name: "default pod CIDR", opts: Options{Node: &node.Config{}}, svc: "10.96.0.0/24", lbPool: "127.0.200.0/24"},
		// Test clusters pick their own pod CIDRs; their Service ranges and pools follow, so
		// they can run side by side without naming them.
		{name: "pod CIDR of a test", opts: Options{Node: &node.Config{PodCIDR: "10.244.203.0/24"}}, svc: "10.96.203.0/24", lbPool: "127.0.203.0/24"},
		{name: "explicit", opts: Options{ServiceCIDR: "10.97.0.0/16", LoadBalancerCIDR: "127.1.0.0/24", Node: &node.Config{PodCIDR: "10.244.203.0/24"}}, svc: "10.97.0.0/16", lbPool: "127.1.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts.withDefaults()
			if o.ServiceCIDR != tt.svc || o.LoadBalancerCIDR != tt.lbPool {
				t.Errorf("got %s and %s, want %s and %s", o.ServiceCIDR, o.LoadBalancerCIDR, tt.svc, tt.lbPool)
			}
			if err := o.validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOptionsRangesMustNotOverlap(t *testing.T) {
	for _, o := range []Options{
		{ServiceCIDR: "10.244.0.0/16", Node: &node.Config{}},
		{LoadBalancerCIDR: "10.244.0.128/25", Node: &node.Config{}},
		{ServiceCIDR: "127.0.200.0/23"},
		{ServiceCIDR: "fd00::/108"},
		{LoadBalancerCIDR: "nonsense"},
	} {
		if err := o.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "options:") {
			t.Errorf("%+v: %v, want an options error", o, err)
		}
	}
}

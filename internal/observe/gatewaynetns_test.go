package observe

import "testing"

// TestGatewayNetnsPattern: a -gateway-netns with glob characters is a
// pattern of namespaces (join.Discover), checked at start; a plain path
// is not one.
func TestGatewayNetnsPattern(t *testing.T) {
	c := Defaults()
	c.Interfaces, c.GatewayAdmin = []string{"eth0"}, []string{"http://127.0.0.1:19000"}
	for _, p := range []string{"/var/run/netns/cni-*", "/run/netns/gw-?"} {
		if c.GatewayNetns = p; !gatewayNetnsPattern(p) || c.Validate() != nil {
			t.Errorf("%s: pattern %v, validate %v", p, gatewayNetnsPattern(p), c.Validate())
		}
	}
	if gatewayNetnsPattern("/proc/4242/ns/net") {
		t.Error("a plain path taken for a pattern")
	}
	c.GatewayNetns = "/var/run/netns/[cni-*"
	if err := c.Validate(); err == nil {
		t.Error("a malformed pattern passed")
	}
	c.GatewayNetns, c.GatewayNetnsMax = "/var/run/netns/cni-*", 0
	if err := c.Validate(); err == nil {
		t.Error("gateway-netns-max 0 passed")
	}
}

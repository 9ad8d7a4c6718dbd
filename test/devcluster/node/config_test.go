package node

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestConfigValidate(t *testing.T) {
	base := Config{
		StateDir:       "/tmp/x",
		NodeClient:     &rest.Config{},
		BinderClient:   &rest.Config{},
		ServingCertPEM: []byte("c"), ServingKeyPEM: []byte("k"), ClientCAPEM: []byte("ca"),
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad cidr", func(c *Config) { c.PodCIDR = "10.244.0.0/33" }, "PodCIDR"},
		{"host bits", func(c *Config) { c.PodCIDR = "10.244.0.1/24" }, "host bits"},
		{"ipv6", func(c *Config) { c.PodCIDR = "fd00::/64" }, "IPv4"},
		{"too small", func(c *Config) { c.PodCIDR = "10.244.0.0/30" }, "prefix length"},
		{"long bridge", func(c *Config) { c.Bridge = "toolong0" }, "Bridge"},
		{"bridge chars", func(c *Config) { c.Bridge = "br-0" }, "Bridge"},
		{"no state dir", func(c *Config) { c.StateDir = "" }, "StateDir"},
		{"no clients", func(c *Config) { c.BinderClient = nil }, "BinderClient"},
		{"bad image", func(c *Config) { c.Images = []ImageMapping{{Repository: "x"}} }, "Images[0]"},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		_, err := c.WithDefaults().validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want one naming %q", tt.name, err, tt.wantErr)
		}
	}
}

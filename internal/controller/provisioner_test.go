package controller

import (
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/configstream"
)

// TestMayRead: a data plane's ServiceAccount reads its own Gateway only:
// not a Gateway of the same name elsewhere, not a neighbour's.
func TestMayRead(t *testing.T) {
	id := configstream.Identity{Namespace: "apps", ServiceAccount: "rauta-web"}
	for gateway, want := range map[string]bool{
		"apps/web":   true,
		"other/web":  false,
		"apps/web2":  false,
		"apps/":      false,
		"web":        false,
		"apps/rauta": false,
	} {
		if got := mayRead(id, gateway); got != want {
			t.Errorf("mayRead(%+v, %q) = %v, want %v", id, gateway, got, want)
		}
	}
}

func TestProvisionerFlagsRequired(t *testing.T) {
	err := Run(t.Context(), Config{Provisioner: ProvisionerKubernetes}, nil)
	if err == nil {
		t.Fatal("the kubernetes provisioner ran without a namespace, Service, listen address or image")
	}
	if err := Run(t.Context(), Config{Provisioner: "bogus"}, nil); err == nil {
		t.Fatal("an unknown provisioner was accepted")
	}
}

func TestUnassigned(t *testing.T) {
	ip := gwv1.IPAddressType
	host := gwv1.HostnameAddressType
	gw := &gwv1.Gateway{Spec: gwv1.GatewaySpec{Addresses: []gwv1.GatewaySpecAddress{
		{Type: &ip, Value: "127.0.200.5"}, {Value: ""}, {Type: &host, Value: "example.com"},
	}}}
	if got := unassigned(gw, []gwv1.GatewayStatusAddress{{Type: &ip, Value: "127.0.200.5"}}); got != "" {
		t.Errorf("assigned address reported unassigned: %q", got)
	}
	if got := unassigned(gw, []gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.96.0.7"}}); got != "127.0.200.5" {
		t.Errorf("unassigned = %q, want 127.0.200.5 (a ClusterIP is not the address asked for)", got)
	}
}

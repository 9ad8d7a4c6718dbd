package controller

import (
	"testing"

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

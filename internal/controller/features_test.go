package controller

import (
	"sort"
	"testing"

	"sigs.k8s.io/gateway-api/pkg/features"
)

func TestStatusFeaturesSortedAndComplete(t *testing.T) {
	claimed := SupportedFeatures(ProvisionerKubernetes)
	got := StatusFeatures(claimed)
	if len(got) != len(claimed) {
		t.Fatalf("%d status features for %d claimed", len(got), len(claimed))
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Name < got[j].Name }) {
		t.Errorf("status features not sorted by name: %v", got)
	}
	// Every core feature of the GATEWAY-HTTP profile must be claimed.
	have := make(map[features.FeatureName]bool)
	for _, f := range claimed {
		have[f] = true
	}
	for _, core := range []features.FeatureName{features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant} {
		if !have[core] {
			t.Errorf("core feature %s not claimed", core)
		}
	}
}

// TestInProcessClaimsLess: the in-process shape has no per-Gateway objects,
// so it must not claim infrastructure metadata or requested addresses.
func TestInProcessClaimsLess(t *testing.T) {
	for _, f := range SupportedFeatures(ProvisionerInProcess) {
		switch f {
		case features.SupportGatewayInfrastructure, features.SupportGatewayAddressEmpty, features.SupportGatewayStaticAddresses:
			t.Errorf("the in-process shape claims %s", f)
		}
	}
	if len(SupportedFeatures(ProvisionerKubernetes)) <= len(SupportedFeatures(ProvisionerInProcess)) {
		t.Error("the kubernetes provisioner claims no more than the in-process shape")
	}
}

package controller

import (
	"sort"
	"testing"

	"sigs.k8s.io/gateway-api/pkg/features"
)

func TestStatusFeaturesSortedAndComplete(t *testing.T) {
	claimed := SupportedFeatures()
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

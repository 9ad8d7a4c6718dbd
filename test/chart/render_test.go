package chart_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRenderedObjects pins the object list of each shape of the chart, so an
// object that goes missing (or appears) is a deliberate change.
func TestRenderedObjects(t *testing.T) {
	base := []string{
		"ServiceAccount rauta-system/rauta",
		"ClusterRole rauta-controller",
		"ClusterRoleBinding rauta-controller",
		"Role rauta-system/rauta-controller",
		"RoleBinding rauta-system/rauta-controller",
		"GatewayClass rauta",
	}
	provisioner := []string{
		"Service rauta-system/rauta-controller",
		"Deployment rauta-system/rauta-controller",
		"GatewayParameters rauta-system/rauta-default",
	}
	observer := []string{
		"ServiceAccount rauta-system/rauta-observer",
		"ClusterRole rauta-observer",
		"ClusterRoleBinding rauta-observer",
		"DaemonSet rauta-system/rauta-observer",
	}
	cases := []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"default", nil, concat(base, provisioner)},
		{"every optional part", allOptional(), concat(base, provisioner, observer, []string{
			"PodDisruptionBudget rauta-system/rauta-controller",
			"ServiceMonitor rauta-system/rauta-controller",
			"PodMonitor rauta-system/rauta-dataplane",
			"PrometheusRule rauta-system/rauta",
			"ConfigMap monitoring/rauta-dashboard-gateway",
			"ConfigMap monitoring/rauta-dashboard-observer",
			"Role team-a/rauta-secrets",
			"RoleBinding team-a/rauta-secrets",
			"Role team-b/rauta-secrets",
			"RoleBinding team-b/rauta-secrets",
		})},
		{"node mode", nodeModeValues(true), concat(base, observer, []string{
			"DaemonSet rauta-system/rauta-node",
			"PodMonitor rauta-system/rauta-dataplane",
		})},
		{"observer with enrichment off", map[string]any{"observer": map[string]any{"enabled": true, "kube": "off"}}, concat(base, provisioner, []string{
			"ServiceAccount rauta-system/rauta-observer",
			"DaemonSet rauta-system/rauta-observer",
		})},
		{"observer in its own namespace", map[string]any{"observer": map[string]any{"enabled": true, "namespace": "rauta-observer"}}, concat(base, provisioner, []string{
			"ServiceAccount rauta-observer/rauta-observer",
			"ClusterRole rauta-observer",
			"ClusterRoleBinding rauta-observer",
			"DaemonSet rauta-observer/rauta-observer",
		})},
		{"no GatewayClass, one replica with PDB enabled", map[string]any{"gatewayClass": map[string]any{"create": false}}, concat(base[:len(base)-1], provisioner)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRender(t, tc.vals).keys()
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rendered objects (-want +got):\n%s", diff)
			}
		})
	}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestNames: a release not named "rauta" prefixes every name, and the
// controller Service name passed to the controller follows.
func TestNames(t *testing.T) {
	r := mustRender(t, map[string]any{"fullnameOverride": "edge"})
	for _, k := range r.keys() {
		if strings.HasPrefix(k, "GatewayClass ") {
			continue
		}
		if !strings.Contains(k, "/edge") && !strings.Contains(k, " edge") {
			t.Errorf("%s: not named after fullnameOverride edge", k)
		}
	}
	d := controllerDeployment(t, r, "edge-controller")
	if got := flagValue(t, d.Spec.Template.Spec.Containers[0].Args, "-controller-service"); got != "edge-controller" {
		t.Errorf("-controller-service=%q, want edge-controller (the rendered Service)", got)
	}
}

// TestNotes: NOTES tell how to reach a first Gateway.
func TestNotes(t *testing.T) {
	notes := mustRender(t, nil).notes
	for _, want := range []string{"gatewayClassName: rauta", "kubectl wait gateway/demo --for=condition=Programmed", "status.addresses[0].value", "curl", "deployment/rauta-controller"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
	notes = mustRender(t, nodeModeValues(false)).notes
	if !strings.Contains(notes, "daemonset/rauta-node") || !strings.Contains(notes, "8080") {
		t.Errorf("node mode NOTES.txt lacks the DaemonSet or the offset port:\n%s", notes)
	}
}

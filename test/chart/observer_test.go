package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestObserverDiscoversInterfaces (issue 16 point 9): the observer
// DaemonSet needs no interface list; by default it follows every pod's
// veth (-interface=auto), and the pod CIDRs and the cap reach its flags
// when set. A list of names still renders as before.
func TestObserverDiscoversInterfaces(t *testing.T) {
	args := func(vals map[string]any) []string {
		t.Helper()
		obs := map[string]any{"enabled": true}
		for k, v := range vals {
			obs[k] = v
		}
		r := mustRender(t, map[string]any{"observer": obs})
		return find[*appsv1.DaemonSet](t, r, "rauta-observer").Spec.Template.Spec.Containers[0].Args
	}
	def := args(nil)
	if got := flagValue(t, def, "-interface"); got != "auto" {
		t.Errorf("-interface=%q by default, want auto", got)
	}
	if got := flagValue(t, def, "-max-interfaces"); got != "1024" {
		t.Errorf("-max-interfaces=%q by default, want 1024", got)
	}
	if slices.ContainsFunc(def, func(a string) bool { return strings.HasPrefix(a, "-pod-cidr") }) {
		t.Errorf("-pod-cidr passed without podCIDRs: %q", def)
	}
	set := args(map[string]any{"podCIDRs": []any{"10.244.0.0/16", "fd00:10:244::/56"}, "maxInterfaces": 300})
	if got := flagValue(t, set, "-pod-cidr"); got != "10.244.0.0/16,fd00:10:244::/56" {
		t.Errorf("-pod-cidr=%q", got)
	}
	if got := flagValue(t, set, "-max-interfaces"); got != "300" {
		t.Errorf("-max-interfaces=%q, want 300", got)
	}
	named := args(map[string]any{"interfaces": []any{"eth0", "cali*"}})
	if got := flagValue(t, named, "-interface"); got != "eth0,cali*" {
		t.Errorf("-interface=%q, want eth0,cali*", got)
	}
	if _, err := renderChart(t, map[string]any{"observer": map[string]any{"enabled": true, "podCIDRs": []any{"not-a-cidr"}}}); err == nil {
		t.Error("a podCIDRs entry that is no CIDR rendered; the schema should refuse it")
	}
}

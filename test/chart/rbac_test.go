package chart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// grant is one (apiGroup, resource, verb) a role allows, in namespace ns
// ("" for cluster-wide).
type grant struct{ ns, group, resource, verb string }

// grants flattens every Role and ClusterRole bound to the subject
// namespace/name into its grants; it fails on wildcards, resourceNames it
// cannot read, and bindings to roles that are not rendered.
func grants(t *testing.T, r rendered, saNamespace, saName string) map[grant]bool {
	t.Helper()
	roles := map[string][]rbacv1.PolicyRule{}
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		roles["ClusterRole/"+cr.Name] = cr.Rules
	}
	for _, role := range all[*rbacv1.Role](r) {
		roles[role.Namespace+"/Role/"+role.Name] = role.Rules
	}
	bound := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Namespace == saNamespace && s.Name == saName
		})
	}
	out := map[grant]bool{}
	add := func(ns, roleKey string) {
		rules, ok := roles[roleKey]
		if !ok {
			t.Errorf("binding to %s, which is not rendered", roleKey)
		}
		for _, rule := range rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						if g == "*" || res == "*" || v == "*" {
							t.Errorf("%s: wildcard in rule %+v", roleKey, rule)
						}
						out[grant{ns, g, res, v}] = true
					}
				}
			}
			if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
				t.Errorf("%s: unexpected rule %+v", roleKey, rule)
			}
		}
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
		if bound(b.Subjects) {
			add("", "ClusterRole/"+b.RoleRef.Name)
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if bound(b.Subjects) {
			if b.RoleRef.Kind == "ClusterRole" {
				add(b.Namespace, "ClusterRole/"+b.RoleRef.Name)
			} else {
				add(b.Namespace, b.Namespace+"/Role/"+b.RoleRef.Name)
			}
		}
	}
	return out
}

func expand(ns, group string, resources, verbs []string) []grant {
	var out []grant
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, grant{ns, group, r, v})
		}
	}
	return out
}

var read = []string{"get", "list", "watch"}

// controllerGrants is everything the controller may do, and nothing else.
func controllerGrants(secretNamespaces []string, nodeMode bool) map[grant]bool {
	var gs []grant
	gs = append(gs, expand("", "gateway.networking.k8s.io", []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes", "listenersets", "referencegrants", "backendtlspolicies"}, read)...)
	gs = append(gs, expand("", "gateway.networking.k8s.io", []string{"gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status", "tlsroutes/status", "tcproutes/status", "udproutes/status", "listenersets/status", "backendtlspolicies/status"}, []string{"update"})...)
	gs = append(gs, expand("", "", []string{"namespaces", "services"}, read)...)
	gs = append(gs, expand("", "discovery.k8s.io", []string{"endpointslices"}, read)...)
	gs = append(gs, expand(releaseNamespace, "coordination.k8s.io", []string{"leases"}, []string{"get", "create", "update"})...)
	if len(secretNamespaces) == 0 {
		gs = append(gs, expand("", "", []string{"secrets", "configmaps"}, read)...)
	}
	for _, ns := range secretNamespaces {
		gs = append(gs, expand(ns, "", []string{"secrets", "configmaps"}, read)...)
	}
	if !nodeMode {
		gs = append(gs, expand("", "rauta.io", []string{"gatewayparameters"}, read)...)
		write := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
		gs = append(gs, expand("", "", []string{"services", "serviceaccounts"}, write)...)
		gs = append(gs, expand("", "apps", []string{"deployments"}, write)...)
		gs = append(gs, grant{"", "authentication.k8s.io", "tokenreviews", "create"})
		// The controller's CA Secret in its own namespace.
		gs = append(gs, expand(releaseNamespace, "", []string{"secrets"}, []string{"get", "create", "update"})...)
	}
	out := map[grant]bool{}
	for _, g := range gs {
		out[g] = true
	}
	return out
}

// TestRBAC: the controller's ServiceAccount gets exactly the grants above
// (no wildcard, no cluster-wide Secrets when rbac.secretNamespaces is set),
// and the observer only reads pods and EndpointSlices.
func TestRBAC(t *testing.T) {
	cases := []struct {
		name       string
		vals       map[string]any
		namespaces []string
		nodeMode   bool
	}{
		{"default", nil, nil, false},
		{"secrets in two namespaces", allOptional(), []string{"team-a", "team-b"}, false},
		{"node mode", nodeModeValues(true), nil, true},
		{"node mode, secrets in one namespace", concatVals(nodeModeValues(true), map[string]any{"rbac": map[string]any{"secretNamespaces": []any{"edge"}}}), []string{"edge"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.vals)
			got := grants(t, r, releaseNamespace, "rauta")
			want := controllerGrants(tc.namespaces, tc.nodeMode)
			for g := range got {
				if !want[g] {
					t.Errorf("controller may %s, which it does not need", describe(g))
				}
			}
			for g := range want {
				if !got[g] {
					t.Errorf("controller may not %s", describe(g))
				}
			}
			if len(tc.namespaces) > 0 && got[grant{"", "", "secrets", "list"}] {
				t.Error("Secrets readable cluster-wide although rbac.secretNamespaces is set")
			}
		})
	}

	t.Run("observer", func(t *testing.T) {
		got := grants(t, mustRender(t, allOptional()), releaseNamespace, "rauta-observer")
		want := map[grant]bool{}
		for _, g := range append(expand("", "", []string{"pods"}, read), expand("", "discovery.k8s.io", []string{"endpointslices"}, read)...) {
			want[g] = true
		}
		if fmt.Sprint(sortedGrants(got)) != fmt.Sprint(sortedGrants(want)) {
			t.Errorf("observer grants %v, want %v", sortedGrants(got), sortedGrants(want))
		}
		moved := mustRender(t, map[string]any{"observer": map[string]any{"enabled": true, "namespace": "rauta-observer"}})
		if got := grants(t, moved, "rauta-observer", "rauta-observer"); fmt.Sprint(sortedGrants(got)) != fmt.Sprint(sortedGrants(want)) {
			t.Errorf("observer in its own namespace: grants %v, want %v", sortedGrants(got), sortedGrants(want))
		}
		if off := grants(t, mustRender(t, map[string]any{"observer": map[string]any{"enabled": true, "kube": "off"}}), releaseNamespace, "rauta-observer"); len(off) != 0 {
			t.Errorf("observer without enrichment may still %v", sortedGrants(off))
		}
	})
}

func describe(g grant) string {
	where := "cluster-wide"
	if g.ns != "" {
		where = "in " + g.ns
	}
	group := g.group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s %s (%s) %s", g.verb, g.resource, group, where)
}

func sortedGrants(m map[grant]bool) []string {
	var out []string
	for g := range m {
		out = append(out, describe(g))
	}
	slices.Sort(out)
	return out
}

// TestRBACCoversDeploy: the chart grants at least what deploy/rbac.yaml
// grants, the set the conformance run proves sufficient, so the two cannot
// drift apart unnoticed.
func TestRBACCoversDeploy(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "..", "..", "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(string(data))
	if err != nil {
		t.Fatalf("decode deploy/rbac.yaml: %v", err)
	}
	proven := grants(t, rendered{objects: objs}, releaseNamespace, "rauta")
	if len(proven) < 10 {
		t.Fatalf("deploy/rbac.yaml grants only %v", sortedGrants(proven))
	}
	for name, vals := range map[string]map[string]any{"default": nil, "node mode": nodeModeValues(true)} {
		got := grants(t, mustRender(t, vals), releaseNamespace, "rauta")
		for g := range proven {
			if !got[g] {
				t.Errorf("%s: deploy/rbac.yaml lets the controller %s; the chart does not", name, describe(g))
			}
		}
	}
}

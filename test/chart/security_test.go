package chart_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// podTemplates returns every workload's pod template by workload key
// (TestRenderedObjects pins that there are no other kinds of workload).
func podTemplates(r rendered) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range r.objects {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out[key(w)] = w.Spec.Template
		case *appsv1.DaemonSet:
			out[key(w)] = w.Spec.Template
		}
	}
	return out
}

// forbidden evaluates a pod against a Pod Security level with the upstream
// admission checks and returns the reasons it is refused.
func forbidden(t *testing.T, level psapi.Level, meta metav1.ObjectMeta, spec corev1.PodSpec) []string {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	agg := policy.AggregateCheckResults(eval.EvaluatePod(psapi.LevelVersion{Level: level, Version: psapi.LatestVersion()}, &meta, &spec))
	slices.Sort(agg.ForbiddenReasons)
	return agg.ForbiddenReasons
}

// TestPodSecurity: the controller meets "restricted"; the observer and node
// mode need exactly what they say they need, and nothing more.
func TestPodSecurity(t *testing.T) {
	type want struct {
		restricted []string // reasons "restricted" refuses it (nil: allowed)
		baseline   []string // reasons "baseline" refuses it (nil: allowed)
	}
	cases := []struct {
		name  string
		vals  map[string]any
		wants map[string]want
	}{
		{"default", nil, map[string]want{
			"Deployment rauta-system/rauta-controller": {},
		}},
		{"every optional part", allOptional(), map[string]want{
			"Deployment rauta-system/rauta-controller": {},
			// Host network, root, and its capabilities: "privileged" only.
			"DaemonSet rauta-system/rauta-observer": {
				restricted: []string{"allowPrivilegeEscalation != false", "host namespaces", "hostPort", "runAsNonRoot != true", "runAsUser=0", "unrestricted capabilities"},
				baseline:   []string{"host namespaces", "hostPort", "non-default capabilities"},
			},
		}},
		{"node mode as root", nodeModeValues(true), map[string]want{
			// NET_BIND_SERVICE is the one capability "baseline" and
			// "restricted" allow; host network is what needs "privileged".
			"DaemonSet rauta-system/rauta-node": {
				restricted: []string{"host namespaces", "hostPort", "runAsNonRoot != true", "runAsUser=0"},
				baseline:   []string{"host namespaces", "hostPort"},
			},
			"DaemonSet rauta-system/rauta-observer": {
				restricted: []string{"allowPrivilegeEscalation != false", "host namespaces", "hostPort", "runAsNonRoot != true", "runAsUser=0", "unrestricted capabilities"},
				baseline:   []string{"host namespaces", "hostPort", "non-default capabilities"},
			},
		}},
		{"node mode as 65532", nodeModeValues(false), map[string]want{
			"DaemonSet rauta-system/rauta-node": {
				restricted: []string{"host namespaces", "hostPort"},
				baseline:   []string{"host namespaces", "hostPort"},
			},
			"DaemonSet rauta-system/rauta-observer": {
				restricted: []string{"allowPrivilegeEscalation != false", "host namespaces", "hostPort", "runAsNonRoot != true", "runAsUser=0", "unrestricted capabilities"},
				baseline:   []string{"host namespaces", "hostPort", "non-default capabilities"},
			},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pods := podTemplates(mustRender(t, tc.vals))
			if len(pods) != len(tc.wants) {
				t.Errorf("workloads %v, want %d", keysOf(pods), len(tc.wants))
			}
			for name, w := range tc.wants {
				tmpl, ok := pods[name]
				if !ok {
					t.Errorf("no workload %s", name)
					continue
				}
				if got := forbidden(t, psapi.LevelRestricted, tmpl.ObjectMeta, tmpl.Spec); !slices.Equal(got, w.restricted) {
					t.Errorf("%s: restricted refuses %q, want %q", name, got, w.restricted)
				}
				if got := forbidden(t, psapi.LevelBaseline, tmpl.ObjectMeta, tmpl.Spec); !slices.Equal(got, w.baseline) {
					t.Errorf("%s: baseline refuses %q, want %q", name, got, w.baseline)
				}
			}
		})
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestContainerHardening checks what Pod Security does not: every container
// has a read-only root file system, drops ALL capabilities, and adds only
// what its role needs; and no container combines SYS_ADMIN with
// allowPrivilegeEscalation=false, which the API server refuses.
func TestContainerHardening(t *testing.T) {
	wantAdd := map[string][]corev1.Capability{
		"Deployment rauta-system/rauta-controller": nil,
		"DaemonSet rauta-system/rauta-observer":    {"NET_ADMIN", "SYS_ADMIN", "BPF", "PERFMON"},
		"DaemonSet rauta-system/rauta-node":        {"NET_BIND_SERVICE"},
	}
	for _, vals := range []map[string]any{allOptional(), nodeModeValues(true)} {
		for name, tmpl := range podTemplates(mustRender(t, vals)) {
			for _, c := range tmpl.Spec.Containers {
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s/%s: root file system not read-only", name, c.Name)
				}
				if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("%s/%s: does not drop ALL capabilities", name, c.Name)
					continue
				}
				if !slices.Equal(sc.Capabilities.Add, wantAdd[name]) {
					t.Errorf("%s/%s: adds %v, want %v", name, c.Name, sc.Capabilities.Add, wantAdd[name])
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("%s/%s: privileged", name, c.Name)
				}
				if slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
					t.Errorf("%s/%s: SYS_ADMIN with allowPrivilegeEscalation=false is refused by the API server", name, c.Name)
				}
				if !slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") && (sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
					t.Errorf("%s/%s: allows privilege escalation", name, c.Name)
				}
			}
		}
	}
}

// TestHostNetworkPods: the observer and node mode are on the host network
// (DNS through the cluster still), the controller is not.
func TestHostNetworkPods(t *testing.T) {
	for name, tmpl := range podTemplates(mustRender(t, concatVals(allOptional(), nodeModeValues(true)))) {
		host := name != "Deployment rauta-system/rauta-controller"
		if tmpl.Spec.HostNetwork != host {
			t.Errorf("%s: hostNetwork %v, want %v", name, tmpl.Spec.HostNetwork, host)
		}
		if host && tmpl.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("%s: dnsPolicy %s, want ClusterFirstWithHostNet", name, tmpl.Spec.DNSPolicy)
		}
		if tmpl.Spec.HostPID || tmpl.Spec.HostIPC {
			t.Errorf("%s: shares the host PID or IPC namespace", name)
		}
		for _, v := range tmpl.Spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: mounts host path %s", name, v.HostPath.Path)
			}
		}
	}
}

// concatVals merges top-level keys (later maps win).
func concatVals(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

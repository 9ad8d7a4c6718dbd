package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// dataPlaneJoinValues: the observer joins the data-plane pods' timing
// records, their admin ports reached in every runtime-pinned network
// namespace where one answers (containerd's cni-*).
func dataPlaneJoinValues() map[string]any {
	return map[string]any{"observer": map[string]any{"enabled": true, "gatewayJoin": map[string]any{
		"enabled": true, "adminURLs": []any{"http://127.0.0.1:19000"}, "netns": "/var/run/netns/cni-*", "pollInterval": "100ms",
	}}}
}

// TestObserverGatewayJoin (issue 16 point 14): the gateway join is off by
// default (no flag, no host namespace, no host path). With node mode the
// observer polls node mode's own admin address, which the chart passes to
// both (the node's loopback: both are on the host network, no network
// namespace to enter). For a data-plane pod it polls the given URLs from
// the given namespaces (one, or a pattern of them): the runtime's pinned
// namespaces' directory is mounted from the host (propagation
// HostToContainer, so namespaces pinned later appear); no other path (a /proc one would need the host's PID
// namespace and SYS_PTRACE, which the observer does not get). Without URLs
// and without node mode the chart refuses to render, and the schema
// refuses URLs and paths the flags would not take.
func TestObserverGatewayJoin(t *testing.T) {
	observer := func(r rendered) corev1.PodSpec {
		t.Helper()
		return find[*appsv1.DaemonSet](t, r, "rauta-observer").Spec.Template.Spec
	}
	has := func(args []string, flag string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, flag+"=") })
	}

	def := observer(mustRender(t, map[string]any{"observer": map[string]any{"enabled": true}}))
	for _, f := range []string{"-gateway-admin", "-gateway-netns", "-join-poll-interval"} {
		if has(def.Containers[0].Args, f) {
			t.Errorf("%s passed with the join off", f)
		}
	}
	if def.HostPID || len(def.Volumes) != 0 {
		t.Errorf("join off: hostPID %v, volumes %v", def.HostPID, def.Volumes)
	}

	r := mustRender(t, nodeModeValues(true))
	node := observer(r)
	nodeArgs := find[*appsv1.DaemonSet](t, r, "rauta-node").Spec.Template.Spec.Containers[0].Args
	if got, want := flagValue(t, node.Containers[0].Args, "-gateway-admin"), "http://"+flagValue(t, nodeArgs, "-admin-addr"); got != want {
		t.Errorf("node mode: -gateway-admin=%q, want node mode's admin address %q", got, want)
	}
	if has(node.Containers[0].Args, "-gateway-netns") || node.HostPID || len(node.Volumes) != 0 {
		t.Errorf("node mode: netns flag, hostPID %v or volumes %v; the admin port is on the node's loopback", node.HostPID, node.Volumes)
	}
	if got := flagValue(t, node.Containers[0].Args, "-join-poll-interval"); got != "250ms" {
		t.Errorf("-join-poll-interval=%q by default, want 250ms", got)
	}

	pod := observer(mustRender(t, dataPlaneJoinValues()))
	c := pod.Containers[0]
	if got := flagValue(t, c.Args, "-gateway-admin"); got != "http://127.0.0.1:19000" {
		t.Errorf("-gateway-admin=%q", got)
	}
	if got := flagValue(t, c.Args, "-gateway-netns"); got != "/var/run/netns/cni-*" {
		t.Errorf("-gateway-netns=%q", got)
	}
	if got := flagValue(t, c.Args, "-join-poll-interval"); got != "100ms" {
		t.Errorf("-join-poll-interval=%q", got)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].HostPath == nil || pod.Volumes[0].HostPath.Path != "/var/run/netns" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/var/run/netns" || !c.VolumeMounts[0].ReadOnly ||
		c.VolumeMounts[0].MountPropagation == nil || *c.VolumeMounts[0].MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("pinned namespace: volumes %+v mounts %+v, want /var/run/netns from the host, read-only, HostToContainer", pod.Volumes, c.VolumeMounts)
	}

	run := observer(mustRender(t, map[string]any{"observer": map[string]any{"enabled": true,
		"gatewayJoin": map[string]any{"enabled": true, "adminURLs": []any{"http://127.0.0.1:19000", "http://127.0.0.1:19001"}, "netns": "/run/netns/gw"}}}))
	if got := flagValue(t, run.Containers[0].Args, "-gateway-admin"); got != "http://127.0.0.1:19000,http://127.0.0.1:19001" {
		t.Errorf("two URLs: -gateway-admin=%q", got)
	}
	if len(run.Volumes) != 1 || run.Volumes[0].HostPath.Path != "/run/netns" || run.HostPID {
		t.Errorf("/run/netns: volumes %+v, hostPID %v", run.Volumes, run.HostPID)
	}

	if _, err := renderChart(t, map[string]any{"observer": map[string]any{"enabled": true, "gatewayJoin": map[string]any{"enabled": true}}}); err == nil || !strings.Contains(err.Error(), "adminURLs") {
		t.Errorf("join without URLs or node mode: %v, want a refusal naming adminURLs", err)
	}
	for name, join := range map[string]map[string]any{
		"URL without scheme":  {"adminURLs": []any{"127.0.0.1:19000"}},
		"two URLs in one":     {"adminURLs": []any{"http://a:1,http://b:2"}},
		"relative netns":      {"netns": "run/netns/gw"},
		"/proc netns":         {"netns": "/proc/4242/ns/net"},
		"netns directory":     {"netns": "/var/run/netns/"},
		"interval not a time": {"pollInterval": "fast"},
	} {
		join["enabled"] = true
		if _, err := renderChart(t, map[string]any{"nodeMode": map[string]any{"enabled": true}, "observer": map[string]any{"enabled": true, "gatewayJoin": join}}); err == nil {
			t.Errorf("%s rendered; the schema should refuse it", name)
		}
	}
}

// TestObserverTLS (issue 16 point 11): TLS uprobes are off by default
// (no host PID namespace, no extra capability). On, the observer gets
// what reading other pods' processes and naming their pods takes: the
// host's PID namespace, SYS_PTRACE and DAC_READ_SEARCH (once each), the host's cgroup2 tree read-only at
// /host/cgroup, and the flags that use them.
func TestObserverTLS(t *testing.T) {
	observer := func(r rendered) corev1.PodSpec {
		t.Helper()
		return find[*appsv1.DaemonSet](t, r, "rauta-observer").Spec.Template.Spec
	}
	def := observer(mustRender(t, map[string]any{"observer": map[string]any{"enabled": true}}))
	if def.HostPID || slices.Contains(def.Containers[0].Args, "-tls-uprobes") {
		t.Errorf("TLS off: hostPID %v, args %v", def.HostPID, def.Containers[0].Args)
	}
	for _, c := range def.Containers[0].SecurityContext.Capabilities.Add {
		if c == "SYS_PTRACE" || c == "DAC_READ_SEARCH" {
			t.Errorf("TLS off: capability %s added", c)
		}
	}

	on := observer(mustRender(t, map[string]any{"observer": map[string]any{"enabled": true,
		"tls": map[string]any{"enabled": true, "hostCgroupRoot": "/sys/fs/cgroup/unified"}}}))
	c := on.Containers[0]
	if !on.HostPID || !slices.Contains(c.Args, "-tls-uprobes") || flagValue(t, c.Args, "-tls-cgroup-root") != "/host/cgroup" {
		t.Errorf("TLS on: hostPID %v, args %v", on.HostPID, c.Args)
	}
	count := map[corev1.Capability]int{}
	for _, cp := range c.SecurityContext.Capabilities.Add {
		count[cp]++
	}
	if count["SYS_PTRACE"] != 1 || count["DAC_READ_SEARCH"] != 1 || count["BPF"] != 1 {
		t.Errorf("TLS on: capabilities %v, want SYS_PTRACE and DAC_READ_SEARCH once each beside the configured ones", c.SecurityContext.Capabilities.Add)
	}
	if len(on.Volumes) != 1 || on.Volumes[0].HostPath == nil || on.Volumes[0].HostPath.Path != "/sys/fs/cgroup/unified" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/host/cgroup" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("TLS on: volumes %+v mounts %+v, want the host's cgroup2 mount read-only at /host/cgroup", on.Volumes, c.VolumeMounts)
	}
	if _, err := renderChart(t, map[string]any{"observer": map[string]any{"enabled": true, "tls": map[string]any{"enabled": true, "hostCgroupRoot": "sys/fs/cgroup"}}}); err == nil {
		t.Error("a relative hostCgroupRoot rendered; the schema should refuse it")
	}
}

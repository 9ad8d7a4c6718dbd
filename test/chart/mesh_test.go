package chart_test

import (
	"fmt"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	psapi "k8s.io/pod-security-admission/api"
)

// TestMeshAgent (issue 17): mesh.enabled renders the node agent as users
// run it: `rauta mesh` on the host network with the host's cgroup v2 tree
// and BPF file system mounted, the GAMMA proxy on the node address, and
// exactly the grants it uses (none for GAMMA when GAMMA is off).
func TestMeshAgent(t *testing.T) {
	r := mustRender(t, map[string]any{"mesh": map[string]any{"enabled": true}})
	ds := find[*appsv1.DaemonSet](t, r, "rauta-mesh")
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	for _, arg := range []string{"mesh", "-cgroup=/run/rauta/cgroup", "-pin-dir=/sys/fs/bpf/rauta-mesh", "-keep-attached", "-proxy-addr=:15001", "-status-lease=rauta-mesh-status", "-max-workload-values=256", "-remote-workloads=true", "-metrics-addr=:9093", "-admin-addr=127.0.0.1:9094"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %q", c.Args, arg)
		}
	}
	if !spec.HostNetwork {
		t.Error("the agent is not on the host network: pods could not reach its proxy on NODE_IP")
	}
	mounts := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			mounts[v.Name] = v.HostPath.Path
		}
	}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] += " -> " + m.MountPath
	}
	if mounts["cgroup"] != "/sys/fs/cgroup -> /run/rauta/cgroup" || mounts["bpffs"] != "/sys/fs/bpf -> /sys/fs/bpf" {
		t.Errorf("host mounts %v", mounts)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_IP"] != "status.hostIP" || env["NODE_NAME"] != "spec.nodeName" || env["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("env from fields %v", env)
	}

	want := map[grant]bool{}
	add := func(gs []grant) {
		for _, g := range gs {
			want[g] = true
		}
	}
	add(expand("", "", []string{"services", "pods", "namespaces"}, read))
	add(expand("", "discovery.k8s.io", []string{"endpointslices"}, read))
	add(expand("", "gateway.networking.k8s.io", []string{"httproutes", "backendtlspolicies"}, read))
	add(expand("", "gateway.networking.k8s.io", []string{"httproutes/status"}, []string{"update"}))
	add(expand(releaseNamespace, "coordination.k8s.io", []string{"leases"}, []string{"get", "create", "update"}))
	if got := grants(t, r, releaseNamespace, "rauta-mesh"); fmt.Sprint(sortedGrants(got)) != fmt.Sprint(sortedGrants(want)) {
		t.Errorf("mesh grants %v, want %v", sortedGrants(got), sortedGrants(want))
	}

	off := mustRender(t, map[string]any{"mesh": map[string]any{"enabled": true, "gamma": false}})
	if args := find[*appsv1.DaemonSet](t, off, "rauta-mesh").Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "-proxy-addr=") {
		t.Errorf("without GAMMA the args %q do not turn the proxy off", args)
	}
	noRemote := mustRender(t, map[string]any{"mesh": map[string]any{"enabled": true, "remoteWorkloads": false}})
	if args := find[*appsv1.DaemonSet](t, noRemote, "rauta-mesh").Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "-remote-workloads=false") {
		t.Errorf("remoteWorkloads false: args %q", args)
	}
	// The node's pods and every pod's metadata are read with the same
	// grant (pods get/list/watch above): the remote cache needs no more.
	if got := grants(t, noRemote, releaseNamespace, "rauta-mesh"); fmt.Sprint(sortedGrants(got)) != fmt.Sprint(sortedGrants(want)) {
		t.Errorf("mesh grants without remote workloads %v, want %v", sortedGrants(got), sortedGrants(want))
	}
	wantOff := map[grant]bool{}
	for _, g := range append(expand("", "", []string{"services"}, read), expand("", "discovery.k8s.io", []string{"endpointslices"}, read)...) {
		wantOff[g] = true
	}
	if got := grants(t, off, releaseNamespace, "rauta-mesh"); fmt.Sprint(sortedGrants(got)) != fmt.Sprint(sortedGrants(wantOff)) {
		t.Errorf("mesh grants without GAMMA %v, want %v", sortedGrants(got), sortedGrants(wantOff))
	}

	// Host network, root, host paths and its capabilities: "privileged"
	// only, like the observer.
	tmpl := ds.Spec.Template
	if got, w := forbidden(t, psapi.LevelBaseline, tmpl.ObjectMeta, tmpl.Spec), []string{"host namespaces", "hostPath volumes", "hostPort", "non-default capabilities"}; !slices.Equal(got, w) {
		t.Errorf("baseline refuses %q, want %q", got, w)
	}
}

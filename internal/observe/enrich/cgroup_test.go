package enrich

import "testing"

// TestPodKeyOfCgroup: the pod of the kubelet's cgroup paths (systemd and
// cgroupfs drivers, every QoS class, container or pod level, seen from a
// cgroup namespace) and of the devcluster's; nothing for paths that only
// look alike.
func TestPodKeyOfCgroup(t *testing.T) {
	const uid = "0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"
	cases := map[string]string{
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice/cri-containerd-4f1e.scope": uid,
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice":                         uid,
		"/kubepods.slice/kubepods-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice/crio-77.scope":                                                uid,
		"/kubepods/burstable/pod0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60/4f1e0c":                                                                  uid,
		"/kubepods/pod0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60/4f1e0c":                                                                            uid,
		"/../../kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice/x.scope":             uid,
		"/rauta-devcluster-rdc0/pod-1a2b3c4d":                                                                                                 "pod-1a2b3c4d",
		"/system.slice/containerd.service":                                                                                                    "",
		"/kubepods.slice":                                                                                                                     "",
		"/user.slice/user-0.slice/pod0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60":                                                                    "", // not under kubepods
		"/kubepods/burstable/podnot-a-uid":                                                                                                    "",
		"/rauta-devcluster-rdc0/pod-1a2b3c4":                                                                                                  "", // 7 digits
		"/other/pod-1a2b3c4d":                                                                                                                 "",
		"":                                                                                                                                    "",
	}
	for path, want := range cases {
		if got := PodKeyOfCgroup(path); got != want {
			t.Errorf("%q: %q, want %q", path, got, want)
		}
	}
	// The devcluster's node agent names the pod's cgroup pod-<fnv-32a of
	// the UID> (test/devcluster/node, podNetID): fnv-32a("a") is e40c292c.
	if got := DevclusterPodKey("a"); got != "pod-e40c292c" {
		t.Errorf("DevclusterPodKey(a) = %s", got)
	}
}

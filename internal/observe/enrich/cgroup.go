package enrich

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Pods by cgroup: plaintext read from inside TLS (library probes) comes
// with the cgroup of the thread that read or wrote it
// (bpf_get_current_cgroup_id). A process's cgroup v2 path names its pod:
//
//	kubelet, systemd driver:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
//	kubelet, cgroupfs driver: /kubepods/burstable/pod<uid>/<container id>
//	devcluster node agent:    /rauta-devcluster-<bridge>/pod-<fnv-32a of the uid, 8 hex digits>
//
// (Guaranteed pods have no QoS level: kubepods-pod<uid>.slice,
// kubepods/pod<uid>.) PodKeyOfCgroup turns such a path into a pod key,
// which the resolvers that know pods' UIDs look up (PodIndex).

// PodIndex is implemented by resolvers that know pods by UID.
type PodIndex interface {
	// PodByKey returns the pod of a key from PodKeyOfCgroup.
	PodByKey(key string) (Info, bool)
}

// devclusterPrefix is the devcluster node agent's parent cgroup
// (test/devcluster/node, cgroup.go), devclusterPod its pods' children.
const (
	devclusterPrefix = "rauta-devcluster-"
	devclusterPod    = "pod-"
)

// PodKeyOfCgroup returns the pod key of a cgroup v2 path (a line of
// /proc/PID/cgroup without its "0::"): the pod's UID for a kubelet's
// cgroup, DevclusterPodKey's form for the devcluster's; "" when the path
// is not inside a pod. The path may be relative to a cgroup namespace
// ("/../../kubepods.slice/..."): only its segments count.
func PodKeyOfCgroup(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if i > 0 && strings.HasPrefix(segs[i-1], devclusterPrefix) && strings.HasPrefix(s, devclusterPod) {
			if h := s[len(devclusterPod):]; len(h) == 8 && isHex(h) {
				return s
			}
		}
		if !inKubepods(segs[:i]) {
			continue
		}
		// systemd: kubepods[-<qos>]-pod<uid>.slice, the UID's dashes as
		// underscores; cgroupfs: pod<uid>.
		if rest, ok := strings.CutSuffix(s, ".slice"); ok {
			if j := strings.LastIndex(rest, "-pod"); j >= 0 {
				if uid := strings.ReplaceAll(rest[j+len("-pod"):], "_", "-"); isUID(uid) {
					return uid
				}
			}
			continue
		}
		if uid, ok := strings.CutPrefix(s, "pod"); ok && isUID(uid) {
			return uid
		}
	}
	return ""
}

// inKubepods: one of the segments is the kubelet's root cgroup.
func inKubepods(segs []string) bool {
	for _, s := range segs {
		if s == "kubepods" || s == "kubepods.slice" {
			return true
		}
	}
	return false
}

// DevclusterPodKey is the pod key of the devcluster's cgroup of the pod
// with UID uid: the node agent names it pod-<fnv-32a of the UID>.
func DevclusterPodKey(uid string) string {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return fmt.Sprintf("%s%08x", devclusterPod, h.Sum32())
}

// isUID: the 8-4-4-4-12 hex form of Kubernetes UIDs.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i : i+1]) {
				return false
			}
		}
	}
	return true
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

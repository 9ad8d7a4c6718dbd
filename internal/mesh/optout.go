package mesh

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// OptOutLabel on a namespace or a pod takes the pods out of the mesh:
// "true" opts out, and on a pod "false" opts it back in inside an opted-out
// namespace (the pod's label wins). An opted-out pod's connections are
// never steered to the mesh proxy (no GAMMA routes apply to them, and
// their requests carry no mesh telemetry) and are never shortcut by
// sockmap; Service routing (ClusterIP to an endpoint) still applies, since
// without kube-proxy it is the only thing that makes ClusterIPs work.
const OptOutLabel = "rauta.io/mesh-opt-out"

// optedOut says whether a pod is out of the mesh, from its own label and
// its namespace's labels (nil: the namespace is not known, no label).
func optedOut(pod *corev1.Pod, nsLabels map[string]string) bool {
	switch pod.Labels[OptOutLabel] {
	case "true":
		return true
	case "false":
		return false
	}
	return nsLabels[OptOutLabel] == "true"
}

// optedOutPods are the pods that opted out; namespaces maps a namespace's
// name to its labels. Host-network pods count too: they have a pod cgroup
// of their own like any pod (their address, the node's, is never taken out
// of the sockmap set: localAddrs skips it).
func optedOutPods(pods []*corev1.Pod, namespaces map[string]map[string]string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		// A pod that ended (a Job's, kept around) has no processes and, once
		// the kubelet cleaned up, no cgroup: nothing to look for.
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if optedOut(p, namespaces[p.Namespace]) {
			out = append(out, p)
		}
	}
	return out
}

// podCgroupDepth bounds how deep below the agent's cgroup a pod's cgroup is
// looked for: kubelet puts it at most 3 levels below kubepods (QoS class
// slice, pod), and the agent's cgroup may be the node's root.
const podCgroupDepth = 6

// podCgroups finds the cgroup v2 directory of a pod by its UID, as every
// kubelet cgroup driver names it: cgroupfs "pod<uid>", systemd
// "kubepods-<qos>-pod<uid with _ for ->.slice" (the local cluster's node
// agent uses the cgroupfs form). Found directories are remembered and only
// checked again; a walk of the tree (at most podCgroupDepth levels below
// root) happens only for pods not found yet.
type podCgroups struct {
	root  string
	known map[types.UID]string
}

func newPodCgroups(root string) *podCgroups {
	return &podCgroups{root: root, known: map[types.UID]string{}}
}

// ids returns the cgroup ids of the pods found and the pods whose cgroup
// does not exist (yet: the pod's cgroup is made when its sandbox starts).
// Pods not asked for are forgotten.
func (c *podCgroups) ids(pods []*corev1.Pod) (ids []uint64, missing []*corev1.Pod, err error) {
	want := make(map[types.UID]bool, len(pods))
	for _, p := range pods {
		want[p.UID] = true
	}
	for uid := range c.known {
		if !want[uid] {
			delete(c.known, uid)
		}
	}
	var lost []*corev1.Pod
	for _, p := range pods {
		dir, ok := c.known[p.UID]
		if ok {
			if id, err := cgroupID(dir); err == nil {
				ids = append(ids, id)
				continue
			}
			delete(c.known, p.UID)
		}
		lost = append(lost, p)
	}
	if len(lost) == 0 {
		return ids, nil, nil
	}
	found, err := c.walk(lost)
	for _, p := range lost {
		dir, ok := found[p.UID]
		if !ok {
			missing = append(missing, p)
			continue
		}
		id, serr := cgroupID(dir)
		if serr != nil {
			missing = append(missing, p)
			continue
		}
		c.known[p.UID] = dir
		ids = append(ids, id)
	}
	return ids, missing, err
}

// walk looks for the pods' directories under root.
func (c *podCgroups) walk(pods []*corev1.Pod) (map[types.UID]string, error) {
	names := make(map[string]types.UID, 2*len(pods))
	for _, p := range pods {
		uid := string(p.UID)
		names["pod"+uid] = p.UID
		names["pod"+strings.ReplaceAll(uid, "-", "_")] = p.UID
	}
	found := map[types.UID]string{}
	err := filepath.WalkDir(c.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			// A cgroup removed during the walk is not an error.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if uid, ok := names[podCgroupName(d.Name())]; ok {
			found[uid] = path
			return filepath.SkipDir
		}
		if rel, _ := filepath.Rel(c.root, path); rel != "." && strings.Count(rel, string(filepath.Separator)) >= podCgroupDepth-1 {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return found, fmt.Errorf("find pod cgroups under %s: %w", c.root, err)
	}
	return found, nil
}

// podCgroupName cuts a systemd slice name to its "pod<uid>" part.
func podCgroupName(name string) string {
	name = strings.TrimSuffix(name, ".slice")
	if i := strings.LastIndex(name, "-pod"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Re-sync delays while an opted-out pod has no cgroup yet: the pod's
// cgroup is made by the kubelet without an API event, and the next event
// (its status update with the pod IP) may come after its containers
// started. The delay doubles from optOutRetryMin up to optOutRetryMax
// while pods are missing, so a pod whose cgroup never comes costs one
// sync every 5 s.
const (
	optOutRetryMin = 100 * time.Millisecond
	optOutRetryMax = 5 * time.Second
)

// optOutRetry pokes the sync loop again while opted-out pods have no
// cgroup. Used from the sync loop only; poke must be safe to call from the
// timer's goroutine.
type optOutRetry struct {
	poke  func()
	delay time.Duration
	timer *time.Timer
}

// schedule arms the next poke (missing: some opted-out pod has no cgroup
// yet) or disarms it and starts over at the shortest delay.
func (r *optOutRetry) schedule(missing bool) {
	if !missing {
		r.stop()
		r.delay = 0
		return
	}
	r.delay = min(max(2*r.delay, optOutRetryMin), optOutRetryMax)
	if r.timer == nil {
		r.timer = time.AfterFunc(r.delay, r.poke)
		return
	}
	r.timer.Reset(r.delay)
}

func (r *optOutRetry) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

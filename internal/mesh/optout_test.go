package mesh

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/false-systems/rauta/internal/proxy"
)

func optPod(ns, name, label string, hostNet bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}}
	if label != "" {
		p.Labels = map[string]string{OptOutLabel: label}
	}
	p.Spec.HostNetwork = hostNet
	return p
}

func TestOptedOutPods(t *testing.T) {
	namespaces := map[string]map[string]string{
		"out":   {OptOutLabel: "true"},
		"in":    {"other": "x"},
		"typo":  {OptOutLabel: "yes"},
		"empty": nil,
	}
	pods := []*corev1.Pod{
		optPod("out", "ns-label", "", false),               // out: the namespace's label
		optPod("out", "pod-false", "false", false),         // in: the pod's "false" wins
		optPod("out", "host", "", true),                    // out: host network pods have a pod cgroup too
		optPod("in", "pod-true", "true", false),            // out: the pod's label
		optPod("in", "plain", "", false),                   // in
		optPod("typo", "ns-not-true", "", false),           // in: only "true" opts out
		optPod("in", "pod-not-true", "TRUE", false),        // in: nor "TRUE" on a pod
		optPod("missing", "unknown-ns", "", false),         // in: a namespace not (yet) known
		optPod("missing", "unknown-ns-pod", "true", false), // out
	}
	done := optPod("out", "job-done", "", false)
	done.Status.Phase = corev1.PodSucceeded // out of the search: it ended
	failed := optPod("in", "job-failed", "true", false)
	failed.Status.Phase = corev1.PodFailed
	running := optPod("out", "running", "", false)
	running.Status.Phase = corev1.PodRunning
	pods = append(pods, done, failed, running)
	var got []string
	for _, p := range optedOutPods(pods, namespaces) {
		got = append(got, p.Name)
	}
	want := []string{"ns-label", "host", "pod-true", "unknown-ns-pod", "running"}
	if !slices.Equal(got, want) {
		t.Errorf("opted out %v, want %v", got, want)
	}
}

// TestPodCgroups finds pod cgroups by the kubelet's names (cgroupfs and
// systemd drivers), remembers them, forgets pods not asked for, finds a
// moved cgroup again, and reports pods without one.
func TestPodCgroups(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) string {
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "1111-aa"}}
	b := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", UID: "2222-bb"}}
	c := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "3333-cc"}}
	deep := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "deep", UID: "4444-dd"}}
	dirA := mk("kubepods/besteffort/pod1111-aa")
	mk("kubepods/besteffort/pod1111-aa/container1") // not a pod cgroup of its own
	dirB := mk("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2222_bb.slice")
	mk("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2222_bb.slice/cri-containerd-x.scope")
	// Below podCgroupDepth: not looked at.
	mk("l1/l2/l3/l4/l5/l6/pod4444-dd")
	// A name that merely contains the UID is not the pod's.
	mk("kubepods/xpod3333-cc")

	ino := func(dir string) uint64 {
		id, err := cgroupID(dir)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pc := newPodCgroups(root)
	ids, missing, err := pc.ids([]*corev1.Pod{a, b, c, deep})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{ino(dirA), ino(dirB)}; !slices.Equal(sorted(ids), sorted(want)) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if len(missing) != 2 || missing[0] != c || missing[1] != deep {
		t.Errorf("missing %v, want c and deep", missing)
	}
	if pc.known[a.UID] != dirA || pc.known[b.UID] != dirB {
		t.Errorf("known %v", pc.known)
	}

	// c's cgroup appears (its sandbox started); a is no longer asked for.
	dirC := mk("kubepods/burstable/pod3333-cc")
	ids, missing, err = pc.ids([]*corev1.Pod{b, c})
	if err != nil || len(missing) != 0 {
		t.Fatalf("missing %v, err %v", missing, err)
	}
	if want := []uint64{ino(dirB), ino(dirC)}; !slices.Equal(sorted(ids), sorted(want)) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if _, ok := pc.known[a.UID]; ok {
		t.Error("a pod not asked for is still remembered")
	}

	// b's cgroup is made again elsewhere (a new inode): found by a new walk.
	if err := os.RemoveAll(filepath.Join(root, "kubepods.slice")); err != nil {
		t.Fatal(err)
	}
	dirB2 := mk("kubepods/guaranteed/pod2222-bb")
	ids, missing, err = pc.ids([]*corev1.Pod{b})
	if err != nil || len(missing) != 0 || len(ids) != 1 || ids[0] != ino(dirB2) || pc.known[b.UID] != dirB2 {
		t.Errorf("after a move: ids %v missing %v err %v known %v", ids, missing, err, pc.known)
	}
}

func sorted(s []uint64) []uint64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestOptOutRetry: while pods are missing the delay doubles from the
// minimum to the cap; none missing disarms it and starts over.
func TestOptOutRetry(t *testing.T) {
	pokes := make(chan struct{}, 16)
	r := &optOutRetry{poke: func() { pokes <- struct{}{} }}
	defer r.stop()
	var delays []time.Duration
	for range 8 {
		r.schedule(true)
		delays = append(delays, r.delay)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	r.schedule(false)
	if r.delay != 0 || r.timer.Stop() {
		t.Errorf("after none missing: delay %v, timer still armed", r.delay)
	}
	// Armed again at the minimum, it pokes.
	r.schedule(true)
	if r.delay != optOutRetryMin {
		t.Errorf("re-armed at %v, want %v", r.delay, optOutRetryMin)
	}
	<-pokes
}

// TestLocalAddrsLeaveOptedOutPods: sockmap's address set has the proxy and
// the pods, but not an opted-out pod's address; a host-network pod that
// opted out does not take the node's address (the proxy's) out.
func TestLocalAddrsLeaveOptedOutPods(t *testing.T) {
	proxyAddr := netip.MustParseAddrPort("10.0.0.1:15001")
	pods := map[netip.Addr]proxy.Workload{
		netip.MustParseAddr("10.244.0.2"): {Name: "a", Namespace: "a"},
		netip.MustParseAddr("10.244.0.3"): {Name: "p", Namespace: "out"},
	}
	out := optPod("out", "p", "", false)
	out.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.3"}}
	host := optPod("out", "h", "", true)
	host.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}}
	got := localAddrs(proxyAddr, netip.AddrPort{}, pods, []*corev1.Pod{out, host})
	slices.SortFunc(got, netip.Addr.Compare)
	want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.244.0.2")}
	if !slices.Equal(got, want) {
		t.Errorf("local addresses %v, want %v", got, want)
	}
}

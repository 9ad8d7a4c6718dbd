package enrich

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/false-systems/rauta/internal/poll"
)

func TestStaticFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "map.yaml")
	if err := os.WriteFile(path, []byte("endpoints:\n- ip: 10.0.0.5\n  pod: web-1\n  namespace: shop\n  service: web\n- ip: \"2001:db8::1\"\n  service: api\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadStatic(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Lookup(netip.MustParseAddr("::ffff:10.0.0.5")); !ok || got != (Info{Pod: "web-1", Namespace: "shop", Service: "web"}) {
		t.Fatalf("lookup v4-mapped: %+v %v", got, ok)
	}
	if got, ok := s.Lookup(netip.MustParseAddr("2001:db8::1")); !ok || got.Service != "api" {
		t.Fatalf("lookup v6: %+v %v", got, ok)
	}
	if _, ok := s.Lookup(netip.MustParseAddr("10.0.0.6")); ok {
		t.Fatal("unknown address resolved")
	}
	uidFile := "endpoints:\n- ip: 10.0.0.5\n  pod: web-1\n  namespace: shop\n  uid: 0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60\n"
	withUID, err := ParseStatic([]byte(uidFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60", DevclusterPodKey("0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60")} {
		if got, ok := withUID.PodByKey(key); !ok || got != (Info{Pod: "web-1", Namespace: "shop"}) {
			t.Errorf("pod by key %s: %+v %v", key, got, ok)
		}
	}
	// JSON works too.
	if _, err := ParseStatic([]byte(`{"endpoints":[{"ip":"10.1.1.1","service":"x"}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestStaticFileErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"endpoints:\n- ip: nope\n  pod: a\n":                               "endpoints[0].ip",
		"endpoints:\n- ip: 10.0.0.1\n":                                     "endpoints[0] (10.0.0.1): needs pod or service",
		"endpoints:\n- ip: 10.0.0.1\n  pod: a\n- ip: 10.0.0.1\n  pod: b\n": "endpoints[1].ip: 10.0.0.1 listed twice",
		"endpoints:\n- ip: 10.0.0.1\n  pdo: a\n":                           "unknown field",
		"endpoints:\n- ip: 10.0.0.1\n  service: a\n  uid: x\n":             "endpoints[0] (10.0.0.1): uid without pod",
	}
	for in, want := range cases {
		_, err := ParseStatic([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
	if _, err := LoadStatic(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestKubeInformers(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status:     corev1.PodStatus{PodIP: "10.244.0.7", PodIPs: []corev1.PodIP{{IP: "10.244.0.7"}, {IP: "fd00::7"}}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}}},
	}
	client := fake.NewClientset(pod, slice)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := NewKube(ctx, client, KubeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := k.Lookup(netip.MustParseAddr("10.244.0.7")); !ok || got != (Info{Pod: "web-1", Namespace: "shop", Service: "web"}) {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	if got, ok := k.Lookup(netip.MustParseAddr("fd00::7")); !ok || got.Pod != "web-1" || got.Service != "" {
		t.Fatalf("lookup v6: %+v %v", got, ok)
	}
	// By cgroup: the kubelet's path (systemd driver) and the devcluster's.
	for _, cg := range []string{
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice/cri-containerd-abc.scope",
		"/rauta-devcluster-br0/" + DevclusterPodKey("0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"),
	} {
		if got, ok := k.PodByKey(PodKeyOfCgroup(cg)); !ok || got != (Info{Pod: "web-1", Namespace: "shop"}) {
			t.Errorf("pod of cgroup %s: %+v %v", cg, got, ok)
		}
	}
	// Deleting the slice removes the service, the pod stays.
	if err := client.DiscoveryV1().EndpointSlices("shop").Delete(ctx, "web-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Require(t, 5*time.Second, "the lookup to change", func() bool { got, _ := k.Lookup(netip.MustParseAddr("10.244.0.7")); return got.Service == "" })
	if err := client.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Require(t, 5*time.Second, "the lookup to change", func() bool { _, ok := k.Lookup(netip.MustParseAddr("10.244.0.7")); return !ok })
	if _, ok := k.PodByKey("0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"); ok {
		t.Error("deleted pod still found by UID")
	}
}

package mesh

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/false-systems/rauta/internal/mesh"

	"github.com/false-systems/rauta/internal/freeport"
)

func ptr[T any](v T) *T { return &v }

// freePort is a loopback address that was free a moment ago, outside the
// ephemeral range (internal/freeport).
func freePort(t testing.TB) string {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// loopbackSlice is an EndpointSlice of svc with one endpoint, 127.0.0.1
// at port (each test server has a port of its own, so each gets a slice).
func loopbackSlice(name, svc string, port uint16, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(port)), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready)}}},
	}
}

// TestAgentFollowsTheAPIServer runs the agent (mesh.Serve) against a fake
// API server: a Service and its EndpointSlices become a working ClusterIP
// in the cgroup, a deleted slice's endpoint stops getting connections, an
// endpoint that turns unready leaves the Service refusing, and the end of
// the agent detaches the programs.
func TestAgentFollowsTheAPIServer(t *testing.T) {
	cgroup, cg := testCgroup(t)
	a, b := tcpServer(t, "tcp4", "a"), tcpServer(t, "tcp4", "b")
	vip := vipPrefix4 + "7:80"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: vipPrefix4 + "7", ClusterIPs: []string{vipPrefix4 + "7"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	client := fake.NewClientset(svc, loopbackSlice("web-a", "web", a.Port(), true), loopbackSlice("web-b", "web", b.Port(), true))
	var watches watchCounter
	client.PrependWatchReactor("*", watches.reactor)
	adminAddr := freePort(t)
	ag := startAgent(t, mesh.Config{
		Cgroup: cgroup, AdminAddr: adminAddr, LogLevel: "info",
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	}, mesh.Clients{Kube: client})

	ctx := context.Background()
	f := frontend(vip, mesh.TCP)
	ag.waitState("two endpoints", func(st mesh.State) bool { return len(st[f].Backends) == 2 })
	watches.wait(t, 2)

	seen := map[string]int{}
	for _, r := range runChild(t, cg, "tcp", vip, dials) {
		seen[r.Name]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != dials {
		t.Fatalf("connections per endpoint %v: want both of a and b", seen)
	}

	// The admin endpoints: ready, the frontend in the dump, the kernel's
	// counters in the metrics.
	if code, body := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the first sync: %d %s", code, body)
	}
	if _, body := get(t, "http://"+adminAddr+"/config_dump"); !strings.Contains(body, `"frontend": "`+vip+`/TCP"`) || !strings.Contains(body, `"default/web"`) {
		t.Fatalf("/config_dump does not show %s of default/web:\n%s", vip, body)
	}
	_, metrics := get(t, "http://"+adminAddr+"/metrics")
	for _, want := range []string{`rauta_mesh_frontends 1`, `rauta_mesh_endpoint_slots 2`, `rauta_mesh_syncs_total{result="ok"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !regexp.MustCompile(`rauta_mesh_socket_translations_total\{result="endpoint"\} ([4-9]\d|\d{3,})`).MatchString(metrics) {
		t.Errorf("/metrics does not count the %d translated connects:\n%s", dials, grepLines(metrics, "rauta_mesh_"))
	}

	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, "web-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ag.waitState("only a", func(st mesh.State) bool {
		return len(st[f].Backends) == 1 && st[f].Backends[0] == a
	})
	for i, r := range runChild(t, cg, "tcp", vip, dials) {
		if r.Name != "a" {
			t.Fatalf("dial %d after web-b was deleted: %+v", i, r)
		}
	}

	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, loopbackSlice("web-a", "web", a.Port(), false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ag.waitState("no ready endpoint", func(st mesh.State) bool { _, ok := st[f]; return ok && len(st[f].Backends) == 0 })
	if r := runChild(t, cg, "tcp", vip, 1)[0]; r.Errno != "ECONNREFUSED" {
		t.Fatalf("dial with no ready endpoint: %+v, want ECONNREFUSED", r)
	}

	ag.shutdown()
	if n := attachedPrograms(t, cgroup, ebpf.AttachCGroupInet4Connect); n != 0 {
		t.Fatalf("after the agent stopped %d connect4 programs are attached", n)
	}
}

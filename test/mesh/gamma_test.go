package mesh

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/false-systems/rauta/internal/mesh"
)

// The GAMMA test's addresses, its own: ClusterIPs from 10.96.232.0/24 and
// client pod addresses from 127.0.232.0/24 (on loopback, so a child binds
// them as its source and the proxy sees them as the client's address).
const (
	gammaVIP    = "10.96.232.10"
	gammaVIPv2  = "10.96.232.11"
	clientPodIP = "127.0.232.2" // namespace "client"
	otherPodIP  = "127.0.232.3" // namespace "other"
)

// httpEcho answers every request with its name, the X-Mesh header it got
// and the address the request came from.
func httpEcho(t testing.TB, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s x-mesh=%s from=%s", name, r.Header.Get("X-Mesh"), host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func pod(ns, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Status:     corev1.PodStatus{PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

// deploymentPod is pod as a Deployment "web" makes it: owned by its
// ReplicaSet, named for it, with its pod-template-hash label.
func deploymentPod(ns, ip string) *corev1.Pod {
	p := pod(ns, ip)
	p.Name = "web-5f7c8d9b4-q2x7z"
	p.Labels = map[string]string{"pod-template-hash": "5f7c8d9b4", "app": "web"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5f7c8d9b4", UID: "rs", Controller: ptr(true)}}
	return p
}

func gammaSlice(name, svc string, ports map[string]uint16) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "store", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	}
	for n, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(int32(p)), Protocol: ptr(corev1.ProtocolTCP)})
	}
	return es
}

// gammaService is a Service in namespace store with ClusterIP ip; without
// ports it has one, "http" on 80.
func gammaService(name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Ports: ports},
	}
}

// gammaAPI is a fake API server holding objs whose discovery serves
// HTTPRoutes, so the agent turns GAMMA on.
func gammaAPI(objs ...runtime.Object) *fake.Clientset {
	kube := fake.NewClientset(objs...)
	kube.Resources = []*metav1.APIResourceList{{
		GroupVersion: gwv1.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}},
	}}
	return kube
}

// selfRoute is a producer route of the Service store/name sending
// everything to that Service's port 80, through filters.
func selfRoute(name string, filters ...gwv1.HTTPRouteFilter) *gwv1.HTTPRoute {
	parent := serviceParent("", 0)
	parent.Name = gwv1.ObjectName(name)
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backendTo("store", name, filters...)}}},
		},
	}
}

func serviceParent(ns string, port int32) gwv1.ParentReference {
	ref := gwv1.ParentReference{Group: ptr(gwv1.Group("")), Kind: ptr(gwv1.Kind("Service")), Name: "echo"}
	if ns != "" {
		ref.Namespace = ptr(gwv1.Namespace(ns))
	}
	if port != 0 {
		ref.Port = ptr(gwv1.PortNumber(port))
	}
	return ref
}

func backendTo(ns, name string, filters ...gwv1.HTTPRouteFilter) gwv1.HTTPBackendRef {
	return gwv1.HTTPBackendRef{
		BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
			Name: gwv1.ObjectName(name), Namespace: ptr(gwv1.Namespace(ns)), Port: ptr(gwv1.PortNumber(80)),
		}},
		Filters: filters,
	}
}

func addHeader(name, value string) gwv1.HTTPRouteFilter {
	return gwv1.HTTPRouteFilter{
		Type:                  gwv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: gwv1.HTTPHeaderName(name), Value: value}}},
	}
}

// TestGAMMARoutes runs the agent with its mesh proxy against a fake API
// server: clients in the test's cgroup, with the addresses of pods in two
// namespaces, fetch http://ClusterIP/.
//
//   - Without routes they reach the endpoint directly.
//   - A producer HTTPRoute (in the Service's namespace) steers the Service
//     to the proxy: a request with "version: v2" goes to the v2 Service
//     with X-Mesh added, the others to the Service itself; the Service's
//     other port (no appProtocol, a server-first protocol) is relayed as
//     it is after the detection gives up.
//   - A consumer route in namespace client sends that namespace's
//     requests to v2 whatever their headers; namespace other still gets
//     the producer routes.
//   - Without the producer route, other's connections are relayed to the
//     Service at L4; without any route the Service is not steered and
//     traffic goes straight to the endpoint again.
func TestGAMMARoutes(t *testing.T) {
	cgroup, cg := testCgroup(t)
	v1, v2, raw := httpEcho(t, "v1"), httpEcho(t, "v2"), tcpServer(t, "tcp4", "raw")

	// Both Services' endpoint is 127.0.0.1; echo-v2's names its pod
	// (targetRef), a pod of Deployment echo-v2 the agent's node pod watch
	// does not list (as on another node): only the metadata API has it.
	v2Slice := gammaSlice("echo-v2-a", "echo-v2", map[string]uint16{"http": v2.Port()})
	v2Slice.Endpoints[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "store", Name: "echo-v2-6b8d9f7c5-k4m2p"}
	kube := gammaAPI(
		gammaService("echo", gammaVIP,
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "raw", Port: 9000, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "h2c", Port: 81, Protocol: corev1.ProtocolTCP, AppProtocol: ptr("kubernetes.io/h2c")}),
		gammaService("echo-v2", gammaVIPv2),
		gammaSlice("echo-a", "echo", map[string]uint16{"http": v1.Port(), "raw": raw.Port(), "h2c": v1.Port()}),
		v2Slice,
		deploymentPod("client", clientPodIP), pod("other", otherPodIP),
	)
	remotePod := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "echo-v2-6b8d9f7c5-k4m2p", Labels: map[string]string{"pod-template-hash": "6b8d9f7c5"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "echo-v2-6b8d9f7c5", UID: "rs", Controller: ptr(true)}}},
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme, remotePod)
	gw := gwfake.NewClientset()
	var watches watchCounter
	kube.PrependWatchReactor("*", watches.reactor)
	gw.PrependWatchReactor("*", watches.reactor)
	adminAddr := freePort(t)
	ag := startAgent(t, mesh.Config{
		Cgroup: cgroup, AdminAddr: adminAddr, LogLevel: "info", ProxyAddr: "127.0.0.1:0", StatusLease: "default/rauta-mesh-status",
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, RemoteWorkloads: true,
	}, mesh.Clients{Kube: kube, Gateway: gw, Metadata: meta})
	ctx := context.Background()

	web, rawFE := frontend(gammaVIP+":80", mesh.TCP), frontend(gammaVIP+":9000", mesh.TCP)
	// waitStatus waits until /status shows (or, with gone, no longer
	// shows) want: the proxy serves the routes of a status it shows.
	waitStatus := func(want string, gone bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, body := get(t, "http://"+adminAddr+"/status")
			if strings.Contains(body, want) != gone {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/status within 30s: want %q (gone %v), have:\n%s", want, gone, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	expect := func(source, header, want string) {
		t.Helper()
		if got := fetchVIP(t, cg, gammaVIP+":80", source, header); got != want {
			t.Errorf("GET from %s with %q: %q, want %q", source, header, got, want)
		}
	}

	ag.waitState("the Service", func(st mesh.State) bool { return len(st[web].Backends) == 1 })
	// Services, EndpointSlices, Pods, HTTPRoutes.
	watches.wait(t, 4)
	expect(clientPodIP, "", "200 v1 x-mesh= from="+clientPodIP)

	routes := gw.GatewayV1().HTTPRoutes
	producer := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "echo-split"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{serviceParent("", 0)}},
			Rules: []gwv1.HTTPRouteRule{
				{
					Matches:     []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: "version", Value: "v2"}}}},
					BackendRefs: []gwv1.HTTPBackendRef{backendTo("store", "echo-v2", addHeader("X-Mesh", "v2"))},
				},
				{BackendRefs: []gwv1.HTTPBackendRef{backendTo("store", "echo")}},
			},
		},
	}
	if _, err := routes("store").Create(ctx, producer, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ag.waitState("every port steered", func(st mesh.State) bool {
		return st[web].Steer && st[rawFE].Steer && st[frontend(gammaVIP+":81", mesh.TCP)].Steer
	})
	waitStatus(`"route": "store/echo-split"`, false)
	if _, body := get(t, "http://"+adminAddr+"/status"); !strings.Contains(body, `"Accepted": "True Accepted`) {
		t.Errorf("/status does not show the producer route accepted:\n%s", body)
	}
	expect(otherPodIP, "", "200 v1 x-mesh= from=127.0.0.1")
	expect(otherPodIP, "version: v2", "200 v2 x-mesh=v2 from=127.0.0.1")
	expect(clientPodIP, "version: v2", "200 v2 x-mesh=v2 from=127.0.0.1")
	// Port 81, appProtocol kubernetes.io/h2c: HTTP/2 with prior
	// knowledge, routed by the same rules (the endpoint gets HTTP/1.1).
	cmd := childCmd(t, cg, "h2c", gammaVIP+":81", 1)
	cmd.Env = append(cmd.Env, childSource+"="+otherPodIP, childHeader+"=version: v2")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child h2c: %v\n%s", err, out)
	}
	if r := decode(t, out)[0]; r.Name != "200 HTTP/2.0 v2 x-mesh=v2 from=127.0.0.1" || r.Peer != gammaVIP+":81" {
		t.Errorf("h2c to port 81: %+v, want HTTP/2 routed to v2 through the proxy", r)
	}
	// Port 9000: no appProtocol and the server speaks first; the proxy
	// waits for the client's first bytes, then relays.
	if r := runChild(t, cg, "tcp", gammaVIP+":9000", 1)[0]; r.Name != "raw" {
		t.Errorf("steered connection to the server-first port: %+v, want the relayed greeting", r)
	}

	missing := serviceParent("store", 0)
	missing.Name = "missing"
	consumer := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "client", Name: "mine"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{serviceParent("store", 80), missing}},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backendTo("store", "echo-v2", addHeader("X-Mesh", "consumer"))}}},
		},
	}
	if _, err := routes("client").Create(ctx, consumer, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(`"route": "client/mine"`, false)
	expect(clientPodIP, "", "200 v2 x-mesh=consumer from=127.0.0.1")
	expect(clientPodIP, "version: v2", "200 v2 x-mesh=consumer from=127.0.0.1")
	// The agent holding the Lease wrote both routes' status.
	waitRouteStatus(t, gw, "store", "echo-split", map[string]string{"echo": "True/Accepted"})
	waitRouteStatus(t, gw, "client", "mine", map[string]string{"echo": "True/Accepted", "missing": "False/NoMatchingParent"})
	expect(otherPodIP, "", "200 v1 x-mesh= from=127.0.0.1")
	expect(otherPodIP, "version: v2", "200 v2 x-mesh=v2 from=127.0.0.1")
	// The proxy's HTTP metrics name who called whom: the client pods'
	// workloads (Deployment web in client, the bare pod app in other), the
	// Service dialled and the endpoint's workload: no pod of this node,
	// named by its EndpointSlice's targetRef and the pod's metadata
	// (Deployment echo-v2).
	_, metrics := get(t, "http://"+adminAddr+"/metrics")
	for _, want := range []string{
		`destination_service="store/echo",destination_workload="echo-v2",destination_workload_namespace="store",error_type="",gateway="store/echo",http_request_method="GET",http_response_status_code="200",http_route="httproute/client/mine/rule/0",network_protocol_version="1.1",source_workload="web",source_workload_namespace="client",url_scheme="http"} 2`,
		`source_workload="app",source_workload_namespace="other",url_scheme="http"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks a series with\n  %s\nhas:\n%s", want, grepLines(metrics, "http_server_request_duration_seconds_count"))
		}
	}

	// Only the consumer route left: port 80 stays steered for namespace
	// client; other's connections are relayed to the Service unchanged.
	if err := routes("store").Delete(ctx, "echo-split", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ag.waitState("port 9000 no longer steered", func(st mesh.State) bool { return st[web].Steer && !st[rawFE].Steer })
	waitStatus(`"route": "store/echo-split"`, true)
	expect(otherPodIP, "version: v2", "200 v1 x-mesh= from=127.0.0.1")
	expect(clientPodIP, "", "200 v2 x-mesh=consumer from=127.0.0.1")
	_, metrics = get(t, "http://"+adminAddr+"/metrics")
	if !strings.Contains(metrics, `rauta_mesh_proxy_connections_total{result="tcp"} 2`) {
		t.Errorf("/metrics: want 2 relayed connections (port 9000, namespace other without routes):\n%s", grepLines(metrics, "rauta_mesh_proxy"))
	}

	if err := routes("client").Delete(ctx, "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ag.waitState("nothing steered", func(st mesh.State) bool { return !st[web].Steer && !st[rawFE].Steer })
	expect(clientPodIP, "version: v2", "200 v1 x-mesh= from="+clientPodIP)

	ag.shutdown()
}

// waitRouteStatus waits until the route's rauta.io/mesh parent entries
// have, by parent Service name, the Accepted "Status/Reason" of want.
func waitRouteStatus(t *testing.T, gw *gwfake.Clientset, ns, name string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := gw.GatewayV1().HTTPRoutes(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range r.Status.Parents {
			if p.ControllerName != "rauta.io/mesh" {
				continue
			}
			for _, c := range p.Conditions {
				if c.Type == "Accepted" {
					got[string(p.ParentRef.Name)] = string(c.Status) + "/" + c.Reason
				}
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPRoute %s/%s status within 30s: %v, want %v", ns, name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetchVIP GETs http://vip/ from a child in the cgroup bound to source,
// with header, and returns "STATUS BODY". The child must see vip as its
// peer, whichever way the connection went.
func fetchVIP(t *testing.T, cg *os.File, vip, source, header string) string {
	t.Helper()
	cmd := childCmd(t, cg, "http", vip, 1)
	cmd.Env = append(cmd.Env, childSource+"="+source, childHeader+"="+header)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child http from %s: %v\n%s", source, err, out)
	}
	r := decode(t, out)[0]
	if r.Err != "" || r.Errno != "" {
		t.Fatalf("GET http://%s/ from %s (%s): %+v", vip, source, header, r)
	}
	if r.Peer != vip {
		t.Errorf("GET from %s: peer %s, want the ClusterIP %s", source, r.Peer, vip)
	}
	return r.Name
}

// TestGAMMAAfterAKilledAgent: an agent killed while steering leaves its
// pinned maps with Steer flags and a proxy address nobody listens on, so
// steered connections are refused. The next agent clears the address at
// start and steers again only once its own proxy serves: a Service whose
// route remains goes through the new proxy, one whose route went while no
// agent ran goes straight to its endpoint.
func TestGAMMAAfterAKilledAgent(t *testing.T) {
	cgroup, cg := testCgroup(t)
	pins := bpffs(t)
	ep := httpEcho(t, "ep")
	const routed, unrouted = "10.96.232.30", "10.96.232.31"

	// What a killed agent leaves: pinned maps, programs attached,
	// frontends steered to a proxy that is gone.
	d, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins})
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer()
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(freePort(t))
	left := mesh.State{}
	for _, vip := range []string{routed, unrouted} {
		left[frontend(vip+":80", mesh.TCP)] = mesh.Entry{Backends: []netip.AddrPort{ep}, Steer: true}
	}
	if err := w.Apply(left); err != nil {
		t.Fatal(err)
	}
	if err := d.SetProxy(dead, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(true); err != nil {
		t.Fatal(err)
	}
	if r := runChild(t, cg, "tcp", routed+":80", 1)[0]; r.Errno != "ECONNREFUSED" {
		t.Fatalf("steered to the dead proxy: %+v, want ECONNREFUSED", r)
	}

	kube := gammaAPI(gammaService("routed", routed), gammaService("unrouted", unrouted),
		gammaSlice("routed-a", "routed", map[string]uint16{"http": ep.Port()}),
		gammaSlice("unrouted-a", "unrouted", map[string]uint16{"http": ep.Port()}),
		pod("client", clientPodIP))
	gw := gwfake.NewClientset(selfRoute("routed", addHeader("X-Mesh", "routed")))
	ag := startAgent(t, mesh.Config{
		Cgroup: cgroup, PinDir: pins, AdminAddr: freePort(t), LogLevel: "info", ProxyAddr: "127.0.0.1:0",
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	}, mesh.Clients{Kube: kube, Gateway: gw})
	ag.waitState("only the routed Service steered", func(st mesh.State) bool {
		return st[frontend(routed+":80", mesh.TCP)].Steer && !st[frontend(unrouted+":80", mesh.TCP)].Steer
	})
	if got, want := fetchVIP(t, cg, routed+":80", clientPodIP, ""), "200 ep x-mesh=routed from=127.0.0.1"; got != want {
		t.Errorf("routed Service after the restart: %q, want %q (through the new proxy)", got, want)
	}
	if got, want := fetchVIP(t, cg, unrouted+":80", clientPodIP, ""), "200 ep x-mesh= from="+clientPodIP; got != want {
		t.Errorf("Service whose route went: %q, want %q (straight to the endpoint)", got, want)
	}
	ag.shutdown()
}

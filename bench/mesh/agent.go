package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/false-systems/rauta/internal/mesh"
)

// runAgent is the "agent" role: the mesh agent (mesh.Serve, what `rauta
// mesh` runs) in a process of its own, in its own cgroup under the one it
// attaches to, fed by an in-memory API server that holds the bench's
// Service, EndpointSlice, pods and a producer HTTPRoute (GAMMA) for the
// Service. The agent's code path is the one a cluster runs; only the API
// server is not a real one (it has nothing to measure here). It runs
// until SIGTERM.
func runAgent(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("agent: want <cgroup> <admin addr> <sockmap true|false>, got %q", args)
	}
	sockmap, err := strconv.ParseBool(args[2])
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	kube := fake.NewClientset(benchService(), benchSlice(), benchPod("client", "client", podIP("client")), benchPod("store", "server", podIP("server")))
	// Discovery must serve HTTPRoutes, or the agent leaves GAMMA off.
	kube.Resources = []*metav1.APIResourceList{{
		GroupVersion: gwv1.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}},
	}}
	cfg := mesh.Config{
		Cgroup: args[0], AdminAddr: args[1], LogLevel: "warn", Sockmap: sockmap,
		ProxyAddr: fmt.Sprintf("%s:%d", nodeIP, proxyPort), NodeName: "",
		HoldOff: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if path := os.Getenv(profileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return mesh.Serve(ctx, cfg, mesh.Clients{Kube: kube, Gateway: gwfake.NewClientset(benchRoute())}, logger)
}

// profileEnv names the file the agent writes its CPU profile to
// (-agent-cpuprofile).
const profileEnv = "RAUTA_MESHBENCH_CPUPROFILE"

func podIP(name string) string {
	for _, s := range podSpecs() {
		if s.name == name {
			return s.ip
		}
	}
	panic("no pod " + name)
}

func ptr[T any](v T) *T { return &v }

// benchService is store/echo, ClusterIP clusterIP, port 80 "http".
func benchService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "echo"},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []corev1.ServicePort{{Name: "http", Port: svcPort, Protocol: corev1.ProtocolTCP}}},
	}
}

// benchSlice is the Service's one ready endpoint: the server pod.
func benchSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "store", Name: "echo-a", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{podIP("server")}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(appPort)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
}

func benchPod(ns, name, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     corev1.PodStatus{PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

// benchRoute is a producer route of store/echo sending everything to it:
// the plainest GAMMA route, which makes the Service's connections go
// through the mesh proxy.
func benchRoute() *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "echo"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptr(gwv1.Group("")), Kind: ptr(gwv1.Kind("Service")), Name: "echo",
			}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr(gwv1.PortNumber(svcPort))},
			}}}}},
		},
	}
}

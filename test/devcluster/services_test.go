package devcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/devcluster/svcproxy"
)

// The services test has its own bridge and ranges so it can run next to TestCluster and
// a cluster started with hack/devcluster.sh.
const (
	svcBridge  = "rsvc0"
	svcPodCIDR = "10.244.211.0/24"
	svcCIDR    = "10.96.211.0/24"
	svcLBCIDR  = "127.0.211.0/24"
	svcNS      = "svc-test"
)

const svcManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: svc-test}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: svc-test}
spec:
  replicas: 2
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        ports:
        - {name: http, containerPort: 3000}
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: svc-test}
spec:
  selector: {app: echo}
  ports:
  - {name: web, port: 8080, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: echo-lb, namespace: svc-test}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports:
  - {name: web, port: 80, targetPort: 3000}
`

func TestServices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping: the service proxy and the node agent need root (routes, network namespaces, a bridge); CI runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping: devcluster binaries are missing and could not be built: %v", err)
	}
	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot: root, Binaries: &bins, SkipGatewayAPI: true,
		ServiceCIDR: svcCIDR, LoadBalancerCIDR: svcLBCIDR,
		Node: &node.Config{Bridge: svcBridge, PodCIDR: svcPodCIDR},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.Stop()
		}
	})
	cs, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LoadBalancerCIDR(); got != svcLBCIDR {
		t.Errorf("LoadBalancerCIDR() = %q", got)
	}
	if !strings.Contains(localRoutes(t), "local "+svcCIDR+" dev lo") {
		t.Fatalf("no local route for the Service range:\n%s", localRoutes(t))
	}

	if err := c.Apply(ctx, []byte(svcManifests)); err != nil {
		t.Fatal(err)
	}
	pods := readyPods(ctx, t, cs, svcNS, "app=echo", 2)
	want := map[string]bool{pods[0].Name: true, pods[1].Name: true}
	clusterIP := getService(ctx, t, cs, "echo").Spec.ClusterIP

	var lbIP string
	t.Run("load balancer status is the lowest pool address", func(t *testing.T) {
		svc := waitService(ctx, t, cs, "echo-lb", func(s *corev1.Service) error {
			if len(s.Status.LoadBalancer.Ingress) != 1 {
				return fmt.Errorf("ingress %+v", s.Status.LoadBalancer.Ingress)
			}
			return nil
		})
		in := svc.Status.LoadBalancer.Ingress[0]
		lbIP = in.IP
		if in.IP != "127.0.211.1" || in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP {
			t.Errorf("ingress %s mode %v, want 127.0.211.1 VIP", in.IP, in.IPMode)
		}
	})

	t.Run("cluster ip reaches both pods from the host", func(t *testing.T) {
		reachesAll(ctx, t, "http://"+clusterIP+":8080/", want)
	})
	t.Run("load balancer address reaches both pods from the host", func(t *testing.T) {
		if lbIP == "" {
			t.Skip("no address")
		}
		reachesAll(ctx, t, "http://"+lbIP+"/", want)
	})
	t.Run("node port on 127.0.0.1", func(t *testing.T) {
		np := getService(ctx, t, cs, "echo-lb").Spec.Ports[0].NodePort
		reachesAll(ctx, t, fmt.Sprintf("http://127.0.0.1:%d/", np), want)
	})
	t.Run("pods reach the cluster ip", func(t *testing.T) {
		names := netnsWithPrefix(t, svcBridge+"-")
		if len(names) == 0 {
			t.Fatal("no pod namespaces")
		}
		// From a pod to the Service: through the pod's route to the bridge, the host's local
		// route and the proxy, possibly back into the same pod.
		body := getFromNetns(t, names[0], clusterIP+":8080")
		var resp echoResponse
		if err := json.Unmarshal([]byte(body), &resp); err != nil || !want[resp.Pod] {
			t.Errorf("answer from inside %s: %q (%v)", names[0], body, err)
		}
	})

	t.Run("the kubernetes service reaches the api server", func(t *testing.T) {
		// Pods' in-cluster clients dial this address; the API server's certificate names it.
		ip := getServiceIn(ctx, t, cs, metav1.NamespaceDefault, "kubernetes").Spec.ClusterIP
		cfg := c.RESTConfig()
		cfg.Host = "https://" + ip + ":443"
		viaService, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := viaService.Discovery().ServerVersion(); err != nil {
			t.Errorf("API server through %s: %v", cfg.Host, err)
		}
	})

	t.Run("address requests and classes", func(t *testing.T) {
		lb := func(name string, ann map[string]string, class *string) *corev1.Service {
			return &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: svcNS, Annotations: ann},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "echo"}, LoadBalancerClass: class,
					Ports: []corev1.ServicePort{{Name: "web", Port: 81, TargetPort: intOrStr(3000)}},
				},
			}
		}
		other := "example.com/other"
		for _, s := range []*corev1.Service{
			lb("foreign", nil, &other),
			lb("req", map[string]string{svcproxy.AnnotationLoadBalancerIP: "127.0.211.50"}, nil),
			lb("req-taken", map[string]string{svcproxy.AnnotationLoadBalancerIP: "127.0.211.50"}, nil),
			lb("req-outside", map[string]string{svcproxy.AnnotationLoadBalancerIP: "127.0.99.1"}, nil),
		} {
			if _, err := cs.CoreV1().Services(svcNS).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitService(ctx, t, cs, "req", func(s *corev1.Service) error {
			if len(s.Status.LoadBalancer.Ingress) != 1 || s.Status.LoadBalancer.Ingress[0].IP != "127.0.211.50" {
				return fmt.Errorf("ingress %+v", s.Status.LoadBalancer.Ingress)
			}
			return nil
		})
		reachesAll(ctx, t, "http://127.0.211.50:81/", want)
		for name, why := range map[string]string{"req-taken": "already assigned", "req-outside": "not in the load-balancer pool"} {
			waitEvent(ctx, t, cs, name, "AllocationFailed", why)
			if s := getService(ctx, t, cs, name); len(s.Status.LoadBalancer.Ingress) != 0 {
				t.Errorf("%s got %+v", name, s.Status.LoadBalancer.Ingress)
			}
		}
		// The foreign class was created first; by now it would have an address if the proxy
		// had taken it.
		if s := getService(ctx, t, cs, "foreign"); len(s.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("Service of another loadBalancerClass got %+v", s.Status.LoadBalancer.Ingress)
		}
		// Once the holder is gone the waiting request gets the address (requeued when it
		// was freed: the proxy's periodic resync is far longer than this wait).
		if err := cs.CoreV1().Services(svcNS).Delete(ctx, "req", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitService(ctx, t, cs, "req-taken", func(s *corev1.Service) error {
			if len(s.Status.LoadBalancer.Ingress) != 1 || s.Status.LoadBalancer.Ingress[0].IP != "127.0.211.50" {
				return fmt.Errorf("ingress %+v", s.Status.LoadBalancer.Ingress)
			}
			return nil
		})
	})

	t.Run("no ready endpoint fails fast", func(t *testing.T) {
		scale(ctx, t, cs, 0)
		// Until the pods are gone their endpoints may be terminating but serving, which the
		// proxy still uses (as kube-proxy does) when nothing is ready.
		poll(ctx, t, "no endpoints", func() error {
			if n := endpointCount(ctx, cs); n != 0 {
				return fmt.Errorf("%d endpoints", n)
			}
			return nil
		})
		for _, addr := range []string{clusterIP + ":8080", lbIP + ":80"} {
			if err := refused(addr); err != nil {
				t.Errorf("%s: %v", addr, err)
			}
		}
		scale(ctx, t, cs, 2)
		pods = readyPods(ctx, t, cs, svcNS, "app=echo", 2)
		want = map[string]bool{pods[0].Name: true, pods[1].Name: true}
		reachesAll(ctx, t, "http://"+clusterIP+":8080/", want)
	})

	t.Run("deleting the service frees its address and closes its listener", func(t *testing.T) {
		if err := cs.CoreV1().Services(svcNS).Delete(ctx, "echo-lb", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, "listener on "+lbIP+":80 closed", func() error {
			c, err := net.DialTimeout("tcp4", lbIP+":80", time.Second)
			if err == nil {
				c.Close()
				return errors.New("still accepting")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
			return nil
		})
		again := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "echo-lb2", Namespace: svcNS},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "echo"},
				Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intOrStr(3000)}}},
		}
		if _, err := cs.CoreV1().Services(svcNS).Create(ctx, again, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitService(ctx, t, cs, "echo-lb2", func(s *corev1.Service) error {
			if len(s.Status.LoadBalancer.Ingress) != 1 || s.Status.LoadBalancer.Ingress[0].IP != lbIP {
				return fmt.Errorf("ingress %+v, want the freed %s", s.Status.LoadBalancer.Ingress, lbIP)
			}
			return nil
		})
		reachesAll(ctx, t, "http://"+lbIP+"/", want)

		// Changing the type away from LoadBalancer also releases the address.
		patch := []byte(`{"spec":{"type":"ClusterIP"}}`)
		if _, err := cs.CoreV1().Services(svcNS).Patch(ctx, "echo-lb2", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, "listener on "+lbIP+":80 closed after the type change", func() error {
			if err := refused(lbIP + ":80"); err != nil {
				return err
			}
			if s := getService(ctx, t, cs, "echo-lb2"); len(s.Status.LoadBalancer.Ingress) != 0 {
				return fmt.Errorf("status still %+v", s.Status.LoadBalancer.Ingress)
			}
			return nil
		})
	})

	t.Run("stop removes the local route and the listeners", func(t *testing.T) {
		stopped = true
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		if routes := localRoutes(t); strings.Contains(routes, svcCIDR) {
			t.Errorf("local route left after Stop:\n%s", routes)
		}
		if c, err := net.DialTimeout("tcp4", "127.0.211.50:81", time.Second); err == nil { // req-taken's
			c.Close()
			t.Error("load-balancer listener still accepting after Stop")
		}
	})
}

func intOrStr(port int32) intstr.IntOrString { return intstr.FromInt32(port) }

func localRoutes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "local").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	return string(out)
}

func getService(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) *corev1.Service {
	t.Helper()
	return getServiceIn(ctx, t, cs, svcNS, name)
}

func getServiceIn(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) *corev1.Service {
	t.Helper()
	s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitService(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, check func(*corev1.Service) error) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	poll(ctx, t, "service "+name, func() error {
		s, err := cs.CoreV1().Services(svcNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc = s
		return check(s)
	})
	return svc
}

func waitEvent(ctx context.Context, t *testing.T, cs kubernetes.Interface, name, reason, contains string) {
	t.Helper()
	sel := fields.Set{"involvedObject.name": name, "reason": reason}.AsSelector().String()
	poll(ctx, t, reason+" event on "+name, func() error {
		list, err := cs.CoreV1().Events(svcNS).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err
		}
		for _, e := range list.Items {
			if strings.Contains(e.Message, contains) {
				return nil
			}
		}
		return fmt.Errorf("%d events, none saying %q", len(list.Items), contains)
	})
}

func readyPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	poll(ctx, t, fmt.Sprintf("%d ready pods", n), func() error {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		ready = ready[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) && p.Status.PodIP != "" {
				ready = append(ready, p)
			}
		}
		if len(ready) != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d pods ready", len(ready), len(list.Items))
		}
		return nil
	})
	return ready
}

func endpointCount(ctx context.Context, cs kubernetes.Interface) int {
	list, err := cs.DiscoveryV1().EndpointSlices(svcNS).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=echo"})
	if err != nil {
		return -1
	}
	n := 0
	for _, s := range list.Items {
		n += len(s.Endpoints)
	}
	return n
}

func scale(ctx context.Context, t *testing.T, cs kubernetes.Interface, replicas int32) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	if _, err := cs.AppsV1().Deployments(svcNS).Patch(ctx, "echo", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// reachesAll GETs url with a new connection each time until every wanted pod answered
// (round robin needs two requests for two pods; the bound allows for slow readiness).
func reachesAll(ctx context.Context, t *testing.T, url string, want map[string]bool) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	seen := map[string]bool{}
	poll(ctx, t, "GET "+url+" from every pod", func() error {
		r, err := client.Get(url)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		var resp echoResponse
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&resp); err != nil {
			return err
		}
		if !want[resp.Pod] {
			return fmt.Errorf("answer from %q, not one of %v", resp.Pod, want)
		}
		seen[resp.Pod] = true
		if len(seen) < len(want) {
			return fmt.Errorf("only %v answered", seen)
		}
		return nil
	})
}

// refused checks that a connection to addr ends at once: refused, reset, or closed before
// any byte, never a timeout.
func refused(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	n, err := c.Read(make([]byte, 64))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("connection hung")
	}
	if n > 0 || err == nil {
		return fmt.Errorf("read %d bytes, want the connection ended", n)
	}
	return nil
}

// getFromNetns sends an HTTP/1.0 GET to addr from inside the named network namespace and
// returns the body.
func getFromNetns(t *testing.T, name, addr string) string {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked if switching back fails: Go discards the thread
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: err}
			return
		}
		// The socket belongs to the namespace it was created in.
		c, derr := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err := netns.Set(orig); err != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{err: err}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c: c, err: derr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, name, r.err)
	}
	defer r.c.Close()
	r.c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(r.c, "GET /from-pod HTTP/1.0\r\nHost: x\r\n\r\n")
	raw, err := io.ReadAll(r.c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	_, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	return body
}

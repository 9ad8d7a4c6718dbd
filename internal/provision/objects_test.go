package provision

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/configstream"
)

func testGateway() *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", UID: "uid-1"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "rauta",
			Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
				{Name: "http-b", Port: 80, Protocol: gwv1.HTTPProtocolType},
				{Name: "alt", Port: 8080, Protocol: gwv1.HTTPProtocolType},
			},
			Infrastructure: &gwv1.GatewayInfrastructure{
				Labels:      map[gwv1.LabelKey]gwv1.LabelValue{"team": "blue"},
				Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{"owner": "blue@example.com"},
			},
		},
	}
}

func input() Input {
	return Input{Gateway: testGateway(), Image: "ghcr.io/false-systems/rauta:v1", Controller: "10.96.0.10:18443", ServerName: "rauta-controller.rauta-system.svc", CAPEM: "PEM"}
}

func TestDesiredObjects(t *testing.T) {
	objs := Desired(input())
	d, svc, sa := objs.Deployment, objs.Service, objs.ServiceAccount

	for _, m := range []metav1.ObjectMeta{d.ObjectMeta, svc.ObjectMeta, sa.ObjectMeta} {
		if m.Name != "rauta-web" || m.Namespace != "apps" {
			t.Errorf("object %s/%s, want apps/rauta-web", m.Namespace, m.Name)
		}
		if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Kind != "Gateway" || m.OwnerReferences[0].UID != "uid-1" {
			t.Errorf("%s: owner %+v, want the Gateway (deleting it must delete this)", m.Name, m.OwnerReferences)
		}
		if m.Labels["team"] != "blue" || m.Annotations["owner"] != "blue@example.com" || m.Labels[gwv1.GatewayNameLabelKey] != "web" {
			t.Errorf("%s: labels %v annotations %v miss the infrastructure metadata or gateway-name", m.Name, m.Labels, m.Annotations)
		}
		if m.Annotations[AnnotationHash] == "" {
			t.Errorf("%s: no hash annotation", m.Name)
		}
	}
	pod := d.Spec.Template
	if pod.Labels["team"] != "blue" || pod.Annotations["owner"] != "blue@example.com" {
		t.Errorf("pod template labels %v annotations %v miss the infrastructure metadata", pod.Labels, pod.Annotations)
	}

	// Ports: 80 once, mapped to 10080 in the pod; 8080 as it is.
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("service type %s, want LoadBalancer by default", svc.Spec.Type)
	}
	var got []string
	for _, p := range svc.Spec.Ports {
		got = append(got, p.Name+":"+itoa(p.Port)+"->"+p.TargetPort.String())
	}
	if want := []string{"port-80:80->10080", "port-8080:8080->8080"}; !slices.Equal(got, want) {
		t.Errorf("service ports %v, want %v", got, want)
	}

	// Restricted pod security, no API token, the bound config token.
	ps := pod.Spec
	c := ps.Containers[0]
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || *ps.SecurityContext.RunAsUser != 65532 ||
		ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v is not restricted", ps.SecurityContext)
	}
	if *c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem || !slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) || c.SecurityContext.Capabilities.Add != nil {
		t.Errorf("container security context %+v is not restricted", c.SecurityContext)
	}
	if *ps.AutomountServiceAccountToken || *sa.AutomountServiceAccountToken {
		t.Error("the data plane must not get an API token")
	}
	tok := ps.Volumes[0].Projected.Sources[0].ServiceAccountToken
	if tok.Audience != configstream.Audience {
		t.Errorf("token audience %q, want %q", tok.Audience, configstream.Audience)
	}
	args := strings.Join(c.Args, " ")
	if !slices.Equal(c.Command, []string{"/rauta-dataplane"}) {
		t.Errorf("command %v, want the data-plane binary", c.Command)
	}
	for _, want := range []string{"-gateway=apps/web", "-controller=10.96.0.10:18443", "-controller-server-name=rauta-controller.rauta-system.svc", "-drain-period=5s", "-shutdown-timeout=25s"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if *ps.TerminationGracePeriodSeconds != 35 {
		t.Errorf("grace %d s, want drain 5 + shutdown 25 + 5", *ps.TerminationGracePeriodSeconds)
	}
	if d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntVal != 0 {
		t.Error("rollouts may lower capacity: maxUnavailable must be 0")
	}
}

func TestDesiredIsStableAndHashFollowsContent(t *testing.T) {
	a, b := Desired(input()), Desired(input())
	if a.Deployment.Annotations[AnnotationHash] != b.Deployment.Annotations[AnnotationHash] {
		t.Fatal("the same input gave two hashes: every sync would write")
	}
	in := input()
	three := int32(3)
	in.Params = Parameters{Replicas: &three}
	c := Desired(in)
	if c.Deployment.Annotations[AnnotationHash] == a.Deployment.Annotations[AnnotationHash] {
		t.Error("replicas changed but the hash did not: the change would never be applied")
	}
	if c.Service.Annotations[AnnotationHash] != a.Service.Annotations[AnnotationHash] {
		t.Error("the Service did not change but its hash did")
	}
}

func TestParametersParseAndMerge(t *testing.T) {
	parse := func(spec map[string]any) (Parameters, error) {
		return ParseParameters(&unstructured.Unstructured{Object: map[string]any{"spec": spec}})
	}
	class, err := parse(map[string]any{
		"replicas": int64(2),
		"service":  map[string]any{"type": "ClusterIP", "annotations": map[string]any{"a": "1"}},
		"drain":    map[string]any{"drainPeriod": "10s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := parse(map[string]any{"service": map[string]any{"annotations": map[string]any{"b": "2"}}, "logLevel": "debug"})
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(class, gw)
	if *m.Replicas != 2 || m.Service.Type != corev1.ServiceTypeClusterIP || m.Service.Annotations["a"] != "1" || m.Service.Annotations["b"] != "2" || m.LogLevel != "debug" || m.Drain.DrainPeriod != "10s" {
		t.Errorf("merged %+v %+v", m, m.Service)
	}
	if class.Service.Annotations["b"] != "" {
		t.Error("Merge modified its input")
	}
	in := input()
	in.Params = m
	objs := Desired(in)
	if objs.Service.Spec.Type != corev1.ServiceTypeClusterIP || *objs.Deployment.Spec.Replicas != 2 || !slices.Contains(objs.Deployment.Spec.Template.Spec.Containers[0].Args, "-drain-period=10s") {
		t.Errorf("parameters not applied: type %s replicas %d args %v", objs.Service.Spec.Type, *objs.Deployment.Spec.Replicas, objs.Deployment.Spec.Template.Spec.Containers[0].Args)
	}

	for name, spec := range map[string]map[string]any{
		"unknown field":  {"replicaz": int64(1)},
		"negative":       {"replicas": int64(-1)},
		"service type":   {"service": map[string]any{"type": "ExternalName"}},
		"bad duration":   {"drain": map[string]any{"drainPeriod": "soon"}},
		"bad log level":  {"logLevel": "loud"},
		"wrong map type": {"pod": map[string]any{"nodeSelector": "x"}},
	} {
		if _, err := parse(spec); err == nil {
			t.Errorf("%s: accepted %v", name, spec)
		}
	}
}

func TestNameOfLongGateway(t *testing.T) {
	long := strings.Repeat("a", 200)
	n := Name(long)
	if len(n) > 50 || len(validation.IsDNS1035Label(n)) != 0 {
		t.Errorf("Name(200 chars) = %q (%d): not a short DNS label", n, len(n))
	}
	if Name(long) == Name(long+"b") {
		t.Error("two long names collide")
	}
	gw := testGateway()
	gw.Name = long
	objs := Desired(Input{Gateway: gw})
	if _, ok := objs.Deployment.Labels[gwv1.GatewayNameLabelKey]; ok {
		t.Error("a gateway-name label longer than 63 characters would be refused by the API server")
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// The Service exposes the ports a Gateway serves through its ListenerSets
// (ServedPorts) beside its own, each once; the pod template does not change
// with them, so attaching a ListenerSet does not roll the data plane.
func TestServedPortsExposed(t *testing.T) {
	in := input()
	before := Desired(in)
	in.ServedPorts = []int32{80, 8080, 9000, 443}
	in.ServedUDPPorts = []int32{5300}
	after := Desired(in)
	var got []string
	for _, p := range after.Service.Spec.Ports {
		got = append(got, p.Name+":"+itoa(p.Port)+"->"+p.TargetPort.String()+"/"+string(p.Protocol))
	}
	if want := []string{"port-80:80->10080/TCP", "port-443:443->10443/TCP", "port-5300-udp:5300->5300/UDP", "port-8080:8080->8080/TCP", "port-9000:9000->9000/TCP"}; !slices.Equal(got, want) {
		t.Errorf("service ports %v, want %v", got, want)
	}
	if before.Deployment.Annotations[AnnotationHash] != after.Deployment.Annotations[AnnotationHash] {
		t.Error("the Deployment changed with the served ports: attaching a ListenerSet would roll every data-plane pod")
	}
	if before.Service.Annotations[AnnotationHash] == after.Service.Annotations[AnnotationHash] {
		t.Error("the Service's hash did not follow its ports: the new ports would never be applied")
	}
}

// Data planes trace where the controller does: its traces URL, sample ratio,
// queue bound and service name reach the pod; without an endpoint nothing
// is added.
func TestTracingPassedToDataPlanes(t *testing.T) {
	in := input()
	plain := Desired(in).Deployment.Spec.Template.Spec.Containers[0]
	in.Tracing = Tracing{Endpoint: "http://collector.monitoring:4318/v1/traces", SampleRatio: 0.05, QueueSize: 512, ServiceName: "edge"}
	c := Desired(in).Deployment.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != in.Tracing.Endpoint || env["OTEL_SERVICE_NAME"] != "edge" {
		t.Errorf("env %v lacks the traces URL or service name", env)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-trace-sample-ratio=0.05", "-trace-queue-size=512"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	for _, e := range plain.Env {
		if strings.HasPrefix(e.Name, "OTEL_") {
			t.Errorf("tracing off, yet %s is set", e.Name)
		}
	}
	if strings.Contains(strings.Join(plain.Args, " "), "-trace-") {
		t.Errorf("tracing off, yet args %v carry trace flags", plain.Args)
	}
}

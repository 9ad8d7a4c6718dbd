package chart_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func controllerDeployment(t *testing.T, r rendered, name string) *appsv1.Deployment {
	t.Helper()
	d := find[*appsv1.Deployment](t, r, name)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("controller has %d containers, want 1", n)
	}
	return d
}

// flagValue returns the value of -name=value in args; it fails the test when
// the flag is missing or given twice.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	var found []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("flag %s given %d times in %q, want once", name, len(found), args)
	}
	return found[0]
}

func envVar(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("container %s has no env %s", c.Name, name)
	return corev1.EnvVar{}
}

// TestControllerFlags: the controller runs with the interface the lead
// defined (flags or their RAUTA_ environment twins) and the right values.
func TestControllerFlags(t *testing.T) {
	r := mustRender(t, allOptional())
	d := controllerDeployment(t, r, "rauta-controller")
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/false-systems/rauta:v0.1.0" {
		t.Errorf("image %q, want the chart's appVersion tag", c.Image)
	}
	if len(c.Command) != 0 {
		t.Errorf("command %q overrides the image's entrypoint /rauta", c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "controller" {
		t.Fatalf("args %q do not start with the controller command", c.Args)
	}
	want := map[string]string{
		"-provisioner":        "kubernetes",
		"-controller-name":    "rauta.io/gateway-controller",
		"-config-listen":      ":18443",
		"-controller-service": "rauta-controller",
		"-admin-addr":         "127.0.0.1:9091",
		"-metrics-addr":       ":9090",
		"-log-level":          "info",
		"-gateway-class":      "rauta",
	}
	for name, v := range want {
		if got := flagValue(t, c.Args, name); got != v {
			t.Errorf("%s=%q, want %q", name, got, v)
		}
	}
	if c.Args[len(c.Args)-1] != "-hold-off=20ms" {
		t.Errorf("extraArgs not last in %q", c.Args)
	}
	for name, path := range map[string]string{"RAUTA_NAMESPACE": "metadata.namespace", "RAUTA_IDENTITY": "metadata.name"} {
		e := envVar(t, c, name)
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
			t.Errorf("%s = %+v, want the downward API's %s", name, e, path)
		}
	}
	if e := envVar(t, c, "RAUTA_DATAPLANE_IMAGE"); e.Value != c.Image {
		t.Errorf("RAUTA_DATAPLANE_IMAGE=%q, want the controller's image %q", e.Value, c.Image)
	}
	if e := envVar(t, c, "RAUTA_SECRET_NAMESPACES"); e.Value != "team-a,team-b" {
		t.Errorf("RAUTA_SECRET_NAMESPACES=%q, want team-a,team-b", e.Value)
	}
	if e := envVar(t, c, "GOMAXPROCS"); e.Value != "2" {
		t.Errorf("extraEnv GOMAXPROCS=%q", e.Value)
	}

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["config"] != 18443 || ports["metrics"] != 9090 || len(ports) != 2 {
		t.Errorf("container ports %v, want config 18443 and metrics 9090", ports)
	}
	for probe, path := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port != intstr.FromString("metrics") {
			t.Errorf("probe %+v, want GET %s on the metrics port", probe, path)
		}
	}

	spec := d.Spec
	if *spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *spec.Replicas)
	}
	ru := spec.Strategy.RollingUpdate
	if spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("strategy %+v, want RollingUpdate maxUnavailable 0 maxSurge 1", spec.Strategy)
	}
	pod := spec.Template.Spec
	if pod.ServiceAccountName != "rauta" || pod.PriorityClassName != "system-cluster-critical" || len(pod.TopologySpreadConstraints) != 1 || pod.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Tolerations) != 1 {
		t.Errorf("pod spec misses values: serviceAccount %q priorityClass %q spread %v nodeSelector %v tolerations %v", pod.ServiceAccountName, pod.PriorityClassName, pod.TopologySpreadConstraints, pod.NodeSelector, pod.Tolerations)
	}
	if spec.Template.Labels["team"] != "edge" || spec.Template.Annotations["example.com/team"] != "edge" {
		t.Errorf("pod labels %v annotations %v, want podLabels and podAnnotations", spec.Template.Labels, spec.Template.Annotations)
	}
	// Drain (5 s) + shutdown (25 s) + margin.
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 31 {
		t.Errorf("terminationGracePeriodSeconds %v, want > 30", g)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want cpu request and memory limit", c.Resources)
	}
}

// TestControllerService: the Service the data planes dial selects exactly
// the controller pods and carries the port names the provisioner relies on.
func TestControllerService(t *testing.T) {
	r := mustRender(t, nil)
	svc := find[*corev1.Service](t, r, "rauta-controller")
	d := controllerDeployment(t, r, "rauta-controller")
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("type %s, want ClusterIP", svc.Spec.Type)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the controller pods %v", k, v, d.Spec.Template.Labels)
		}
	}
	if svc.Spec.Selector["app.kubernetes.io/component"] != "controller" {
		t.Errorf("selector %v does not pin the controller component", svc.Spec.Selector)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if svc.Spec.Selector[k] != v {
			t.Errorf("Deployment selector %s=%s differs from the Service's %v", k, v, svc.Spec.Selector)
		}
	}
	ports := map[string]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p
	}
	if p := ports["config"]; p.Port != 18443 || p.TargetPort != intstr.FromString("config") {
		t.Errorf("config port %+v, want 18443 -> config", p)
	}
	if p := ports["metrics"]; p.Port != 9090 || p.TargetPort != intstr.FromString("metrics") {
		t.Errorf("metrics port %+v, want 9090 -> metrics", p)
	}
}

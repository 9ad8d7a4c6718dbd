package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/wellknown"
)

// Labels every provisioned object carries.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "rauta"
	LabelComponent = "app.kubernetes.io/component"
	Component      = "dataplane"
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	// LabelGatewayNamespace, with gwv1.GatewayNameLabelKey, says which
	// Gateway an object serves (the prune step reads them).
	LabelGatewayNamespace = "rauta.io/gateway-namespace"
	// AnnotationHash holds the hash of what the provisioner applied, so an
	// unchanged object costs no API request.
	AnnotationHash = "rauta.io/applied-hash"
)

// Defaults when neither GatewayParameters nor flags say otherwise.
const (
	DefaultReplicas        = 1
	DefaultDrainPeriod     = wellknown.DrainPeriod
	DefaultShutdownTimeout = wellknown.ShutdownTimeout
	tokenExpiry            = 3600
)

// ContainerPort is the port a data-plane pod binds for a listener port.
func ContainerPort(port int32) int32 {
	if port < 1024 {
		return port + wellknown.LowPortOffset
	}
	return port
}

// Input is everything one Gateway's objects are computed from.
type Input struct {
	Gateway *gwv1.Gateway
	Params  Parameters
	// Image is the data-plane image when Params does not name one.
	Image string
	// Controller is the host:port data planes dial; ServerName the name
	// in its certificate; CAPEM the CA certificate that verifies it.
	Controller, ServerName, CAPEM string
	// Tracing is the controller's OTLP traces settings, which its data
	// planes follow (an empty Endpoint: no tracing).
	Tracing Tracing
	// ServedPorts are the ports the Gateway's translation serves (TCP),
	// its accepted ListenerSets' listeners included; the Service exposes
	// them beside the Gateway's own listener ports.
	ServedPorts []int32
	// ServedUDPPorts are the UDP ports it serves that way (UDP listeners),
	// exposed as UDP ServicePorts.
	ServedUDPPorts []int32
}

// Tracing is what a data plane needs to send OTLP traces: the full traces
// URL, the sample ratio for requests without a sampled traceparent, the
// export queue bound and the service name ("" leaves the default).
type Tracing struct {
	Endpoint    string
	SampleRatio float64
	QueueSize   int
	ServiceName string
}

// Objects are what one Gateway gets.
type Objects struct {
	ServiceAccount *corev1.ServiceAccount
	Deployment     *appsv1.Deployment
	Service        *corev1.Service
}

// Name is the name of a Gateway's objects: "rauta-<gateway>", shortened with
// a hash when the Gateway's name is long, as Service names are DNS labels.
func Name(gatewayName string) string {
	name := "rauta-" + gatewayName
	if len(name) <= 50 {
		return name
	}
	sum := sha256.Sum256([]byte(gatewayName))
	return name[:40] + "-" + hex.EncodeToString(sum[:])[:9]
}

// Desired computes a Gateway's objects. It is pure: the same Input gives
// the same objects, hash annotation included.
func Desired(in Input) Objects {
	gw := in.Gateway
	name := Name(gw.Name)
	selector := map[string]string{LabelName: "rauta", LabelInstance: name, LabelComponent: Component}

	labels := map[string]string{LabelManagedBy: ManagedBy, LabelGatewayNamespace: gw.Namespace}
	if len(validation.IsValidLabelValue(gw.Name)) == 0 {
		labels[gwv1.GatewayNameLabelKey] = gw.Name
	}
	annotations := map[string]string{}
	if infra := gw.Spec.Infrastructure; infra != nil {
		for k, v := range infra.Labels {
			labels[string(k)] = string(v)
		}
		for k, v := range infra.Annotations {
			annotations[string(k)] = string(v)
		}
	}
	for k, v := range selector {
		labels[k] = v
	}
	meta := func(extraLabels, extraAnnotations map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:      name,
			Namespace: gw.Namespace,
			// Each object gets maps of its own: stamp writes into them.
			Labels:      maps.Clone(mergeMaps(labels, extraLabels)),
			Annotations: maps.Clone(mergeMaps(annotations, extraAnnotations)),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: gwv1.GroupVersion.String(),
				Kind:       "Gateway",
				Name:       gw.Name,
				UID:        gw.UID,
				Controller: ptr(true),
			}},
		}
	}

	objs := Objects{
		ServiceAccount: &corev1.ServiceAccount{
			TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta:                   meta(nil, nil),
			AutomountServiceAccountToken: ptr(false),
		},
	}
	objs.Service = service(in, meta, selector)
	objs.Deployment = deployment(in, meta, selector)
	stamp(&objs.ServiceAccount.ObjectMeta, objs.ServiceAccount)
	stamp(&objs.Service.ObjectMeta, objs.Service)
	stamp(&objs.Deployment.ObjectMeta, objs.Deployment)
	return objs
}

// servicePorts are the distinct ports of the Gateway's listeners and the
// ports it serves (ListenerSet listeners).
func servicePorts(in Input) []corev1.ServicePort {
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]bool{}
	var out []corev1.ServicePort
	add := func(port int32, proto corev1.Protocol) {
		if seen[key{port, proto}] {
			return
		}
		seen[key{port, proto}] = true
		name := "port-" + strconv.Itoa(int(port))
		if proto == corev1.ProtocolUDP {
			// A TCP and a UDP listener may share a port (DNS): names
			// must differ.
			name += "-udp"
		}
		out = append(out, corev1.ServicePort{
			Name:       name,
			Protocol:   proto,
			Port:       port,
			TargetPort: intstr.FromInt32(ContainerPort(port)),
		})
	}
	for _, l := range in.Gateway.Spec.Listeners {
		proto := corev1.ProtocolTCP
		if l.Protocol == gwv1.UDPProtocolType {
			proto = corev1.ProtocolUDP
		}
		add(int32(l.Port), proto)
	}
	for _, port := range in.ServedPorts {
		add(port, corev1.ProtocolTCP)
	}
	for _, port := range in.ServedUDPPorts {
		add(port, corev1.ProtocolUDP)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

func service(in Input, meta func(l, a map[string]string) metav1.ObjectMeta, selector map[string]string) *corev1.Service {
	sp := ServiceParams{}
	if in.Params.Service != nil {
		sp = *in.Params.Service
	}
	typ := sp.Type
	if typ == "" {
		typ = corev1.ServiceTypeLoadBalancer
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(sp.Labels, sp.Annotations),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selector,
			Ports:    servicePorts(in),
		},
	}
	if typ != corev1.ServiceTypeClusterIP {
		svc.Spec.ExternalTrafficPolicy = sp.ExternalTrafficPolicy
		if svc.Spec.ExternalTrafficPolicy == "" {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}
	}
	if typ == corev1.ServiceTypeLoadBalancer {
		svc.Spec.LoadBalancerClass = sp.LoadBalancerClass
		if ip := RequestedIP(in.Gateway); ip != "" {
			svc.Spec.LoadBalancerIP = ip
		}
	}
	return svc
}

// RequestedIP is the first IP address a Gateway's spec.addresses asks for,
// which the Service requests from its load balancer; "" when none.
func RequestedIP(gw *gwv1.Gateway) string {
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			continue
		}
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			return ip.String()
		}
	}
	return ""
}

func deployment(in Input, meta func(l, a map[string]string) metav1.ObjectMeta, selector map[string]string) *appsv1.Deployment {
	gw := in.Gateway
	p := in.Params
	pp := PodParams{}
	if p.Pod != nil {
		pp = *p.Pod
	}
	image := p.Image
	if image == "" {
		image = in.Image
	}
	replicas := int32(DefaultReplicas)
	if p.Replicas != nil {
		replicas = *p.Replicas
	}
	drain, shutdown := DefaultDrainPeriod, DefaultShutdownTimeout
	if p.Drain != nil {
		if d, err := time.ParseDuration(p.Drain.DrainPeriod); err == nil {
			drain = d
		}
		if d, err := time.ParseDuration(p.Drain.ShutdownTimeout); err == nil {
			shutdown = d
		}
	}
	grace := int64((drain + shutdown + 5*time.Second).Seconds())
	if pp.TerminationGracePeriodSeconds != nil {
		grace = *pp.TerminationGracePeriodSeconds
	}
	logLevel := p.LogLevel
	if logLevel == "" {
		logLevel = "info"
	}

	ports := []corev1.ContainerPort{{Name: "metrics", ContainerPort: wellknown.MetricsPort, Protocol: corev1.ProtocolTCP}}
	// The pod declares the Gateway's own listener ports only: a port a
	// ListenerSet adds is reachable without a declaration (the Service's
	// targetPort is a number), and declaring it would change the pod
	// template, so attaching a ListenerSet would roll every data-plane pod.
	for _, sp := range servicePorts(Input{Gateway: gw}) {
		ports = append(ports, corev1.ContainerPort{Name: sp.Name, ContainerPort: sp.TargetPort.IntVal, Protocol: sp.Protocol})
	}
	container := corev1.Container{
		Name:  "dataplane",
		Image: image,
		// The data-plane binary holds none of the control plane's code.
		Command: []string{"/rauta-dataplane"},
		Args: []string{
			"-gateway=" + gw.Namespace + "/" + gw.Name,
			"-controller=" + in.Controller,
			"-controller-server-name=" + in.ServerName,
			"-log-level=" + logLevel,
			"-drain-period=" + drain.String(),
			"-shutdown-timeout=" + shutdown.String(),
		},
		Env: []corev1.EnvVar{
			{Name: "RAUTA_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "RAUTA_CONTROLLER_CA", Value: in.CAPEM},
		},
		Ports: ports,
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("metrics")}},
			PeriodSeconds:    2,
			FailureThreshold: 1,
			TimeoutSeconds:   1,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("metrics")}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
			TimeoutSeconds:   2,
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "rauta-token", MountPath: wellknown.TokenDir, ReadOnly: true}},
	}
	if t := in.Tracing; t.Endpoint != "" {
		// The full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT's
		// meaning): the data plane posts where the controller does.
		container.Env = append(container.Env, corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Value: t.Endpoint})
		if t.ServiceName != "" {
			container.Env = append(container.Env, corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: t.ServiceName})
		}
		container.Args = append(container.Args,
			"-trace-sample-ratio="+strconv.FormatFloat(t.SampleRatio, 'g', -1, 64),
			"-trace-queue-size="+strconv.Itoa(t.QueueSize))
	}
	if pp.Resources != nil {
		container.Resources = *pp.Resources
	}
	podMeta := meta(pp.Labels, pp.Annotations)
	podMeta.Name, podMeta.Namespace, podMeta.OwnerReferences = "", "", nil

	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(nil, nil),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			// A new pod must be ready before an old one goes: rollouts
			// never lower serving capacity.
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr(intstr.FromInt32(0)),
					MaxSurge:       ptr(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta,
				Spec: corev1.PodSpec{
					ServiceAccountName:            Name(gw.Name),
					AutomountServiceAccountToken:  ptr(false),
					TerminationGracePeriodSeconds: &grace,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(65532)),
						RunAsGroup:     ptr(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers:        []corev1.Container{container},
					NodeSelector:      pp.NodeSelector,
					Tolerations:       pp.Tolerations,
					Affinity:          pp.Affinity,
					PriorityClassName: pp.PriorityClassName,
					Volumes: []corev1.Volume{{
						Name: "rauta-token",
						VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
							Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
								Audience: configAudience, ExpirationSeconds: ptr(int64(tokenExpiry)), Path: "token",
							}}},
						}},
					}},
				},
			},
		},
	}
	return d
}

// configAudience must equal configstream.Audience; it is repeated here so
// this package does not import the stream (a test pins them together).
const configAudience = "rauta.io/config"

// stamp sets the hash annotation of an object from its content.
func stamp(m *metav1.ObjectMeta, obj any) {
	delete(m.Annotations, AnnotationHash)
	sum := sha256.Sum256([]byte(mustJSON(obj)))
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[AnnotationHash] = hex.EncodeToString(sum[:])[:16]
}

func ptr[T any](v T) *T { return &v }

// Package provision computes and applies what the kubernetes provisioner
// creates for each Gateway: a ServiceAccount, a Deployment of data-plane
// pods and a Service, owned by the Gateway, shaped by GatewayParameters.
package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ParametersGVK is RAUTA's parameters kind (charts/rauta/crds).
var ParametersGVK = schema.GroupVersionKind{Group: "rauta.io", Version: "v1alpha1", Kind: "GatewayParameters"}

// Parameters shape a Gateway's data plane. A GatewayClass's parametersRef
// gives defaults; a Gateway's spec.infrastructure.parametersRef overrides
// them field by field (Merge).
type Parameters struct {
	Replicas *int32           `json:"replicas,omitempty"`
	Image    string           `json:"image,omitempty"`
	LogLevel string           `json:"logLevel,omitempty"`
	Service  *ServiceParams   `json:"service,omitempty"`
	Pod      *PodParams       `json:"pod,omitempty"`
	Drain    *DrainParameters `json:"drain,omitempty"`
}

// ServiceParams shape the Gateway's Service.
type ServiceParams struct {
	Type                  corev1.ServiceType                  `json:"type,omitempty"`
	Annotations           map[string]string                   `json:"annotations,omitempty"`
	Labels                map[string]string                   `json:"labels,omitempty"`
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`
	LoadBalancerClass     *string                             `json:"loadBalancerClass,omitempty"`
}

// PodParams shape the data-plane pods.
type PodParams struct {
	Annotations                   map[string]string            `json:"annotations,omitempty"`
	Labels                        map[string]string            `json:"labels,omitempty"`
	NodeSelector                  map[string]string            `json:"nodeSelector,omitempty"`
	Tolerations                   []corev1.Toleration          `json:"tolerations,omitempty"`
	Affinity                      *corev1.Affinity             `json:"affinity,omitempty"`
	Resources                     *corev1.ResourceRequirements `json:"resources,omitempty"`
	PriorityClassName             string                       `json:"priorityClassName,omitempty"`
	TerminationGracePeriodSeconds *int64                       `json:"terminationGracePeriodSeconds,omitempty"`
}

// DrainParameters are the data plane's shutdown timings (Go durations).
type DrainParameters struct {
	DrainPeriod     string `json:"drainPeriod,omitempty"`
	ShutdownTimeout string `json:"shutdownTimeout,omitempty"`
}

// ParseParameters reads a GatewayParameters object strictly: an unknown
// field or a bad value is a problem the user sees in InvalidParameters.
func ParseParameters(u *unstructured.Unstructured) (Parameters, error) {
	spec, ok := u.Object["spec"]
	if !ok {
		return Parameters{}, nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return Parameters{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p Parameters
	if err := dec.Decode(&p); err != nil {
		return Parameters{}, fmt.Errorf("spec: %w", err)
	}
	return p, p.validate()
}

func (p Parameters) validate() error {
	if p.Replicas != nil && *p.Replicas < 0 {
		return fmt.Errorf("spec.replicas: %d is negative", *p.Replicas)
	}
	switch p.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("spec.logLevel: %q is not debug, info, warn or error", p.LogLevel)
	}
	if s := p.Service; s != nil {
		switch s.Type {
		case "", corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		default:
			return fmt.Errorf("spec.service.type: %q is not LoadBalancer, ClusterIP or NodePort", s.Type)
		}
		switch s.ExternalTrafficPolicy {
		case "", corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal:
		default:
			return fmt.Errorf("spec.service.externalTrafficPolicy: %q is not Cluster or Local", s.ExternalTrafficPolicy)
		}
	}
	if d := p.Drain; d != nil {
		for field, v := range map[string]string{"drainPeriod": d.DrainPeriod, "shutdownTimeout": d.ShutdownTimeout} {
			if v == "" {
				continue
			}
			if dur, err := time.ParseDuration(v); err != nil || dur < 0 {
				return fmt.Errorf("spec.drain.%s: %q is not a duration such as 5s", field, v)
			}
		}
	}
	return nil
}

// Merge returns base with every field over sets replaced; maps are merged
// key by key (over wins).
func Merge(base, over Parameters) Parameters {
	out := base
	if over.Replicas != nil {
		out.Replicas = over.Replicas
	}
	if over.Image != "" {
		out.Image = over.Image
	}
	if over.LogLevel != "" {
		out.LogLevel = over.LogLevel
	}
	if over.Service != nil {
		s := ServiceParams{}
		if base.Service != nil {
			s = *base.Service
		}
		o := over.Service
		if o.Type != "" {
			s.Type = o.Type
		}
		if o.ExternalTrafficPolicy != "" {
			s.ExternalTrafficPolicy = o.ExternalTrafficPolicy
		}
		if o.LoadBalancerClass != nil {
			s.LoadBalancerClass = o.LoadBalancerClass
		}
		s.Annotations = mergeMaps(s.Annotations, o.Annotations)
		s.Labels = mergeMaps(s.Labels, o.Labels)
		out.Service = &s
	}
	if over.Pod != nil {
		p := PodParams{}
		if base.Pod != nil {
			p = *base.Pod
		}
		o := over.Pod
		p.Annotations = mergeMaps(p.Annotations, o.Annotations)
		p.Labels = mergeMaps(p.Labels, o.Labels)
		p.NodeSelector = mergeMaps(p.NodeSelector, o.NodeSelector)
		if o.Tolerations != nil {
			p.Tolerations = o.Tolerations
		}
		if o.Affinity != nil {
			p.Affinity = o.Affinity
		}
		if o.Resources != nil {
			p.Resources = o.Resources
		}
		if o.PriorityClassName != "" {
			p.PriorityClassName = o.PriorityClassName
		}
		if o.TerminationGracePeriodSeconds != nil {
			p.TerminationGracePeriodSeconds = o.TerminationGracePeriodSeconds
		}
		out.Pod = &p
	}
	if over.Drain != nil {
		d := DrainParameters{}
		if base.Drain != nil {
			d = *base.Drain
		}
		if over.Drain.DrainPeriod != "" {
			d.DrainPeriod = over.Drain.DrainPeriod
		}
		if over.Drain.ShutdownTimeout != "" {
			d.ShutdownTimeout = over.Drain.ShutdownTimeout
		}
		out.Drain = &d
	}
	return out
}

func mergeMaps(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

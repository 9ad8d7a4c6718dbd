package file

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"strings"

	"github.com/false-systems/rauta/internal/resources"
)

// object is what every kind the provider reads implements.
type object interface {
	metav1.Object
	runtime.Object
}

// kindSpec says how to read one apiVersion/kind.
type kindSpec struct {
	kind       string
	apiVersion string // stored as; v1beta1 ReferenceGrants become v1
	namespaced bool
	newObject  func() object
	add        func(*resources.Resources, object)
}

const gatewayV1 = "gateway.networking.k8s.io/v1"

// lookupKind returns how to read apiVersion/kind, and false for kinds the
// provider does not read.
func lookupKind(apiVersion, kind string) (kindSpec, bool) {
	switch apiVersion + " " + kind {
	case gatewayV1 + " GatewayClass":
		return spec(kind, gatewayV1, false, func(r *resources.Resources) *[]*gwv1.GatewayClass { return &r.GatewayClasses }), true
	case gatewayV1 + " Gateway":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.Gateway { return &r.Gateways }), true
	case gatewayV1 + " ListenerSet":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.ListenerSet { return &r.ListenerSets }), true
	case gatewayV1 + " HTTPRoute":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.HTTPRoute { return &r.HTTPRoutes }), true
	case gatewayV1 + " GRPCRoute":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.GRPCRoute { return &r.GRPCRoutes }), true
	case gatewayV1 + " TLSRoute":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.TLSRoute { return &r.TLSRoutes }), true
	case gatewayV1 + " TCPRoute":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.TCPRoute { return &r.TCPRoutes }), true
	case gatewayV1 + " UDPRoute":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.UDPRoute { return &r.UDPRoutes }), true
	case gatewayV1 + " BackendTLSPolicy":
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.BackendTLSPolicy { return &r.BackendTLSPolicies }), true
	case gatewayV1 + " ReferenceGrant", "gateway.networking.k8s.io/v1beta1 ReferenceGrant":
		// v1beta1 has the same schema; both are stored as v1, as the API
		// server's conversion does.
		return spec(kind, gatewayV1, true, func(r *resources.Resources) *[]*gwv1.ReferenceGrant { return &r.ReferenceGrants }), true
	case "v1 Service":
		return spec(kind, "v1", true, func(r *resources.Resources) *[]*corev1.Service { return &r.Services }), true
	case "v1 ConfigMap":
		return spec(kind, "v1", true, func(r *resources.Resources) *[]*corev1.ConfigMap { return &r.ConfigMaps }), true
	case "v1 Secret":
		return spec(kind, "v1", true, func(r *resources.Resources) *[]*corev1.Secret { return &r.Secrets }), true
	case "v1 Namespace":
		return spec(kind, "v1", false, func(r *resources.Resources) *[]*corev1.Namespace { return &r.Namespaces }), true
	case "discovery.k8s.io/v1 EndpointSlice":
		return spec(kind, "discovery.k8s.io/v1", true, func(r *resources.Resources) *[]*discoveryv1.EndpointSlice { return &r.EndpointSlices }), true
	}
	return kindSpec{}, false
}

func spec[T any, P interface {
	*T
	object
}](kind, apiVersion string, namespaced bool, list func(*resources.Resources) *[]*T) kindSpec {
	return kindSpec{
		// Kept in every object's TypeMeta: a copy, not a slice of the
		// document's text, which would keep the text alive.
		kind:       strings.Clone(kind),
		apiVersion: apiVersion,
		namespaced: namespaced,
		newObject:  func() object { return P(new(T)) },
		add: func(r *resources.Resources, o object) {
			l := list(r)
			*l = append(*l, (*T)(o.(P)))
		},
	}
}

// supportedVersion returns the apiVersion the provider reads kind in, for a
// hint when a manifest uses another one.
func supportedVersion(kind string) string {
	switch kind {
	case "GatewayClass", "Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "BackendTLSPolicy", "ReferenceGrant":
		return gatewayV1
	case "Service", "Secret", "ConfigMap", "Namespace":
		return "v1"
	case "EndpointSlice":
		return "discovery.k8s.io/v1"
	}
	return ""
}

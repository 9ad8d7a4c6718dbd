package translate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Status is the status of every object this controller is responsible for,
// sorted by namespace and name so that it compares and prints stably.
// Condition LastTransitionTime is left zero: the status writer sets it when
// a condition actually changes.
type Status struct {
	GatewayClasses []GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       []GatewayStatus      `json:"gateways,omitempty"`
	// ListenerSets holds the ListenerSets whose parent is an owned Gateway.
	ListenerSets []ListenerSetStatus `json:"listenerSets,omitempty"`
	HTTPRoutes   []HTTPRouteStatus   `json:"httpRoutes,omitempty"`
	GRPCRoutes   []GRPCRouteStatus   `json:"grpcRoutes,omitempty"`
	TLSRoutes    []TLSRouteStatus    `json:"tlsRoutes,omitempty"`
	TCPRoutes    []TCPRouteStatus    `json:"tcpRoutes,omitempty"`
	UDPRoutes    []UDPRouteStatus    `json:"udpRoutes,omitempty"`
	// BackendTLSPolicies holds RAUTA's ancestor entries of the policies
	// that matter to its Gateways.
	BackendTLSPolicies []PolicyStatus `json:"backendTLSPolicies,omitempty"`
}

// GatewayClassStatus is the status of one GatewayClass.
type GatewayClassStatus struct {
	Name   string                  `json:"name"`
	Status gwv1.GatewayClassStatus `json:"status"`
}

// GatewayStatus is the status of one Gateway.
type GatewayStatus struct {
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	Status    gwv1.GatewayStatus `json:"status"`
}

// ListenerSetStatus is the status of one ListenerSet.
type ListenerSetStatus struct {
	Namespace string                 `json:"namespace"`
	Name      string                 `json:"name"`
	Status    gwv1.ListenerSetStatus `json:"status"`
}

// HTTPRouteStatus is the status of one HTTPRoute: one entry per parentRef
// this controller is responsible for.
type HTTPRouteStatus struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Status    gwv1.HTTPRouteStatus `json:"status"`
}

// GRPCRouteStatus is the status of one GRPCRoute.
type GRPCRouteStatus struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Status    gwv1.GRPCRouteStatus `json:"status"`
}

// TLSRouteStatus is the status of one TLSRoute.
type TLSRouteStatus struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Status    gwv1.TLSRouteStatus `json:"status"`
}

// TCPRouteStatus is the status of one TCPRoute.
type TCPRouteStatus struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Status    gwv1.TCPRouteStatus `json:"status"`
}

// UDPRouteStatus is the status of one UDPRoute.
type UDPRouteStatus struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Status    gwv1.UDPRouteStatus `json:"status"`
}

// PolicyStatus is the status of one policy: the ancestor entries this
// controller is responsible for.
type PolicyStatus struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Status    gwv1.PolicyStatus `json:"status"`
}

// condition builds a condition with the generation it describes.
func condition(typ string, ok bool, reason, message string, generation int64) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
}

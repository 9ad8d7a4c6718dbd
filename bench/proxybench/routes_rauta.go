package main

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/resources"
)

// routesRautaManifests writes routegen's resources as the manifests rauta
// run -f reads, with three changes for the harness: the listener is on
// httpPort, every rule answers with X-Route (as nginx and HAProxy do), and
// each Service's one endpoint is a loopback backend port.
func routesRautaManifests(res *resources.Resources) (string, error) {
	var b strings.Builder
	emit := func(obj any) error {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "---\n%s", y)
		return nil
	}
	gwTM := metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1"}
	for _, gc := range res.GatewayClasses {
		c := gc.DeepCopy()
		c.TypeMeta = gwTM
		c.Kind = "GatewayClass"
		if err := emit(c); err != nil {
			return "", err
		}
	}
	for _, g := range res.Gateways {
		c := g.DeepCopy()
		c.TypeMeta = gwTM
		c.Kind = "Gateway"
		for i := range c.Spec.Listeners {
			c.Spec.Listeners[i].Port = httpPort
		}
		if err := emit(c); err != nil {
			return "", err
		}
	}
	for _, ns := range res.Namespaces {
		c := ns.DeepCopy()
		c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		if err := emit(c); err != nil {
			return "", err
		}
	}
	for i, rt := range res.HTTPRoutes {
		c := rt.DeepCopy()
		c.TypeMeta = gwTM
		c.Kind = "HTTPRoute"
		for j := range c.Spec.Rules {
			c.Spec.Rules[j].Filters = append(c.Spec.Rules[j].Filters, gwv1.HTTPRouteFilter{
				Type:                   gwv1.HTTPRouteFilterResponseHeaderModifier,
				ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Route", Value: rt.Namespace + "/" + rt.Name}}},
			})
		}
		if err := emit(c); err != nil {
			return "", err
		}
		svc := res.Services[i].DeepCopy()
		svc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		if err := emit(svc); err != nil {
			return "", err
		}
		if err := emit(loopbackSlice(svc, routeEndpointPort(i))); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// loopbackSlice is the EndpointSlice of svc with one endpoint,
// 127.0.0.1:port, on the Service's port name.
func loopbackSlice(svc *corev1.Service, port int) *discoveryv1.EndpointSlice {
	p, name := int32(port), svc.Spec.Ports[0].Name
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-loopback",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &p}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	}
}

package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/false-systems/rauta/internal/resources"
)

// List builds a Resources snapshot from a reader (normally the informer
// cache). The objects are the cache's own, not copies (UnsafeDisableDeepCopy:
// deep-copying a thousand routes took milliseconds of every translation);
// the informers replace an object on update rather than change it, so the
// snapshot stays as listed as long as nobody changes it, and nobody may:
// the translator never writes its input, and the status writer reads fresh
// objects before it writes.
func List(ctx context.Context, r client.Reader) (*resources.Resources, error) {
	res := &resources.Resources{}
	var (
		classes  gwv1.GatewayClassList
		gateways gwv1.GatewayList
		routes   gwv1.HTTPRouteList
		grants   gwv1b1.ReferenceGrantList
		services corev1.ServiceList
		slices   discoveryv1.EndpointSliceList
		secrets  corev1.SecretList
		cms      corev1.ConfigMapList
		nss      corev1.NamespaceList
		policies gwv1.BackendTLSPolicyList
		grpc     gwv1.GRPCRouteList
		tls      gwv1.TLSRouteList
		tcp      gwv1.TCPRouteList
		udp      gwv1.UDPRouteList
		sets     gwv1.ListenerSetList
	)
	for _, l := range []client.ObjectList{&classes, &gateways, &routes, &grants, &services, &slices, &secrets, &cms, &nss} {
		if err := r.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	// Optional kinds (see optionalKind): without the CRD there are none.
	for _, l := range []client.ObjectList{&policies, &grpc, &tls, &tcp, &udp, &sets} {
		if err := r.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil && !meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	for i := range classes.Items {
		res.GatewayClasses = append(res.GatewayClasses, &classes.Items[i])
	}
	for i := range gateways.Items {
		res.Gateways = append(res.Gateways, &gateways.Items[i])
	}
	for i := range sets.Items {
		res.ListenerSets = append(res.ListenerSets, &sets.Items[i])
	}
	for i := range routes.Items {
		res.HTTPRoutes = append(res.HTTPRoutes, &routes.Items[i])
	}
	for i := range grants.Items {
		// v1beta1.ReferenceGrant is a type definition of the v1 struct.
		res.ReferenceGrants = append(res.ReferenceGrants, (*gwv1.ReferenceGrant)(&grants.Items[i]))
	}
	for i := range services.Items {
		res.Services = append(res.Services, &services.Items[i])
	}
	for i := range slices.Items {
		res.EndpointSlices = append(res.EndpointSlices, &slices.Items[i])
	}
	for i := range secrets.Items {
		res.Secrets = append(res.Secrets, &secrets.Items[i])
	}
	for i := range cms.Items {
		res.ConfigMaps = append(res.ConfigMaps, &cms.Items[i])
	}
	for i := range grpc.Items {
		res.GRPCRoutes = append(res.GRPCRoutes, &grpc.Items[i])
	}
	for i := range tls.Items {
		res.TLSRoutes = append(res.TLSRoutes, &tls.Items[i])
	}
	for i := range tcp.Items {
		res.TCPRoutes = append(res.TCPRoutes, &tcp.Items[i])
	}
	for i := range udp.Items {
		res.UDPRoutes = append(res.UDPRoutes, &udp.Items[i])
	}
	for i := range policies.Items {
		res.BackendTLSPolicies = append(res.BackendTLSPolicies, &policies.Items[i])
	}
	for i := range nss.Items {
		res.Namespaces = append(res.Namespaces, &nss.Items[i])
	}
	return res, nil
}

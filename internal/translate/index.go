package translate

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
)

// index gives constant-time lookups into one Resources snapshot. It only
// holds pointers into the snapshot and never changes what they point to.
type index struct {
	services   map[types.NamespacedName]*corev1.Service
	slices     map[types.NamespacedName][]*discoveryv1.EndpointSlice // by owning Service
	secrets    map[types.NamespacedName]*corev1.Secret
	configMaps map[types.NamespacedName]*corev1.ConfigMap
	namespaces map[string]*corev1.Namespace
	grants     map[string][]*gwv1.ReferenceGrant // by namespace of the grant (the target side)
	gateways   map[types.NamespacedName]*gwv1.Gateway
	sets       map[types.NamespacedName]*gwv1.ListenerSet
	classes    map[string]*gwv1.GatewayClass
	// tlsPolicies are the BackendTLSPolicies targeting each Service.
	tlsPolicies map[types.NamespacedName][]*gwv1.BackendTLSPolicy
}

func newIndex(res *resources.Resources) *index {
	ix := &index{
		services:   make(map[types.NamespacedName]*corev1.Service, len(res.Services)),
		slices:     make(map[types.NamespacedName][]*discoveryv1.EndpointSlice),
		secrets:    make(map[types.NamespacedName]*corev1.Secret, len(res.Secrets)),
		configMaps: make(map[types.NamespacedName]*corev1.ConfigMap, len(res.ConfigMaps)),
		namespaces: make(map[string]*corev1.Namespace, len(res.Namespaces)),
		grants:     make(map[string][]*gwv1.ReferenceGrant),
		gateways:   make(map[types.NamespacedName]*gwv1.Gateway, len(res.Gateways)),
		sets:       make(map[types.NamespacedName]*gwv1.ListenerSet, len(res.ListenerSets)),
		classes:    make(map[string]*gwv1.GatewayClass, len(res.GatewayClasses)),

		tlsPolicies: make(map[types.NamespacedName][]*gwv1.BackendTLSPolicy),
	}
	ix.fill(res)
	return ix
}

// clear empties the index, keeping its maps' space for the next fill: a
// Cache keeps one index from translation to translation, as building the
// maps of a thousand Services and EndpointSlices afresh was a tenth of a
// route change's translation.
func (ix *index) clear() {
	clear(ix.services)
	clear(ix.slices)
	clear(ix.secrets)
	clear(ix.configMaps)
	clear(ix.namespaces)
	clear(ix.grants)
	clear(ix.gateways)
	clear(ix.sets)
	clear(ix.classes)
	clear(ix.tlsPolicies)
}

// fill indexes res into the (empty) index.
func (ix *index) fill(res *resources.Resources) {
	for _, s := range res.Services {
		ix.services[nsName(s.Namespace, s.Name)] = s
	}
	for _, es := range res.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := nsName(es.Namespace, svc)
		ix.slices[key] = append(ix.slices[key], es)
	}
	for _, c := range res.ConfigMaps {
		ix.configMaps[nsName(c.Namespace, c.Name)] = c
	}
	for _, s := range res.Secrets {
		ix.secrets[nsName(s.Namespace, s.Name)] = s
	}
	for _, n := range res.Namespaces {
		ix.namespaces[n.Name] = n
	}
	for _, g := range res.ReferenceGrants {
		ix.grants[g.Namespace] = append(ix.grants[g.Namespace], g)
	}
	for _, g := range res.Gateways {
		ix.gateways[nsName(g.Namespace, g.Name)] = g
	}
	for _, s := range res.ListenerSets {
		ix.sets[nsName(s.Namespace, s.Name)] = s
	}
	for _, c := range res.GatewayClasses {
		ix.classes[c.Name] = c
	}
	for _, p := range res.BackendTLSPolicies {
		for _, ref := range p.Spec.TargetRefs {
			if ref.Group != "" || ref.Kind != "Service" {
				continue // other targets are implementation-specific; RAUTA routes only to Services
			}
			key := nsName(p.Namespace, string(ref.Name))
			if l := ix.tlsPolicies[key]; len(l) == 0 || l[len(l)-1] != p {
				ix.tlsPolicies[key] = append(l, p)
			}
		}
	}
}

func nsName(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// namespaceLabels returns the labels of a namespace. A namespace the snapshot
// does not hold still carries the well-known name label, as the API server
// would set it.
func (ix *index) namespaceLabels(name string) map[string]string {
	labels := map[string]string{corev1.LabelMetadataName: name}
	if ns, ok := ix.namespaces[name]; ok {
		for k, v := range ns.Labels {
			labels[k] = v
		}
	}
	return labels
}

// refTarget is the object side of a cross-namespace reference.
type refTarget struct {
	Group, Kind, Namespace, Name string
}

// refSource is the referring side of a cross-namespace reference.
type refSource struct {
	Group, Kind, Namespace string
}

// referenceAllowed reports whether from may refer to to. Same-namespace
// references are always allowed; others need a ReferenceGrant in the target
// namespace that names both sides.
func (ix *index) referenceAllowed(from refSource, to refTarget) bool {
	if from.Namespace == to.Namespace {
		return true
	}
	for _, g := range ix.grants[to.Namespace] {
		if grantAllows(g, from, to) {
			return true
		}
	}
	return false
}

func grantAllows(g *gwv1.ReferenceGrant, from refSource, to refTarget) bool {
	fromOK := false
	for _, f := range g.Spec.From {
		if string(f.Group) == from.Group && string(f.Kind) == from.Kind && string(f.Namespace) == from.Namespace {
			fromOK = true
			break
		}
	}
	if !fromOK {
		return false
	}
	for _, t := range g.Spec.To {
		if string(t.Group) != to.Group || string(t.Kind) != to.Kind {
			continue
		}
		if t.Name == nil || *t.Name == "" || string(*t.Name) == to.Name {
			return true
		}
	}
	return false
}

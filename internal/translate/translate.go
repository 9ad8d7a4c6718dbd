package translate

import (
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/wellknown"
)

// Options configure a translation.
type Options struct {
	// ControllerName selects the GatewayClasses to own; empty means
	// wellknown.DefaultControllerName.
	ControllerName string
	// DefaultAddress is reported in Gateway status when a Gateway has no
	// spec.addresses (the address the proxy binds by default).
	DefaultAddress string
	// Addresses assigns addresses to Gateways without spec.addresses, by
	// "namespace/name" (the controller's address pool). A Gateway listed here
	// binds and reports that address instead of DefaultAddress.
	Addresses map[string]string

	// Provisioned says every Gateway has a data plane of its own (the
	// kubernetes provisioner): listeners bind the data plane's default
	// address, Gateways never compete for a port, and status addresses are
	// GatewayAddresses (the addresses of each Gateway's Service).
	Provisioned bool
	// GatewayAddresses are the status addresses of each Gateway, by
	// "namespace/name", when Provisioned.
	GatewayAddresses map[string][]gwv1.GatewayStatusAddress
	// ClassParameters says, by GatewayClass name, whether the class's
	// parametersRef resolved: "" when it did, else the problem. A class
	// with a parametersRef missing here is refused: only the provisioner
	// reads parameters.
	ClassParameters map[string]string
	// GatewayParameters is the same for a Gateway's
	// spec.infrastructure.parametersRef, by "namespace/name".
	GatewayParameters map[string]string

	// Cache, when set, carries translated routes to the next translation
	// (see Cache); the controller keeps one across syncs.
	Cache *Cache
}

// Result is the output of one translation.
type Result struct {
	IR     *ir.Snapshot
	Status *Status
}

type translator struct {
	opts          Options
	ix            *index
	status        *Status
	gatewaysByKey map[types.NamespacedName]*gatewayState
	// setsByParent are the ListenerSets naming each Gateway
	// ("namespace/name") as parent, in precedence order; setsByKey are
	// the ListenerSets of owned Gateways after validation.
	setsByParent map[string][]*gwv1.ListenerSet
	setsByKey    map[string]*listenerSetState
	// policyAncestors are the Gateways each BackendTLSPolicy matters to.
	policyAncestors map[*gwv1.BackendTLSPolicy]map[string]*gatewayState
	// backendTLSOf memoises resolveBackendTLS by policy.
	backendTLSOf map[*gwv1.BackendTLSPolicy]*backendTLSResult
	// endpointsOf memoises endpoints by Service port.
	endpointsOf map[string][]ir.Endpoint
	// grpcClaims and grpcLost settle HTTPRoute/GRPCRoute hostname
	// conflicts on a listener (kindConflict).
	grpcClaims map[*listenerState][]grpcClaim
	grpcLost   map[*listenerState]map[string]string
	// mesh: a GAMMA translation (TranslateMesh), whose backendRefs need
	// no ReferenceGrant.
	mesh bool
	// entries is the unused rest of the last slab of route entries
	// (newRouteEntry).
	entries []routeEntry
}

// Translate computes the routing model and the status of every owned object.
// It never modifies res.
func Translate(res *resources.Resources, opts Options) Result {
	if opts.ControllerName == "" {
		opts.ControllerName = wellknown.DefaultControllerName
	}
	c := opts.Cache
	var ix *index
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		ix = c.index(res)
	} else {
		ix = newIndex(res)
	}
	t := &translator{
		opts:          opts,
		ix:            ix,
		status:        &Status{},
		gatewaysByKey: make(map[types.NamespacedName]*gatewayState),
		setsByParent:  listenerSetsByParent(res.ListenerSets),
		setsByKey:     make(map[string]*listenerSetState),

		policyAncestors: make(map[*gwv1.BackendTLSPolicy]map[string]*gatewayState),
		backendTLSOf:    make(map[*gwv1.BackendTLSPolicy]*backendTLSResult),
		endpointsOf:     make(map[string][]ir.Endpoint),
	}
	classes := t.gatewayClasses(res.GatewayClasses)
	gws := t.gateways(sortedGateways(res.Gateways), classes)
	for _, gs := range gws {
		t.gatewaysByKey[nsName(gs.gw.Namespace, gs.gw.Name)] = gs
	}
	if c != nil {
		c.begin(res, opts)
		defer c.end()
	}
	t.claimGRPC(res.GRPCRoutes)
	t.httpRoutes(res.HTTPRoutes)
	t.grpcRoutes(res.GRPCRoutes)
	t.tlsRoutes(res.TLSRoutes)
	t.tcpRoutes(res.TCPRoutes)
	t.udpRoutes(res.UDPRoutes)
	t.backendTLSPolicyStatus()

	for _, gs := range gws {
		st := gwv1.GatewayStatus{Addresses: gs.addresses, Conditions: gs.conds, AttachedListenerSets: gs.attachedSets()}
		for _, l := range gs.listeners {
			st.Listeners = append(st.Listeners, l.status())
		}
		t.status.Gateways = append(t.status.Gateways, GatewayStatus{Namespace: gs.gw.Namespace, Name: gs.gw.Name, Status: st})
		for _, s := range gs.sets {
			t.status.ListenerSets = append(t.status.ListenerSets, s.status())
		}
	}
	t.sortStatus()
	return Result{IR: buildIR(gws), Status: t.status}
}

// sortedGateways orders Gateways oldest first, then by namespace and name:
// the order in which they claim addresses and ports.
func sortedGateways(in []*gwv1.Gateway) []*gwv1.Gateway {
	out := append([]*gwv1.Gateway(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		if ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp; !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (t *translator) sortStatus() {
	s := t.status
	sort.Slice(s.GatewayClasses, func(i, j int) bool { return s.GatewayClasses[i].Name < s.GatewayClasses[j].Name })
	slices.SortFunc(s.Gateways, func(a, b GatewayStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.ListenerSets, func(a, b ListenerSetStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.HTTPRoutes, func(a, b HTTPRouteStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.GRPCRoutes, func(a, b GRPCRouteStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.TLSRoutes, func(a, b TLSRouteStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.TCPRoutes, func(a, b TCPRouteStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.UDPRoutes, func(a, b UDPRouteStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	slices.SortFunc(s.BackendTLSPolicies, func(a, b PolicyStatus) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
}

// compareKeys compares "ans/aname" with "bns/bname" as strings without
// building them (a thousand routes' status is sorted on every
// translation). Keys are unique, so the unstable sort is deterministic.
func compareKeys(ans, aname, bns, bname string) int {
	if ans == bns { // the common case: one comparison of the names
		return strings.Compare(aname, bname)
	}
	if n := min(len(ans), len(bns)); ans[:n] != bns[:n] {
		return strings.Compare(ans[:n], bns[:n])
	}
	// One namespace is a prefix of the other: the byte after it decides,
	// against the '/' of the shorter key.
	at := func(ns, name string, i int) int {
		switch {
		case i < len(ns):
			return int(ns[i])
		case i == len(ns):
			return '/'
		case i-len(ns)-1 < len(name):
			return int(name[i-len(ns)-1])
		}
		return -1 // past the end: shorter sorts first
	}
	for i := 0; ; i++ {
		x, y := at(ans, aname, i), at(bns, bname, i)
		if x != y || x < 0 {
			return x - y
		}
	}
}

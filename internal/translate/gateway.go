package translate

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// gatewayState is what the translator learns about one owned Gateway.
type gatewayState struct {
	gw        *gwv1.Gateway
	key       string // "namespace/name"
	accepted  bool
	address   string           // bind address, "" for the proxy default
	listeners []*listenerState // the Gateway's own, which Gateway parentRefs reach
	sets      []*listenerSetState
	conds     []metav1.Condition
	addresses []gwv1.GatewayStatusAddress
	// backendClientCert is presented to TLS backends (spec.tls.backend).
	backendClientCert *ir.Certificate
}

// listenerState is one Gateway listener after validation.
type listenerState struct {
	gw       *gatewayState
	set      *listenerSetState // nil for the Gateway's own listeners
	spec     *gwv1.Listener
	hostname string

	accepted   cond
	conflicted cond
	certRefs   cond // certificateRefs of HTTPS listeners
	caRefs     cond // spec.tls.frontend CA certificates for this port
	kindRefs   cond // allowedRoutes.kinds

	supportedKinds []gwv1.RouteGroupKind
	certs          []ir.Certificate
	// clientValidation is the port's client certificate check, nil for none.
	clientValidation *ir.ClientValidation
	overlapping      []string // HTTPS listeners on the same port whose hostnames overlap this one's
	attached         int32
	routes           []*routeEntry
}

// cond is a condition outcome before it becomes a metav1.Condition.
type cond struct {
	ok      bool
	reason  string
	message string
}

// programmed reports whether the listener goes into the data plane. An
// invalid route kind next to a valid one does not stop the valid one.
func (l *listenerState) programmed() bool {
	return l.gw.accepted && l.accepted.ok && !l.conflicted.ok && l.certRefs.ok && len(l.supportedKinds) > 0
}

// resolvedRefs combines certificate and route kind problems; a certificate
// problem is reported first because it stops the listener.
func (l *listenerState) resolvedRefs() cond {
	if !l.certRefs.ok {
		return l.certRefs
	}
	if !l.caRefs.ok {
		return l.caRefs
	}
	return l.kindRefs
}

// allowsKind reports whether routes of kind may attach to the listener.
func (l *listenerState) allowsKind(kind string) bool {
	for _, k := range l.supportedKinds {
		if string(k.Kind) == kind {
			return true
		}
	}
	return false
}

// supportedRouteKinds lists the route kinds each listener protocol takes.
var supportedRouteKinds = map[gwv1.ProtocolType][]string{
	gwv1.HTTPProtocolType:  {kindHTTPRoute, kindGRPCRoute},
	gwv1.HTTPSProtocolType: {kindHTTPRoute, kindGRPCRoute},
	gwv1.TLSProtocolType:   {kindTLSRoute},
	gwv1.TCPProtocolType:   {kindTCPRoute},
	gwv1.UDPProtocolType:   {kindUDPRoute},
}

// gateways validates every Gateway of an owned GatewayClass.
// gws must be in precedence order (oldest first): when two Gateways want the
// same address and port, the older one keeps it.
func (t *translator) gateways(gws []*gwv1.Gateway, classes map[string]bool) []*gatewayState {
	var out []*gatewayState
	claims := make(portClaims)
	for _, gw := range gws {
		accepted, owned := classes[string(gw.Spec.GatewayClassName)]
		if !owned {
			continue
		}
		out = append(out, t.gateway(gw, accepted, claims))
	}
	return out
}

func (t *translator) gateway(gw *gwv1.Gateway, classAccepted bool, claims portClaims) *gatewayState {
	gs := &gatewayState{gw: gw, key: gw.Namespace + "/" + gw.Name, accepted: true}
	gen := gw.Generation

	addrProblem := t.gatewayAddresses(gs)
	paramsProblem := t.gatewayParameters(gw, gs.key)
	unimplemented := gatewayUnimplemented(gw)

	seen := make(map[gwv1.SectionName]bool)
	var duplicates []string
	for i := range gw.Spec.Listeners {
		spec := &gw.Spec.Listeners[i]
		if seen[spec.Name] {
			duplicates = append(duplicates, string(spec.Name))
			continue
		}
		seen[spec.Name] = true
		gs.listeners = append(gs.listeners, t.listener(gs, nil, spec))
	}
	markConflicts(gs.listeners)
	t.listenerSets(gs)
	bindAddr := gs.address
	if bindAddr == "" {
		bindAddr = t.opts.DefaultAddress
	}
	if t.opts.Provisioned {
		// Every Gateway has its own data plane and Service: ports are
		// claimed per Gateway only.
		bindAddr = "gateway " + gs.key
	}
	for _, l := range gs.served() {
		if !l.accepted.ok || l.conflicted.ok {
			continue
		}
		if owner := claims.claim(bindAddr, keyOf(l.spec), gs.key); owner != gs.key {
			l.accepted = cond{false, string(gwv1.ListenerReasonPortUnavailable),
				fmt.Sprintf("port %d on %s is already served by Gateway %s", l.spec.Port, displayAddr(bindAddr), owner)}
		}
	}

	markOverlappingTLS(gs.served())

	var invalid []string
	for _, l := range gs.listeners {
		if !l.accepted.ok || l.conflicted.ok {
			invalid = append(invalid, string(l.spec.Name))
		}
	}
	var msg string
	reason := string(gwv1.GatewayReasonAccepted)
	switch {
	case !classAccepted:
		gs.accepted = false
		reason = string(gwv1.GatewayReasonInvalid)
		msg = fmt.Sprintf("GatewayClass %q is not accepted", gw.Spec.GatewayClassName)
	case paramsProblem != "":
		gs.accepted = false
		reason = string(gwv1.GatewayReasonInvalidParameters)
		msg = "spec.infrastructure.parametersRef: " + paramsProblem
	case addrProblem != "":
		gs.accepted = false
		reason = string(gwv1.GatewayReasonUnsupportedAddress)
		msg = addrProblem
	case unimplemented != "":
		gs.accepted = false
		reason = reasonUnsupportedValue
		msg = unimplemented
	case len(gs.listeners) == 0 || len(invalid) == len(gs.listeners):
		gs.accepted = false
		reason = string(gwv1.GatewayReasonListenersNotValid)
		msg = "no valid listeners"
		if len(invalid) > 0 {
			msg = "no valid listeners: invalid listeners: " + strings.Join(invalid, ", ")
		}
	case len(invalid) > 0 || len(duplicates) > 0:
		reason = string(gwv1.GatewayReasonListenersNotValid)
		var parts []string
		if len(invalid) > 0 {
			parts = append(parts, "invalid listeners: "+strings.Join(invalid, ", "))
		}
		if len(duplicates) > 0 {
			parts = append(parts, "spec.listeners: duplicate listener names ignored: "+strings.Join(duplicates, ", "))
		}
		msg = strings.Join(parts, "; ")
	default:
		msg = "Gateway is valid"
	}
	gs.conds = append(gs.conds, condition(string(gwv1.GatewayConditionAccepted), gs.accepted, reason, msg, gen))
	if gs.accepted {
		gs.conds = append(gs.conds, condition(string(gwv1.GatewayConditionProgrammed), true,
			string(gwv1.GatewayReasonProgrammed), "Gateway is programmed", gen))
	} else {
		gs.conds = append(gs.conds, condition(string(gwv1.GatewayConditionProgrammed), false,
			string(gwv1.GatewayReasonInvalid), msg, gen))
	}
	if c, ok := t.backendClientCertificate(gs); ok {
		gs.conds = append(gs.conds, c)
	}
	if insecureFrontendValidation(gs.listeners) {
		gs.conds = append(gs.conds, condition(string(gwv1.GatewayConditionInsecureFrontendValidationMode), true,
			string(gwv1.GatewayReasonConfigurationChanged),
			"spec.tls.frontend: a port uses AllowInsecureFallback; clients without a valid certificate are let in", gen))
	}
	for _, s := range gs.sets {
		s.settle()
	}
	return gs
}

// gatewayParameters returns the problem with a Gateway's
// spec.infrastructure.parametersRef, or "".
func (t *translator) gatewayParameters(gw *gwv1.Gateway, key string) string {
	if gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
		return ""
	}
	problem, known := t.opts.GatewayParameters[key]
	if !known {
		return "RAUTA reads parameters only when it provisions data planes (rauta controller -provisioner=kubernetes); remove the reference"
	}
	return problem
}

// gatewayAddresses resolves spec.addresses. RAUTA serves Gateways in-process,
// so only IP addresses can be honoured. It returns a problem message or "".
func (t *translator) gatewayAddresses(gs *gatewayState) string {
	addrType := gwv1.IPAddressType
	for i, a := range gs.gw.Spec.Addresses {
		typ := gwv1.IPAddressType
		if a.Type != nil {
			typ = *a.Type
		}
		if t.opts.Provisioned && a.Value == "" && typ == gwv1.IPAddressType {
			// "Assign me one": the Service's load balancer does.
			continue
		}
		if typ != gwv1.IPAddressType {
			return fmt.Sprintf("spec.addresses[%d].type: %q is not supported; RAUTA serves IPAddress addresses", i, typ)
		}
		ip, err := netip.ParseAddr(a.Value)
		if err != nil {
			return fmt.Sprintf("spec.addresses[%d].value: %q is not an IP address", i, a.Value)
		}
		if gs.address == "" {
			gs.address = ip.String()
		}
		gs.addresses = append(gs.addresses, gwv1.GatewayStatusAddress{Type: &addrType, Value: ip.String()})
	}
	if t.opts.Provisioned {
		// The provisioner asks the Service for spec.addresses; what the
		// Gateway has is what its Service got.
		gs.address = ""
		gs.addresses = append([]gwv1.GatewayStatusAddress(nil), t.opts.GatewayAddresses[gs.key]...)
		return ""
	}
	if len(gs.addresses) == 0 {
		addr := t.opts.Addresses[gs.key]
		gs.address = addr
		if addr == "" {
			addr = t.opts.DefaultAddress
		}
		if addr != "" {
			gs.addresses = append(gs.addresses, gwv1.GatewayStatusAddress{Type: &addrType, Value: addr})
		}
	}
	return ""
}

// listener validates one listener of a Gateway, or of set when set is not
// nil.
func (t *translator) listener(gs *gatewayState, set *listenerSetState, spec *gwv1.Listener) *listenerState {
	l := &listenerState{
		gw:             gs,
		set:            set,
		spec:           spec,
		accepted:       cond{ok: true, reason: string(gwv1.ListenerReasonAccepted)},
		conflicted:     cond{ok: false, reason: string(gwv1.ListenerReasonNoConflicts)},
		certRefs:       cond{ok: true, reason: string(gwv1.ListenerReasonResolvedRefs)},
		caRefs:         cond{ok: true, reason: string(gwv1.ListenerReasonResolvedRefs)},
		kindRefs:       cond{ok: true, reason: string(gwv1.ListenerReasonResolvedRefs)},
		supportedKinds: []gwv1.RouteGroupKind{},
	}
	if spec.Hostname != nil {
		l.hostname = strings.ToLower(string(*spec.Hostname))
	}
	kinds, ok := supportedRouteKinds[spec.Protocol]
	if !ok {
		l.accepted = cond{false, string(gwv1.ListenerReasonUnsupportedProtocol),
			fmt.Sprintf("protocol: %q is not supported; use HTTP, HTTPS, TLS, TCP or UDP", spec.Protocol)}
		return l
	}
	if problem := hostnameProblem(l.hostname); problem != "" {
		l.accepted = cond{false, string(gwv1.ListenerReasonUnsupportedValue), "hostname: " + problem}
		return l
	}
	t.listenerKinds(l, kinds)
	if spec.Protocol == gwv1.HTTPSProtocolType || terminatesTLS(spec) {
		t.listenerTLS(l)
	}
	refuseListenerTLSOptions(l)
	t.listenerClientValidation(l)
	return l
}

// listenerKinds fills supportedKinds from allowedRoutes.kinds (or the
// protocol's defaults) and flags kinds RAUTA cannot serve on this listener.
func (t *translator) listenerKinds(l *listenerState, protocolKinds []string) {
	if l.spec.AllowedRoutes == nil || len(l.spec.AllowedRoutes.Kinds) == 0 {
		for _, k := range protocolKinds {
			l.supportedKinds = append(l.supportedKinds, routeGroupKind(k))
		}
		return
	}
	var invalid []string
	for _, k := range l.spec.AllowedRoutes.Kinds {
		group := gwv1.GroupName
		if k.Group != nil {
			group = string(*k.Group)
		}
		if group == gwv1.GroupName && contains(protocolKinds, string(k.Kind)) {
			if !l.allowsKind(string(k.Kind)) {
				l.supportedKinds = append(l.supportedKinds, routeGroupKind(string(k.Kind)))
			}
			continue
		}
		invalid = append(invalid, group+"/"+string(k.Kind))
	}
	if len(invalid) > 0 {
		l.kindRefs = cond{false, string(gwv1.ListenerReasonInvalidRouteKinds),
			fmt.Sprintf("allowedRoutes.kinds: %s not supported on a %s listener", strings.Join(invalid, ", "), l.spec.Protocol)}
	}
}

func routeGroupKind(kind string) gwv1.RouteGroupKind {
	g := gwv1.Group(gwv1.GroupName)
	return gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(kind)}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hostnameProblem validates a listener hostname as the CRD would.
func hostnameProblem(h string) string {
	if h == "" {
		return ""
	}
	if net := strings.TrimPrefix(h, "*."); strings.Contains(net, "*") {
		return fmt.Sprintf("%q: a wildcard is only allowed as the first label", h)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fmt.Sprintf("%q: an IP address is not a hostname", h)
	}
	for _, label := range strings.Split(strings.TrimPrefix(h, "*."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Sprintf("%q: empty or over-long label", h)
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return fmt.Sprintf("%q: invalid character %q", h, r)
			}
		}
	}
	return ""
}

// portKey is a listener's port and transport. A UDP listener and a TCP-based
// one (HTTP, HTTPS, TLS, TCP) on one port are distinct and compatible: they
// are served by two sockets (a DNS Gateway serves port 53 over both).
type portKey struct {
	port gwv1.PortNumber
	udp  bool
}

func keyOf(l *gwv1.Listener) portKey {
	return portKey{l.Port, l.Protocol == gwv1.UDPProtocolType}
}

// ListenerName is the name of the ir.Listener that serves a Gateway's
// port (gateway is "namespace/name"): its UDP socket when udp is true.
func ListenerName(gateway string, port int32, udp bool) string {
	if udp {
		return fmt.Sprintf("%s/%d/udp", gateway, port)
	}
	return fmt.Sprintf("%s/%d", gateway, port)
}

// markConflicts applies the spec's distinctness rules: listeners sharing a
// port and transport must share a protocol, and listeners sharing a port and
// protocol must differ in hostname. No conflicting listener wins; all are
// rejected.
func markConflicts(ls []*listenerState) {
	byPort := make(map[portKey][]*listenerState)
	var ports []portKey
	for _, l := range ls {
		k := keyOf(l.spec)
		if _, ok := byPort[k]; !ok {
			ports = append(ports, k)
		}
		byPort[k] = append(byPort[k], l)
	}
	for _, p := range ports {
		group := byPort[p]
		protocols := make(map[gwv1.ProtocolType]bool)
		for _, l := range group {
			protocols[l.spec.Protocol] = true
		}
		if len(protocols) > 1 {
			for _, l := range group {
				setConflict(l, gwv1.ListenerReasonProtocolConflict,
					fmt.Sprintf("port %d is used with different protocols by other listeners", p.port))
			}
			continue
		}
		byHost := make(map[string][]*listenerState)
		for _, l := range group {
			byHost[l.hostname] = append(byHost[l.hostname], l)
		}
		for host, same := range byHost {
			if len(same) < 2 {
				continue
			}
			names := make([]string, 0, len(same))
			for _, l := range same {
				names = append(names, string(l.spec.Name))
			}
			sort.Strings(names)
			for _, l := range same {
				setConflict(l, gwv1.ListenerReasonHostnameConflict,
					fmt.Sprintf("listeners %s share port %d and hostname %q", strings.Join(names, ", "), p.port, host))
			}
		}
	}
}

func setConflict(l *listenerState, reason gwv1.ListenerConditionReason, msg string) {
	l.conflicted = cond{true, string(reason), msg}
	l.accepted = cond{false, string(reason), msg}
}

// portClaims records which Gateway serves each address and port. In-process
// serving binds one socket per address and port, so two Gateways cannot share
// one; the unspecified address collides with every address.
type portClaims map[portKey][]portClaim

type portClaim struct{ addr, owner string }

// claim gives port on addr to owner unless another Gateway holds it, and
// returns the Gateway that holds it.
func (c portClaims) claim(addr string, port portKey, owner string) string {
	for _, pc := range c[port] {
		if pc.owner != owner && (pc.addr == addr || unspecified(pc.addr) || unspecified(addr)) {
			return pc.owner
		}
	}
	c[port] = append(c[port], portClaim{addr, owner})
	return owner
}

func unspecified(addr string) bool {
	if addr == "" {
		return true
	}
	ip, err := netip.ParseAddr(addr)
	return err == nil && ip.IsUnspecified()
}

func displayAddr(addr string) string {
	if addr == "" {
		return "the default address"
	}
	return addr
}

// listenerStatus renders the status of one listener.
func (l *listenerState) status() gwv1.ListenerStatus {
	gen := l.generation()
	refs := l.resolvedRefs()
	conds := []metav1.Condition{
		condition(string(gwv1.ListenerConditionAccepted), l.accepted.ok, l.accepted.reason, msgOr(l.accepted.message, "Listener is accepted"), gen),
		condition(string(gwv1.ListenerConditionConflicted), l.conflicted.ok, l.conflicted.reason, msgOr(l.conflicted.message, "No conflicts"), gen),
		condition(string(gwv1.ListenerConditionResolvedRefs), refs.ok, refs.reason, msgOr(refs.message, "All references resolved"), gen),
	}
	if l.programmed() {
		conds = append(conds, condition(string(gwv1.ListenerConditionProgrammed), true, string(gwv1.ListenerReasonProgrammed), "Listener is programmed", gen))
	} else {
		// A conflict is its own Programmed reason, as the ListenerSet
		// conformance tests require; other problems are Invalid.
		reason := string(gwv1.ListenerReasonInvalid)
		if l.conflicted.ok {
			reason = l.conflicted.reason
		}
		conds = append(conds, condition(string(gwv1.ListenerConditionProgrammed), false, reason, "Listener is not programmed: "+l.problem(), gen))
	}
	if len(l.overlapping) > 0 {
		conds = append(conds, condition(string(gwv1.ListenerConditionOverlappingTLSConfig), true,
			string(gwv1.ListenerReasonOverlappingHostnames), l.overlapMessage(), gen))
	}
	return gwv1.ListenerStatus{
		Name:           l.spec.Name,
		SupportedKinds: l.supportedKinds,
		AttachedRoutes: l.attached,
		Conditions:     conds,
	}
}

// problem says why a listener is not programmed.
func (l *listenerState) problem() string {
	switch {
	case !l.gw.accepted:
		return "the Gateway is not accepted"
	case !l.accepted.ok:
		return l.accepted.message
	case !l.certRefs.ok:
		return l.certRefs.message
	}
	return "no route kind can attach"
}

func msgOr(msg, fallback string) string {
	if msg != "" {
		return msg
	}
	return fallback
}

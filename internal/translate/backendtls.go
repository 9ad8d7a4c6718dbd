package translate

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// RAUTA does not implement BackendTLSPolicy yet. A policy says that traffic
// to its Service must be encrypted, so sending plain text instead would break
// the user's intent silently: a backend reference to a Service a policy
// targets is unresolvable (its share of requests gets 500, like any invalid
// backend), the route says why, and the policy gets an ancestor entry for
// every RAUTA Gateway it matters to, Accepted=False with reason Invalid (the
// reason the spec gives for a policy field an implementation does not
// support).

// maxPolicyAncestors is the API's limit on PolicyStatus.Ancestors.
const maxPolicyAncestors = 16

// backendTLSPolicies returns the policies that ask for TLS to a Service
// port: those targeting the whole Service or the port by name, in the spec's
// precedence order (oldest first, then namespace/name).
func (ix *index) backendTLSPolicies(svc *corev1.Service, sp corev1.ServicePort) []*gwv1.BackendTLSPolicy {
	var out []*gwv1.BackendTLSPolicy
	for _, p := range ix.tlsPolicies[nsName(svc.Namespace, svc.Name)] {
		if policyTargetsPort(p, svc.Name, sp.Name) {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp; !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

func policyTargetsPort(p *gwv1.BackendTLSPolicy, service, port string) bool {
	for _, ref := range p.Spec.TargetRefs {
		if ref.Group != "" || ref.Kind != "Service" || string(ref.Name) != service {
			continue
		}
		if ref.SectionName == nil || *ref.SectionName == "" || string(*ref.SectionName) == port {
			return true
		}
	}
	return false
}

// backendTLSProblem is the route's ResolvedRefs problem for a backend that a
// BackendTLSPolicy covers. UnsupportedProtocol is the route reason for a
// backend whose protocol the implementation does not support: here, TLS.
func backendTLSProblem(field string, svc *corev1.Service, ps []*gwv1.BackendTLSPolicy) refProblem {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Namespace + "/" + p.Name
	}
	return refProblem{
		reason: string(gwv1.RouteReasonUnsupportedProtocol),
		message: fmt.Sprintf("%s: BackendTLSPolicy %s targets Service %s/%s; RAUTA does not implement backend TLS yet and sends it no plain text (its requests get 500, a mirror to it is dropped)",
			field, strings.Join(names, ", "), svc.Namespace, svc.Name),
		policies: ps,
	}
}

// notePolicyAncestors records that a route attached to gs uses backends the
// policies in problems cover.
func (t *translator) notePolicyAncestors(gs *gatewayState, problems []refProblem) {
	for _, pr := range problems {
		for _, p := range pr.policies {
			if t.policyAncestors[p] == nil {
				t.policyAncestors[p] = make(map[string]*gatewayState)
			}
			t.policyAncestors[p][gs.key] = gs
		}
	}
}

// backendTLSPolicyStatus renders the status of every policy that matters to
// a RAUTA Gateway: one ancestor per Gateway, at most the API's sixteen.
func (t *translator) backendTLSPolicyStatus() {
	for p, gws := range t.policyAncestors {
		keys := make([]string, 0, len(gws))
		for k := range gws {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > maxPolicyAncestors {
			keys = keys[:maxPolicyAncestors]
		}
		st := gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{}}
		for _, k := range keys {
			gw := gws[k].gw
			st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    gatewayRef(gw),
				ControllerName: gwv1.GatewayController(t.opts.ControllerName),
				Conditions: []metav1.Condition{condition(string(gwv1.PolicyConditionAccepted), false, string(gwv1.PolicyReasonInvalid),
					fmt.Sprintf("RAUTA does not implement BackendTLSPolicy yet; routes of Gateway %s/%s to the targeted Service get 500 instead of plain text",
						gw.Namespace, gw.Name), p.Generation)},
			})
		}
		t.status.BackendTLSPolicies = append(t.status.BackendTLSPolicies, PolicyStatus{Namespace: p.Namespace, Name: p.Name, Status: st})
	}
}

// gatewayRef is the reference to a Gateway as policy status names it.
func gatewayRef(gw *gwv1.Gateway) gwv1.ParentReference {
	group := gwv1.Group(gwv1.GroupName)
	kind := gwv1.Kind("Gateway")
	ns := gwv1.Namespace(gw.Namespace)
	return gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(gw.Name)}
}

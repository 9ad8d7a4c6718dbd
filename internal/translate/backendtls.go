package translate

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BackendTLSPolicy: a policy targeting a Service (or one of its ports by
// name) makes the gateway speak TLS to it, verifying the certificate against
// the policy's CA bundle (or the system pool) and hostname (or its
// subjectAltNames). Per Service port one policy applies: one naming the port
// beats one naming the whole Service, then the oldest wins (GEP-713); the
// others with the same target are Conflicted. A policy whose CA references
// all fail leaves its backends Invalid (500): never plain text, never an
// unverified connection.

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
		if si, sj := namesPort(out[i], svc.Name, sp.Name), namesPort(out[j], svc.Name, sp.Name); si != sj {
			return si
		}
		return policyBefore(out[i], out[j])
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

// namesPort reports whether p targets the port by its name (more specific
// than the whole Service).
func namesPort(p *gwv1.BackendTLSPolicy, service, port string) bool {
	for _, ref := range p.Spec.TargetRefs {
		if ref.Group == "" && ref.Kind == "Service" && string(ref.Name) == service &&
			ref.SectionName != nil && *ref.SectionName != "" && string(*ref.SectionName) == port {
			return true
		}
	}
	return false
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
		r := t.resolveBackendTLS(p)
		accepted := cond{true, string(gwv1.PolicyReasonAccepted), "Policy accepted"}
		switch {
		case t.conflictedPolicy(p) != nil:
			q := t.conflictedPolicy(p)
			accepted = cond{false, string(gwv1.PolicyReasonConflicted),
				fmt.Sprintf("BackendTLSPolicy %s/%s is older (or first by name) and has the same target", q.Namespace, q.Name)}
		case !r.accepted.ok:
			accepted = r.accepted
		}
		st := gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{}}
		for _, k := range keys {
			gw := gws[k].gw
			st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    gatewayRef(gw),
				ControllerName: gwv1.GatewayController(t.opts.ControllerName),
				Conditions: []metav1.Condition{
					condition(string(gwv1.PolicyConditionAccepted), accepted.ok, accepted.reason, accepted.message, p.Generation),
					condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), r.resolved.ok, r.resolved.reason, r.resolved.message, p.Generation),
				},
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

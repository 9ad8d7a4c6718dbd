package translate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/objstatus"
)

// Problems lists the conditions of s that report a problem, so that users
// see why an object is not served in the log, with or without an API server
// (package gateway logs each once, when it appears).
func (s *Status) Problems() []objstatus.Problem {
	var out []objstatus.Problem
	add := func(kind, name, part string, conds []metav1.Condition) {
		for _, c := range conds {
			if isProblem(c) {
				out = append(out, objstatus.Problem{Kind: kind, Name: name, Part: part,
					Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message})
			}
		}
	}
	for _, c := range s.GatewayClasses {
		add("GatewayClass", c.Name, "", c.Status.Conditions)
	}
	for _, g := range s.Gateways {
		name := g.Namespace + "/" + g.Name
		add("Gateway", name, "", g.Status.Conditions)
		for _, l := range g.Status.Listeners {
			add("Gateway", name, "listener "+string(l.Name), l.Conditions)
		}
	}
	for _, r := range s.HTTPRoutes {
		for _, p := range r.Status.Parents {
			add("HTTPRoute", r.Namespace+"/"+r.Name, "parent "+string(p.ParentRef.Name), p.Conditions)
		}
	}
	return out
}

// isProblem: Conflicted and PartiallyInvalid are bad when True, the rest when False.
func isProblem(c metav1.Condition) bool {
	switch c.Type {
	case string(gwv1.ListenerConditionConflicted), string(gwv1.RouteConditionPartiallyInvalid):
		return c.Status == metav1.ConditionTrue
	}
	return c.Status == metav1.ConditionFalse
}

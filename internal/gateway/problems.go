package gateway

import (
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

// problem is one condition that reports something wrong with an object.
type problem struct {
	kind, name, part string
	cond             metav1.Condition
}

// problems lists the conditions of st that report a problem, so that users
// see why an object is not served in the log, with or without an API server.
func problems(st *translate.Status) map[problem]bool {
	out := make(map[problem]bool)
	add := func(kind, name, part string, conds []metav1.Condition) {
		for _, c := range conds {
			if isProblem(c) {
				c.ObservedGeneration, c.LastTransitionTime = 0, metav1.Time{}
				out[problem{kind, name, part, c}] = true
			}
		}
	}
	for _, c := range st.GatewayClasses {
		add("GatewayClass", c.Name, "", c.Status.Conditions)
	}
	for _, g := range st.Gateways {
		name := g.Namespace + "/" + g.Name
		add("Gateway", name, "", g.Status.Conditions)
		for _, l := range g.Status.Listeners {
			add("Gateway", name, "listener "+string(l.Name), l.Conditions)
		}
	}
	for _, r := range st.HTTPRoutes {
		for _, p := range r.Status.Parents {
			add("HTTPRoute", r.Namespace+"/"+r.Name, "parent "+string(p.ParentRef.Name), p.Conditions)
		}
	}
	return out
}

// logNewProblems logs each problem of now that was not in before, so a
// problem is reported once when it appears, not at every translation.
func logNewProblems(logger *slog.Logger, before, now map[problem]bool) {
	for p := range now {
		if before[p] {
			continue
		}
		logger.Warn("status", "kind", p.kind, "name", p.name, "part", p.part,
			"condition", p.cond.Type, "status", string(p.cond.Status), "reason", p.cond.Reason, "message", p.cond.Message)
	}
}

// isProblem: Conflicted and PartiallyInvalid are bad when True, the rest when False.
func isProblem(c metav1.Condition) bool {
	switch c.Type {
	case string(gwv1.ListenerConditionConflicted), string(gwv1.RouteConditionPartiallyInvalid):
		return c.Status == metav1.ConditionTrue
	}
	return c.Status == metav1.ConditionFalse
}

package standalone

import (
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

// logProblems writes one log line per condition that reports a problem, so a
// user without an API server still sees why an object is not served.
func logProblems(logger *slog.Logger, st *translate.Status) {
	for _, c := range st.GatewayClasses {
		logConds(logger, "GatewayClass", c.Name, "", c.Status.Conditions)
	}
	for _, g := range st.Gateways {
		name := g.Namespace + "/" + g.Name
		logConds(logger, "Gateway", name, "", g.Status.Conditions)
		for _, l := range g.Status.Listeners {
			logConds(logger, "Gateway", name, string(l.Name), l.Conditions)
		}
	}
	for _, r := range st.HTTPRoutes {
		for _, p := range r.Status.Parents {
			logConds(logger, "HTTPRoute", r.Namespace+"/"+r.Name, "parent "+string(p.ParentRef.Name), p.Conditions)
		}
	}
}

func logConds(logger *slog.Logger, kind, name, part string, conds []metav1.Condition) {
	for _, c := range conds {
		if !isProblem(c) {
			continue
		}
		logger.Warn("status", "kind", kind, "name", name, "part", part,
			"condition", c.Type, "status", string(c.Status), "reason", c.Reason, "message", c.Message)
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

package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayClasses returns the GatewayClasses this controller owns, mapped to
// whether each is accepted, and records their status. Classes of other
// controllers get no status from us.
func (t *translator) gatewayClasses(classes []*gwv1.GatewayClass) map[string]bool {
	owned := make(map[string]bool)
	for _, c := range classes {
		if string(c.Spec.ControllerName) != t.opts.ControllerName {
			continue
		}
		owned[c.Name] = c.Spec.ParametersRef == nil
		var st gwv1.GatewayClassStatus
		if c.Spec.ParametersRef != nil {
			// RAUTA takes no parameters; a reference to any is a user mistake
			// that must be visible, but the class still works.
			st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayClassConditionStatusAccepted), false,
				string(gwv1.GatewayClassReasonInvalidParameters),
				"spec.parametersRef: RAUTA does not use parameters; remove the reference", c.Generation))
		} else {
			st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayClassConditionStatusAccepted), true,
				string(gwv1.GatewayClassReasonAccepted), "Accepted by "+t.opts.ControllerName, c.Generation))
		}
		t.status.GatewayClasses = append(t.status.GatewayClasses, GatewayClassStatus{Name: c.Name, Status: st})
	}
	return owned
}

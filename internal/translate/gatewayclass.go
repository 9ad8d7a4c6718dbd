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
		problem := ""
		if c.Spec.ParametersRef != nil {
			var known bool
			problem, known = t.opts.ClassParameters[c.Name]
			if !known {
				problem = "RAUTA reads parameters only when it provisions data planes (rauta controller -provisioner=kubernetes); remove the reference"
			}
		}
		owned[c.Name] = problem == ""
		var st gwv1.GatewayClassStatus
		if problem != "" {
			// A user mistake that must be visible; Gateways of the class are
			// not served until it is fixed.
			st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayClassConditionStatusAccepted), false,
				string(gwv1.GatewayClassReasonInvalidParameters), "spec.parametersRef: "+problem, c.Generation))
		} else {
			st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayClassConditionStatusAccepted), true,
				string(gwv1.GatewayClassReasonAccepted), "Accepted by "+t.opts.ControllerName, c.Generation))
		}
		t.status.GatewayClasses = append(t.status.GatewayClasses, GatewayClassStatus{Name: c.Name, Status: st})
	}
	return owned
}

package translate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/provider/file"
)

// TestProvisioned: with a data plane per Gateway, two Gateways share port 80,
// listeners bind the data plane's own address, status addresses are the
// Service's, an empty IPAddress request is left to the load balancer, and a
// parametersRef the provisioner could not resolve refuses the Gateway.
func TestProvisioned(t *testing.T) {
	res, _, err := file.Load("testdata/provisioned/two-gateways.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ip := gwv1.IPAddressType
	r := Translate(res, Options{
		Provisioned:       true,
		DefaultAddress:    "0.0.0.0",
		GatewayAddresses:  map[string][]gwv1.GatewayStatusAddress{"default/a": {{Type: &ip, Value: "127.0.200.1"}}},
		ClassParameters:   map[string]string{"rauta": ""},
		GatewayParameters: map[string]string{"default/c": `GatewayParameters "missing" not found`},
	})
	byName := map[string]gwv1.GatewayStatus{}
	for _, g := range r.Status.Gateways {
		byName[g.Name] = g.Status
	}
	for _, name := range []string{"a", "b"} {
		if c := findCond(byName[name].Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("gateway %s: Accepted = %+v, want True (each Gateway has its own port 80)", name, c)
		}
		for _, l := range byName[name].Listeners {
			if c := findCond(l.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("gateway %s listener %s: Accepted = %+v", name, l.Name, c)
			}
		}
	}
	if got := byName["a"].Addresses; len(got) != 1 || got[0].Value != "127.0.200.1" {
		t.Errorf("gateway a addresses = %+v, want the Service's 127.0.200.1", got)
	}
	if got := byName["b"].Addresses; len(got) != 0 {
		t.Errorf("gateway b addresses = %+v, want none yet", got)
	}
	if c := findCond(byName["c"].Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(gwv1.GatewayReasonInvalidParameters) {
		t.Errorf("gateway c: Accepted = %+v, want False InvalidParameters", c)
	}
	if len(r.Status.GatewayClasses) != 1 || r.Status.GatewayClasses[0].Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("class with resolved parameters not accepted: %+v", r.Status.GatewayClasses)
	}
	listeners := 0
	for _, l := range r.IR.Listeners {
		listeners++
		if l.Address != "" || l.Port != 80 {
			t.Errorf("listener %s binds %q:%d, want the data plane's default address on 80", l.Name, l.Address, l.Port)
		}
	}
	if listeners != 2 {
		t.Errorf("%d listeners in the IR, want 2 (gateways a and b)", listeners)
	}
}

func findCond(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

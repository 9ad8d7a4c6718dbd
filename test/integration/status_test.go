package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/poll"
)

// want is a condition a test expects: its type, status and reason.
type want struct {
	typ    string
	status metav1.ConditionStatus
	reason string
}

// hasConditions checks that every wanted condition is present, with the
// object's current generation.
func hasConditions(conds []metav1.Condition, generation int64, wants ...want) error {
	for _, w := range wants {
		c := findCondition(conds, w.typ)
		if c == nil {
			return fmt.Errorf("no %s condition in %v", w.typ, conds)
		}
		if c.Status != w.status || c.Reason != w.reason {
			return fmt.Errorf("%s=%s (%s: %s), want %s (%s)", w.typ, c.Status, c.Reason, c.Message, w.status, w.reason)
		}
		if c.ObservedGeneration != generation {
			return fmt.Errorf("%s observedGeneration %d, want %d", w.typ, c.ObservedGeneration, generation)
		}
	}
	return nil
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// waitGateway waits for the Gateway's conditions and returns its status
// address.
func (e *environment) waitGateway(ctx context.Context, t *testing.T, ns, name string, wants ...want) string {
	t.Helper()
	var addr string
	poll.NoError(t, 30*time.Second, "Gateway "+ns+"/"+name+" status", func() error {
		gw, err := e.gateway(ctx, ns, name)
		if err != nil {
			return err
		}
		if err := hasConditions(gw.Status.Conditions, gw.Generation, wants...); err != nil {
			return err
		}
		if len(gw.Status.Addresses) != 1 {
			return fmt.Errorf("status.addresses %v, want one", gw.Status.Addresses)
		}
		addr = gw.Status.Addresses[0].Value
		return nil
	})
	return addr
}

// waitListener waits for a listener's conditions.
func (e *environment) waitListener(ctx context.Context, t *testing.T, ns, gateway, listener string, wants ...want) {
	t.Helper()
	poll.NoError(t, 30*time.Second, "listener "+listener+" of Gateway "+ns+"/"+gateway, func() error {
		gw, err := e.gateway(ctx, ns, gateway)
		if err != nil {
			return err
		}
		for _, l := range gw.Status.Listeners {
			if string(l.Name) == listener {
				return hasConditions(l.Conditions, gw.Generation, wants...)
			}
		}
		return fmt.Errorf("no status for the listener in %v", gw.Status.Listeners)
	})
}

// waitRoute waits for the conditions of the route's parent entry written by
// controllerName.
func (e *environment) waitRoute(ctx context.Context, t *testing.T, ns, name, controllerName string, wants ...want) {
	t.Helper()
	poll.NoError(t, 30*time.Second, "HTTPRoute "+ns+"/"+name+" status", func() error {
		r, err := e.route(ctx, ns, name)
		if err != nil {
			return err
		}
		var mine []gwv1.RouteParentStatus
		for _, p := range r.Status.Parents {
			if string(p.ControllerName) == controllerName {
				mine = append(mine, p)
			}
		}
		if len(mine) != 1 {
			return fmt.Errorf("%d parent entries of %s, want 1: %+v", len(mine), controllerName, r.Status.Parents)
		}
		return hasConditions(mine[0].Conditions, r.Generation, wants...)
	})
}

var (
	accepted     = want{"Accepted", metav1.ConditionTrue, "Accepted"}
	programmed   = want{"Programmed", metav1.ConditionTrue, "Programmed"}
	resolvedRefs = want{"ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs"}
)

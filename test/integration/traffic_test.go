package integration

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestTrafficFollowsTheCluster: a Gateway and an HTTPRoute get the right
// status and send traffic to the right pods; scaling the Deployment adds and
// removes endpoints; changing the route moves the traffic.
func TestTrafficFollowsTheCluster(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, e, "traffic")
	e.startController(ctx, t, replica{controllerName: f.controllerName, lease: "it-traffic", identity: "traffic", pool: "127.0.3.0/24"})

	podsA := f.echo(ctx, t, "echo-a", 2)
	podsB := f.echo(ctx, t, "echo-b", 1)
	f.apply(ctx, t, httpGatewayYAML)
	f.route(ctx, t, "web", "web.example", "echo-a")

	addr := e.waitGateway(ctx, t, f.ns, "gw", accepted, programmed)
	e.waitListener(ctx, t, f.ns, "gw", "http", accepted, programmed, resolvedRefs)
	e.waitRoute(ctx, t, f.ns, "web", f.controllerName, accepted, resolvedRefs)
	gw, err := e.gateway(ctx, f.ns, "gw")
	if err != nil {
		t.Fatal(err)
	}
	if n := gw.Status.Listeners[0].AttachedRoutes; n != 1 {
		t.Errorf("listener http attachedRoutes = %d, want 1", n)
	}
	gwAddr := hostPort(addr, 80)

	waitServedBy(ctx, t, gwAddr, "web.example", "/", f.ns, podsA)
	waitServedBy(ctx, t, gwAddr, "web.example", "/some/path", f.ns, podsA)
	// A host no route claims is not routed anywhere.
	waitStatus(ctx, t, gwAddr, "other.example", "/", 404)

	t.Run("scale up: the new pod receives traffic", func(t *testing.T) {
		e.scale(ctx, t, f.ns, "echo-a", 3)
		podsA = e.readyPods(ctx, t, f.ns, "echo-a", 3)
		waitServedBy(ctx, t, gwAddr, "web.example", "/", f.ns, podsA)
	})
	t.Run("scale down: removed pods stop receiving traffic", func(t *testing.T) {
		e.scale(ctx, t, f.ns, "echo-a", 1)
		left := e.readyPods(ctx, t, f.ns, "echo-a", 1)
		if !slices.Contains(podsA, left[0]) {
			t.Fatalf("remaining pod %s is not one of %v", left[0], podsA)
		}
		waitServedBy(ctx, t, gwAddr, "web.example", "/", f.ns, left)
	})
	t.Run("route change: traffic follows the new backend", func(t *testing.T) {
		f.route(ctx, t, "web", "web.example", "echo-b")
		waitServedBy(ctx, t, gwAddr, "web.example", "/", f.ns, podsB)
		e.waitRoute(ctx, t, f.ns, "web", f.controllerName, accepted, resolvedRefs)
	})
	t.Run("hostname change: the old host stops matching", func(t *testing.T) {
		f.route(ctx, t, "web", "moved.example", "echo-b")
		waitServedBy(ctx, t, gwAddr, "moved.example", "/", f.ns, podsB)
		waitStatus(ctx, t, gwAddr, "web.example", "/", 404)
	})
}

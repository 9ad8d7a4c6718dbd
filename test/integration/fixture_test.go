package integration

import (
	"context"
	"fmt"
	"github.com/false-systems/rauta/test/integration/harness"
	"testing"
)

// fixture is one test's namespace, GatewayClass and controllerName, all
// named after the test.
type fixture struct {
	e                         *environment
	ns, class, controllerName string
}

func newFixture(ctx context.Context, t *testing.T, e *environment, name string) fixture {
	t.Helper()
	f := fixture{e: e, ns: "it-" + name, class: "it-" + name, controllerName: "rauta.io/it-" + name}
	e.namespace(ctx, t, f.ns)
	e.apply(ctx, t, gatewayClassYAML, "@CLASS@", f.class, "@CONTROLLER@", f.controllerName)
	return f
}

// vars are the placeholders every manifest of the fixture shares.
func (f fixture) vars(more ...string) []string {
	return append([]string{"@NS@", f.ns, "@CLASS@", f.class, "@CONTROLLER@", f.controllerName}, more...)
}

func (f fixture) apply(ctx context.Context, t *testing.T, manifest string, more ...string) {
	t.Helper()
	f.e.apply(ctx, t, manifest, f.vars(more...)...)
}

// echo deploys echo-basic as app name with n replicas and returns the ready pods.
func (f fixture) echo(ctx context.Context, t *testing.T, name string, n int) []string {
	t.Helper()
	f.apply(ctx, t, harness.EchoYAML, "@NAME@", name, "@REPLICAS@", fmt.Sprint(n))
	return f.e.readyPods(ctx, t, f.ns, name, n)
}

// route applies the HTTPRoute name sending host to Service backend.
func (f fixture) route(ctx context.Context, t *testing.T, name, host, backend string) {
	t.Helper()
	f.apply(ctx, t, routeYAML, "@NAME@", name, "@HOST@", host, "@BACKEND@", backend)
}

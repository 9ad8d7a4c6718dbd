package integration

import (
	"context"
	"github.com/false-systems/rauta/test/integration/harness"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// invalidYAML holds one valid route and the invalid objects of the test: a
// route to a missing Service, a route to another namespace's Service without
// a ReferenceGrant, an HTTPS listener whose Secret is missing and one whose
// Secret does not hold a certificate.
const invalidYAML = `
apiVersion: v1
kind: Namespace
metadata: {name: @NS@-other}
---
apiVersion: v1
kind: Secret
metadata: {name: not-a-cert, namespace: @NS@}
type: kubernetes.io/tls
stringData: {tls.crt: "this is not a certificate", tls.key: "nor a key"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: @NS@}
spec:
  gatewayClassName: @CLASS@
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}
  - name: missing-secret
    protocol: HTTPS
    port: 443
    hostname: missing.example
    tls: {certificateRefs: [{name: absent}]}
  - name: bad-secret
    protocol: HTTPS
    port: 8443
    hostname: bad.example
    tls: {certificateRefs: [{name: not-a-cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: missing-service, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [missing-service.example]
  rules: [{backendRefs: [{name: nope, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cross-namespace, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [cross.example]
  rules: [{backendRefs: [{name: elsewhere, namespace: @NS@-other, port: 8080}]}]
`

const referenceGrantYAML = `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-routes, namespace: @NS@-other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: @NS@}]
  to: [{group: "", kind: Service}]
`

// TestInvalidObjects: invalid references get the documented conditions and a
// 500 for their traffic, while the valid route keeps serving and the
// controller keeps running; fixing a reference (a ReferenceGrant) heals it.
func TestInvalidObjects(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, e, "invalid")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.cs.CoreV1().Namespaces().Delete(ctx, f.ns+"-other", metav1.DeleteOptions{})
	})
	ctrl := e.startController(ctx, t, replica{controllerName: f.controllerName, lease: "it-invalid", identity: "invalid", pool: "127.0.3.0/24"})

	pods := f.echo(ctx, t, "echo", 1)
	f.apply(ctx, t, invalidYAML)
	// The cross-namespace backend exists: only the missing grant is wrong.
	e.apply(ctx, t, harness.EchoYAML, "@NS@", f.ns+"-other", "@NAME@", "elsewhere", "@REPLICAS@", "1")
	other := e.readyPods(ctx, t, f.ns+"-other", "elsewhere", 1)
	f.route(ctx, t, "valid", "valid.example", "echo")

	addr := e.waitGateway(ctx, t, f.ns, "gw", accepted)
	gwAddr := hostPort(addr, 80)

	e.waitRoute(ctx, t, f.ns, "valid", f.controllerName, accepted, resolvedRefs)
	e.waitRoute(ctx, t, f.ns, "missing-service", f.controllerName, accepted,
		want{"ResolvedRefs", metav1.ConditionFalse, "BackendNotFound"})
	e.waitRoute(ctx, t, f.ns, "cross-namespace", f.controllerName, accepted,
		want{"ResolvedRefs", metav1.ConditionFalse, "RefNotPermitted"})
	e.waitListener(ctx, t, f.ns, "gw", "missing-secret",
		want{"ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef"},
		want{"Programmed", metav1.ConditionFalse, "Invalid"})
	e.waitListener(ctx, t, f.ns, "gw", "bad-secret",
		want{"ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef"},
		want{"Programmed", metav1.ConditionFalse, "Invalid"})
	e.waitListener(ctx, t, f.ns, "gw", "http", accepted, programmed, resolvedRefs)

	// Invalid backends answer 500 (Gateway API: requests to an invalid
	// backendRef get a 500); the valid route keeps serving its pod.
	waitStatus(ctx, t, gwAddr, "missing-service.example", "/", 500)
	waitStatus(ctx, t, gwAddr, "cross.example", "/", 500)
	waitServedBy(ctx, t, gwAddr, "valid.example", "/", f.ns, pods)
	if ctrl.Exited() {
		t.Fatal("controller exited on invalid objects")
	}

	t.Run("a ReferenceGrant resolves the cross-namespace backend", func(t *testing.T) {
		e.apply(ctx, t, referenceGrantYAML, "@NS@", f.ns)
		e.waitRoute(ctx, t, f.ns, "cross-namespace", f.controllerName, accepted, resolvedRefs)
		waitServedBy(ctx, t, gwAddr, "cross.example", "/", f.ns+"-other", other)
	})
	t.Run("the missing Service appears", func(t *testing.T) {
		f.apply(ctx, t, harness.EchoYAML, "@NAME@", "nope", "@REPLICAS@", "1")
		nope := e.readyPods(ctx, t, f.ns, "nope", 1)
		e.waitRoute(ctx, t, f.ns, "missing-service", f.controllerName, accepted, resolvedRefs)
		waitServedBy(ctx, t, gwAddr, "missing-service.example", "/", f.ns, nope)
	})
}

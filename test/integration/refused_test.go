package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/poll"
)

// refusedYAML uses, next to one valid route, every field RAUTA refuses
// instead of implementing (docs/translator.md lists them): HTTPRoute
// sessionPersistence, an ExternalAuth filter, a TLSRoute on a Gateway without
// a TLS listener; and implemented fields it cannot honour as written: a
// client certificate check whose CA ConfigMap is missing (the listener is not
// served rather than served without the check), a backend client certificate
// whose Secret is missing, a retry asking for more attempts than the 10 RAUTA
// allows, and a BackendTLSPolicy for a backend that speaks plain text (the
// handshake fails: 502, never plain text).
const refusedYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: @NS@}
spec:
  gatewayClassName: @CLASS@
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    backend:
      clientCertificateRef: {name: client-cert}
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}
  - name: https
    protocol: HTTPS
    port: 443
    tls: {certificateRefs: [{name: server-cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: retry, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [retry.example]
  rules:
  - matches: [{path: {value: /retried}}]
    retry: {attempts: 20, codes: [503]}
    backendRefs: [{name: echo, port: 8080}]
  - backendRefs: [{name: echo, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: sticky, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [sticky.example]
  rules:
  - sessionPersistence: {sessionName: s, type: Cookie}
    backendRefs: [{name: echo, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: auth, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [auth.example]
  rules:
  - matches: [{path: {value: /admin}}]
    filters:
    - type: ExternalAuth
      externalAuth: {protocol: HTTP, http: {}, backendRef: {name: echo, port: 8080}}
    backendRefs: [{name: echo, port: 8080}]
  - backendRefs: [{name: echo, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: tls-backend, namespace: @NS@}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [tls-backend.example]
  rules: [{backendRefs: [{name: secure, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: secure-tls, namespace: @NS@}
spec:
  targetRefs: [{group: "", kind: Service, name: secure}]
  validation: {hostname: secure.example, wellKnownCACertificates: System}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: tls, namespace: @NS@}
spec:
  parentRefs: [{name: gw}]
  hostnames: [tls.example]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`

// TestRefusedFields: every field RAUTA does not implement is refused through
// status with the spec's condition, and traffic shows the refusal is real:
// no plain text to a Service that asks for TLS, no request past an
// authentication filter RAUTA cannot run. The valid parts keep serving.
func TestRefusedFields(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, e, "refused")
	e.startController(ctx, t, replica{controllerName: f.controllerName, lease: "it-refused", identity: "refused", pool: "127.0.6.0/24"})

	pods := f.echo(ctx, t, "echo", 1)
	f.echo(ctx, t, "secure", 1)
	f.apply(ctx, t, refusedYAML)

	addr := e.waitGateway(ctx, t, f.ns, "gw",
		want{"Accepted", metav1.ConditionTrue, "ListenersNotValid"},
		want{"ResolvedRefs", metav1.ConditionFalse, "InvalidClientCertificateRef"})
	gwAddr := hostPort(addr, 80)
	e.waitListener(ctx, t, f.ns, "gw", "https",
		want{"Accepted", metav1.ConditionFalse, "NoValidCACertificate"},
		want{"Programmed", metav1.ConditionFalse, "Invalid"})
	e.waitListener(ctx, t, f.ns, "gw", "http", accepted, programmed, resolvedRefs)

	e.waitRoute(ctx, t, f.ns, "retry", f.controllerName, accepted,
		want{"PartiallyInvalid", metav1.ConditionTrue, "UnsupportedValue"})
	e.waitRoute(ctx, t, f.ns, "sticky", f.controllerName,
		want{"Accepted", metav1.ConditionFalse, "UnsupportedValue"})
	e.waitRoute(ctx, t, f.ns, "auth", f.controllerName, accepted,
		want{"ResolvedRefs", metav1.ConditionFalse, "UnsupportedValue"})
	e.waitRoute(ctx, t, f.ns, "tls-backend", f.controllerName, accepted, resolvedRefs)

	poll.NoError(t, 30*time.Second, "BackendTLSPolicy ancestor status", func() error {
		var p gwv1.BackendTLSPolicy
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "secure-tls"}, &p); err != nil {
			return err
		}
		for _, a := range p.Status.Ancestors {
			if string(a.ControllerName) == f.controllerName && a.AncestorRef.Name == "gw" {
				return hasConditions(a.Conditions, p.Generation, want{"Accepted", metav1.ConditionTrue, "Accepted"})
			}
		}
		return fmt.Errorf("no ancestor entry of %s for gw: %+v", f.controllerName, p.Status.Ancestors)
	})
	poll.NoError(t, 30*time.Second, "TLSRoute status", func() error {
		var r gwv1.TLSRoute
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "tls"}, &r); err != nil {
			return err
		}
		for _, p := range r.Status.Parents {
			if string(p.ControllerName) == f.controllerName {
				return hasConditions(p.Conditions, r.Generation, want{"Accepted", metav1.ConditionFalse, "NotAllowedByListeners"})
			}
		}
		return fmt.Errorf("no parent entry of %s: %+v", f.controllerName, r.Status.Parents)
	})

	// The dropped retry rule's path falls to the route's other rule; the
	// ExternalAuth rule fails closed; the Service with a BackendTLSPolicy
	// gets TLS, which its plain-text echo cannot answer: 502.
	waitServedBy(ctx, t, gwAddr, "retry.example", "/retried", f.ns, pods)
	waitStatus(ctx, t, gwAddr, "auth.example", "/admin", 500)
	waitServedBy(ctx, t, gwAddr, "auth.example", "/", f.ns, pods)
	waitStatus(ctx, t, gwAddr, "tls-backend.example", "/", 502)
	waitStatus(ctx, t, gwAddr, "sticky.example", "/", 404)
}

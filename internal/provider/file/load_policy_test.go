package file

import (
	"path/filepath"
	"testing"
)

// BackendTLSPolicies are read from files so that `rauta run -f` refuses to
// send plain text to a Service that asks for TLS, as the controller does.
func TestLoadBackendTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"policy.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata:
  name: tls
  namespace: apps
spec:
  targetRefs:
  - group: ""
    kind: Service
    name: web
    sectionName: https
  validation:
    hostname: web.example.com
    wellKnownCACertificates: System
`})
	res, warnings, err := Load(dir)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Load = %v, warnings %v", err, warnings)
	}
	if len(res.BackendTLSPolicies) != 1 {
		t.Fatalf("loaded %d BackendTLSPolicies, want 1", len(res.BackendTLSPolicies))
	}
	p := res.BackendTLSPolicies[0]
	ref := p.Spec.TargetRefs[0]
	if p.Namespace != "apps" || p.Generation != 1 || ref.Kind != "Service" || ref.Name != "web" ||
		ref.SectionName == nil || *ref.SectionName != "https" || p.Spec.Validation.Hostname != "web.example.com" {
		t.Errorf("BackendTLSPolicy = %s/%s gen %d %+v", p.Namespace, p.Name, p.Generation, p.Spec)
	}
}

// A typo in a BackendTLSPolicy is reported with file and line like in any
// other kind, rather than silently dropping the field.
func TestLoadBackendTLSPolicyTypo(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"policy.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata:
  name: tls
spec:
  targetRef:
  - group: ""
    kind: Service
    name: web
`})
	_, _, err := Load(dir)
	want := filepath.Join(dir, "policy.yaml") + `:6: BackendTLSPolicy default/tls: spec.targetRef: unknown field (did you mean "targetRefs"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("Load error = %v, want %s", err, want)
	}
}

// Every route kind the provider reads is served: GRPCRoutes and TLSRoutes
// load without a warning.
func TestLoadServedRouteKinds(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"routes.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc}
spec: {parentRefs: [{name: gw}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: tls, namespace: edge}
spec:
  parentRefs: [{name: gw}]
  hostnames: [example.com]
  rules: [{backendRefs: [{name: web, port: 443}]}]
`})
	res, warnings, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Message)
	}
	if len(got) != 0 {
		t.Errorf("warnings = %q, want none", got)
	}
	if len(res.GRPCRoutes) != 1 || len(res.TLSRoutes) != 1 {
		t.Errorf("loaded %d GRPCRoutes and %d TLSRoutes, want one each", len(res.GRPCRoutes), len(res.TLSRoutes))
	}
}

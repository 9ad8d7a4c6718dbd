package devcluster

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestDecodeManifests(t *testing.T) {
	objs, err := DecodeManifests([]byte(`
apiVersion: v1
kind: Namespace
metadata:
  name: a
---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: a}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Namespace" || objs[1].GetNamespace() != "a" {
		t.Fatalf("decoded %d objects: %v", len(objs), objs)
	}
	if _, err := DecodeManifests([]byte("metadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("object without kind: error %v, want one naming document 1", err)
	}
	if _, err := DecodeManifests([]byte("a: [1,\n")); err == nil {
		t.Error("broken YAML accepted")
	}
}

// FuzzDecodeManifests: manifests come from users; decoding must fail with an error, never
// panic, and every object returned must name its kind.
func FuzzDecodeManifests(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeManifests(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetAPIVersion() == "" {
				t.Fatalf("object without kind or apiVersion: %v", o.Object)
			}
		}
	})
}

// The CRDs come from the module the main go.mod pins, so this also checks that pin.
func TestLoadGatewayAPIManifests(t *testing.T) {
	wd, _ := os.Getwd()
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := GatewayAPIDir(context.Background(), root)
	if err != nil {
		t.Skipf("gateway api module not available: %v", err)
	}
	objs, err := LoadGatewayAPIManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			names[o.GetName()] = true
		}
	}
	for _, want := range []string{"gatewayclasses.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io", "tlsroutes.gateway.networking.k8s.io", "backendtlspolicies.gateway.networking.k8s.io"} {
		if !names[want] {
			t.Errorf("experimental channel lacks CRD %s (have %v)", want, names)
		}
	}
}

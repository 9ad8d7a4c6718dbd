package devcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// GatewayAPIDir finds the experimental-channel CRD folder of the sigs.k8s.io/gateway-api
// module the main module requires, so the CRDs always match the Go types.
func GatewayAPIDir(ctx context.Context, repoRoot string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate sigs.k8s.io/gateway-api module: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("locate sigs.k8s.io/gateway-api module: not downloaded (run go mod download sigs.k8s.io/gateway-api)")
	}
	return filepath.Join(dir, "config", "crd", "experimental"), nil
}

// LoadGatewayAPIManifests reads every object of the CRD folder (CRDs and the
// ValidatingAdmissionPolicy that guards upgrades), in file-name order.
func LoadGatewayAPIManifests(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		docs, err := DecodeManifests(data)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", f, err)
		}
		objs = append(objs, docs...)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no manifests in %s", dir)
	}
	return objs, nil
}

func installGatewayAPI(ctx context.Context, cfg *rest.Config, repoRoot string, timeout time.Duration) error {
	dir, err := GatewayAPIDir(ctx, repoRoot)
	if err != nil {
		return err
	}
	objs, err := LoadGatewayAPIManifests(dir)
	if err != nil {
		return err
	}
	a, err := NewApplier(cfg)
	if err != nil {
		return err
	}
	if err := a.Apply(ctx, objs); err != nil {
		return fmt.Errorf("install gateway api: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	for _, obj := range objs {
		if obj.GetKind() != "CustomResourceDefinition" {
			continue
		}
		name := obj.GetName()
		err := poll(ctx, "wait for crd "+name, nil, timeout, func(ctx context.Context) (bool, error) {
			crd, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return crdEstablished(crd), fmt.Errorf("not established")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func crdEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

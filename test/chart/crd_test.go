package chart_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayParametersCRD reads the chart's CRD, decodes it strictly, applies
// the API server's defaults and converts it to the internal type the API
// server validates.
func gatewayParametersCRD(t *testing.T) (*apiextensionsv1.CustomResourceDefinition, *apiextensions.CustomResourceDefinition) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "crds", "rauta.io_gatewayparameters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := strictCodec().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decode CRD: %v", err)
	}
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		t.Fatalf("crds/ holds a %T", obj)
	}
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	s.Default(crd)
	var internal apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, &internal, nil); err != nil {
		t.Fatal(err)
	}
	return crd, &internal
}

// TestCRD: the API server would accept the CRD (its validation includes
// the structural-schema rules) and it has the names the interface fixes.
func TestCRD(t *testing.T) {
	crd, internal := gatewayParametersCRD(t)
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
		t.Fatalf("the API server would refuse the CRD:\n%v", errs.ToAggregate())
	}
	n := crd.Spec.Names
	if crd.Name != "gatewayparameters.rauta.io" || crd.Spec.Group != "rauta.io" || n.Kind != "GatewayParameters" || n.Plural != "gatewayparameters" ||
		crd.Spec.Scope != apiextensionsv1.NamespaceScoped || len(n.ShortNames) != 1 || n.ShortNames[0] != "gwp" {
		t.Errorf("names %+v scope %s, want namespaced rauta.io GatewayParameters (gatewayparameters, gwp)", n, crd.Spec.Scope)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" || !crd.Spec.Versions[0].Served || !crd.Spec.Versions[0].Storage {
		t.Errorf("versions %+v, want v1alpha1 served and stored", crd.Spec.Versions)
	}
	// Every property says what it is for.
	var undocumented []string
	var walk func(path string, p apiextensionsv1.JSONSchemaProps)
	walk = func(path string, p apiextensionsv1.JSONSchemaProps) {
		for name, sub := range p.Properties {
			if sub.Description == "" && name != "metadata" {
				undocumented = append(undocumented, path+"."+name)
			}
			walk(path+"."+name, sub)
		}
	}
	walk("", *crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
	if len(undocumented) > 0 {
		t.Errorf("properties without a description: %v", undocumented)
	}
}

// validateParameters checks a GatewayParameters object as the API server
// would: unknown fields (pruning) and the schema's value rules.
func validateParameters(t *testing.T, obj map[string]any) field.ErrorList {
	t.Helper()
	_, internal := gatewayParametersCRD(t)
	props := internal.Spec.Validation
	if props == nil {
		props = internal.Spec.Versions[0].Schema
	}
	ss, err := structuralschema.NewStructural(props.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("structural schema: %v", err)
	}
	var errs field.ErrorList
	copied := runtime.DeepCopyJSON(obj)
	for _, path := range pruning.PruneWithOptions(copied, ss, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		errs = append(errs, field.Invalid(field.NewPath(path), nil, "unknown field"))
	}
	validator, _, err := validation.NewSchemaValidator(props.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("schema validator: %v", err)
	}
	return append(errs, validation.ValidateCustomResource(nil, obj, validator)...)
}

// TestGatewayParameters: the rendered defaults are valid against the CRD,
// carry the dataPlane values, and the GatewayClass's parametersRef names
// them; invalid objects are refused (so the check can fail).
func TestGatewayParameters(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": nil, "every optional part": allOptional()} {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, vals)
			gwp := find[*unstructured.Unstructured](t, r, "rauta-default")
			if gwp.GetNamespace() != releaseNamespace || gwp.GetAPIVersion() != "rauta.io/v1alpha1" {
				t.Errorf("GatewayParameters %s in %s, want rauta.io/v1alpha1 in %s", gwp.GetAPIVersion(), gwp.GetNamespace(), releaseNamespace)
			}
			if errs := validateParameters(t, gwp.Object); len(errs) > 0 {
				t.Errorf("rendered GatewayParameters invalid: %v", errs.ToAggregate())
			}
			gc := find[*gatewayv1.GatewayClass](t, r, "rauta")
			ref := gc.Spec.ParametersRef
			if gc.Spec.ControllerName != "rauta.io/gateway-controller" {
				t.Errorf("controllerName %s", gc.Spec.ControllerName)
			}
			if ref == nil || ref.Group != "rauta.io" || ref.Kind != "GatewayParameters" || ref.Name != gwp.GetName() || ref.Namespace == nil || string(*ref.Namespace) != gwp.GetNamespace() {
				t.Errorf("parametersRef %+v does not name GatewayParameters %s/%s", ref, gwp.GetNamespace(), gwp.GetName())
			}
			spec, _ := gwp.Object["spec"].(map[string]any)
			want := map[string]any{"replicas": int64(2), "service.type": "LoadBalancer", "drain.drainPeriod": "5s", "drain.shutdownTimeout": "25s",
				"pod.resources.requests.cpu": "100m", "pod.resources.requests.memory": "64Mi", "pod.resources.limits.memory": "256Mi", "logLevel": "info"}
			if vals != nil {
				want["service.type"] = "NodePort"
				want["service.externalTrafficPolicy"] = "Local"
				want["service.loadBalancerClass"] = "example.com/lb"
				want["image"] = "example.com/rauta:custom"
				want["pod.nodeSelector.kubernetes\\.io/os"] = "linux"
				want["pod.terminationGracePeriodSeconds"] = int64(50)
			}
			for path, v := range want {
				got, found, err := unstructured.NestedFieldNoCopy(spec, splitPath(path)...)
				if err != nil || !found || got != v {
					t.Errorf("spec.%s = %v (found %v), want %v", path, got, found, v)
				}
			}
		})
	}

	t.Run("invalid objects refused", func(t *testing.T) {
		for _, tc := range []struct {
			spec  map[string]any
			field string // the path the error must name
		}{
			{map[string]any{"replicas": int64(-1)}, "spec.replicas"},
			{map[string]any{"logLevel": "loud"}, "spec.logLevel"},
			{map[string]any{"service": map[string]any{"type": "Ingress"}}, "spec.service.type"},
			{map[string]any{"drain": map[string]any{"drainPeriod": "5 seconds"}}, "spec.drain.drainPeriod"},
			{map[string]any{"pod": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "lots"}}}}, "spec.pod.resources.limits.memory"},
			{map[string]any{"replica": int64(2)}, "spec.replica"},
			{map[string]any{"pod": map[string]any{"annotations": map[string]any{"a": int64(1)}}}, "spec.pod.annotations.a"},
		} {
			obj := map[string]any{"apiVersion": "rauta.io/v1alpha1", "kind": "GatewayParameters", "metadata": map[string]any{"name": "x", "namespace": "y"}, "spec": tc.spec}
			errs := validateParameters(t, obj)
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Field, tc.field) {
				t.Errorf("%v: errors %v, want one naming %s", tc.spec, errs, tc.field)
			}
		}
		valid := map[string]any{"apiVersion": "rauta.io/v1alpha1", "kind": "GatewayParameters", "metadata": map[string]any{"name": "x"},
			"spec": map[string]any{"drain": map[string]any{"drainPeriod": "1m30s", "shutdownTimeout": "0"}, "pod": map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": int64(1)}}}}}
		if errs := validateParameters(t, valid); len(errs) > 0 {
			t.Errorf("valid object refused: %v", errs)
		}
	})
}

// splitPath splits a.b.c with "\." escaping a dot inside a key.
func splitPath(p string) []string {
	parts := strings.Split(strings.ReplaceAll(p, `\.`, "\x00"), ".")
	for i := range parts {
		parts[i] = strings.ReplaceAll(parts[i], "\x00", ".")
	}
	return parts
}

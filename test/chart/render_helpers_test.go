// Package chart_test checks the Helm chart in charts/rauta with helm's own Go
// module: lint, render with default and with every optional part enabled,
// decode every rendered object strictly with the Kubernetes types, and
// assert what the chart promises (Pod Security levels, controller flags,
// least-privilege RBAC, the GatewayClass's parameters, the values schema,
// the CRD's structural schema). See docs/chart.md.
package chart_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

const (
	releaseName      = "rauta"
	releaseNamespace = "rauta-system"
)

// chartDir is charts/rauta, found from this file so the test runs from any
// working directory.
func chartDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "rauta")
}

// kubeVersion is the Kubernetes version the chart is rendered for: the one
// the project builds and tests against. (Inside a test binary helm assumes
// v1.20, below the chart's kubeVersion.)
func kubeVersion(t *testing.T) *common.KubeVersion {
	t.Helper()
	v, err := common.ParseKubeVersion("v1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// rendered is one helm template run: the objects in manifest order, and NOTES.
type rendered struct {
	objects []runtime.Object
	notes   string
}

// renderChart renders the chart as `helm template rauta charts/rauta -n
// rauta-system` does (client-only dry run), with vals as --values.
func renderChart(t *testing.T, vals map[string]any) (rendered, error) {
	t.Helper()
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.Replace = true
	install.KubeVersion = kubeVersion(t)
	rel, err := install.Run(loadChart(t), vals)
	if err != nil {
		return rendered{}, err
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		t.Fatalf("release is %T, want *v1.Release", rel)
	}
	if len(r.Hooks) != 0 {
		t.Errorf("chart renders %d hooks; it has none by design", len(r.Hooks))
	}
	objs, err := decodeAll(r.Manifest)
	if err != nil {
		t.Fatalf("decode rendered manifest: %v\n%s", err, r.Manifest)
	}
	return rendered{objects: objs, notes: r.Info.Notes}, nil
}

func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	r, err := renderChart(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// strictCodec decodes with the Kubernetes, apiextensions and Gateway API
// types and fails on unknown or duplicate fields.
func strictCodec() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

// typeless are the kinds without Go types here: decoded as unstructured and
// checked field by field (GatewayParameters against the CRD's schema).
var typeless = map[schema.GroupKind]bool{
	{Group: "rauta.io", Kind: "GatewayParameters"}:           true,
	{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}: true,
	{Group: "monitoring.coreos.com", Kind: "PodMonitor"}:     true,
	{Group: "monitoring.coreos.com", Kind: "PrometheusRule"}: true,
}

func decodeAll(manifest string) ([]runtime.Object, error) {
	codec := strictCodec()
	var objs []runtime.Object
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Unstructured's JSON decoding keeps integers as int64, as the API
		// server's does.
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(js); err != nil {
			errs = append(errs, err)
			continue
		}
		if typeless[u.GroupVersionKind().GroupKind()] {
			objs = append(objs, &u)
			continue
		}
		obj, _, err := codec.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err))
			continue
		}
		objs = append(objs, obj)
	}
	return objs, errors.Join(errs...)
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// key names an object as "Kind namespace/name" (or "Kind name").
func key(obj runtime.Object) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	m := unstructured.Unstructured{Object: u}
	kind := m.GetKind()
	if kind == "" {
		kind = strings.TrimPrefix(fmt.Sprintf("%T", obj), "*")
		if i := strings.LastIndex(kind, "."); i >= 0 {
			kind = kind[i+1:]
		}
	}
	if m.GetNamespace() != "" {
		return kind + " " + m.GetNamespace() + "/" + m.GetName()
	}
	return kind + " " + m.GetName()
}

// find returns the one object of type T named name; it fails the test if
// there is none.
func find[T runtime.Object](t *testing.T, r rendered, name string) T {
	t.Helper()
	for _, o := range r.objects {
		if typed, ok := o.(T); ok && objectName(o) == name {
			return typed
		}
	}
	var zero T
	t.Fatalf("no %T named %q among %v", zero, name, r.keys())
	return zero
}

func all[T runtime.Object](r rendered) []T {
	var out []T
	for _, o := range r.objects {
		if typed, ok := o.(T); ok {
			out = append(out, typed)
		}
	}
	return out
}

func objectName(o runtime.Object) string {
	if m, ok := o.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

func (r rendered) keys() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, key(o))
	}
	return out
}

// allOptional enables every optional part of the chart except node mode,
// which replaces the controller Deployment.
func allOptional() map[string]any {
	return map[string]any{
		"controller": map[string]any{
			"replicas":                  2,
			"gatewayClassName":          "rauta",
			"extraArgs":                 []any{"-hold-off=20ms"},
			"extraEnv":                  []any{map[string]any{"name": "GOMAXPROCS", "value": "2"}},
			"priorityClassName":         "system-cluster-critical",
			"topologySpreadConstraints": []any{map[string]any{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/component": "controller"}}}},
			"nodeSelector":              map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":               []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "gateway", "effect": "NoSchedule"}},
			"podAnnotations":            map[string]any{"example.com/team": "edge"},
			"podLabels":                 map[string]any{"team": "edge"},
		},
		"dataPlane": map[string]any{
			"image":                         "example.com/rauta:custom",
			"terminationGracePeriodSeconds": 50,
			"podAnnotations":                map[string]any{"example.com/team": "edge"},
			"nodeSelector":                  map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":                   []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
			"service": map[string]any{
				"type": "NodePort", "externalTrafficPolicy": "Local", "loadBalancerClass": "example.com/lb",
				"annotations": map[string]any{"example.com/lb": "internal"}, "labels": map[string]any{"expose": "yes"},
			},
		},
		"rbac":           map[string]any{"secretNamespaces": []any{"team-a", "team-b"}},
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}},
		"podMonitor":     map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}},
		"dashboards":     map[string]any{"enabled": true, "namespace": "monitoring"},
		"observer":       map[string]any{"enabled": true, "otlpEndpoint": "http://otel.monitoring:4318", "extraArgs": []any{"-json-exchanges"}},
	}
}

// nodeModeValues enables node mode (and the observer beside it, joining
// node mode's timing records).
func nodeModeValues(runAsRoot bool) map[string]any {
	return map[string]any{
		"nodeMode":   map[string]any{"enabled": true, "runAsRoot": runAsRoot, "portOffset": portOffset(runAsRoot)},
		"observer":   map[string]any{"enabled": true, "gatewayJoin": map[string]any{"enabled": true}},
		"podMonitor": map[string]any{"enabled": true},
	}
}

func portOffset(runAsRoot bool) int {
	if runAsRoot {
		return 0
	}
	return 8000
}

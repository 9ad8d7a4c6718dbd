package chart_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestValuesSchema: values.schema.json refuses bad values before anything
// renders, naming the value.
func TestValuesSchema(t *testing.T) {
	for _, tc := range []struct {
		vals map[string]any
		want string // in the error
	}{
		{map[string]any{"controller": map[string]any{"replicas": "x"}}, "replicas"},
		{map[string]any{"controller": map[string]any{"replicas": 0}}, "replicas"},
		{map[string]any{"controler": map[string]any{"replicas": 2}}, "controler"},
		{map[string]any{"controller": map[string]any{"provisioner": "docker"}}, "provisioner"},
		{map[string]any{"dataPlane": map[string]any{"service": map[string]any{"type": "Ingress"}}}, "type"},
		{map[string]any{"dataPlane": map[string]any{"drain": map[string]any{"drainPeriod": "soon"}}}, "drainPeriod"},
		{map[string]any{"dataPlane": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "lots"}}}}, "memory"},
		{map[string]any{"rbac": map[string]any{"secretNamespaces": []any{"Team_A"}}}, "secretNamespaces"},
		{map[string]any{"observer": map[string]any{"mode": "bpf"}}, "mode"},
		{map[string]any{"observer": map[string]any{"capabilities": []any{"SYS_PTRACE"}}}, "capabilities"},
		{map[string]any{"nodeMode": map[string]any{"portOffset": -1}}, "portOffset"},
		{map[string]any{"image": map[string]any{"digest": "latest"}}, "digest"},
	} {
		_, err := renderChart(t, tc.vals)
		if err == nil {
			t.Errorf("%v: accepted", tc.vals)
			continue
		}
		if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %q does not name %s as a schema violation", tc.vals, err, tc.want)
		}
	}
}

// TestImage: tag defaults to appVersion; a digest pins the image everywhere
// the image is used, the data plane's included.
func TestImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	r := mustRender(t, concatVals(allOptional(), map[string]any{"image": map[string]any{"digest": digest}, "dataPlane": map[string]any{}}))
	want := "ghcr.io/false-systems/rauta@" + digest
	for name, tmpl := range podTemplates(r) {
		if img := tmpl.Spec.Containers[0].Image; img != want {
			t.Errorf("%s: image %s, want %s", name, img, want)
		}
	}
	c := controllerDeployment(t, r, "rauta-controller").Spec.Template.Spec.Containers[0]
	if e := envVar(t, c, "RAUTA_DATAPLANE_IMAGE"); e.Value != want {
		t.Errorf("RAUTA_DATAPLANE_IMAGE=%s, want %s", e.Value, want)
	}
}

// TestValuesDocumented: every value in values.yaml is described in
// docs/chart.md, so the reference cannot fall behind the chart.
func TestValuesDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(chartDir(t), "..", "..", "docs", "chart.md"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, path := range leafPaths("", vals) {
		if !strings.Contains(string(doc), "`"+path+"`") {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/chart.md does not describe %v", missing)
	}
}

// leafPaths lists a.b.c for every value that is not a non-empty map
// (maps and lists the user fills in are leaves).
func leafPaths(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !isUserMap(p) {
			out = append(out, leafPaths(p, sub)...)
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// isUserMap: resources are documented as one value.
func isUserMap(path string) bool {
	return strings.HasSuffix(path, ".resources")
}

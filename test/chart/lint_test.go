package chart_test

import (
	"testing"

	"helm.sh/helm/v4/pkg/action"
)

// TestLint runs `helm lint --strict` (no errors, no warnings) with the
// default values and with every optional part and node mode enabled.
func TestLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"default":             nil,
		"every optional part": allOptional(),
		"node mode as root":   nodeModeValues(true),
		"node mode as 65532":  nodeModeValues(false),
	} {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = releaseNamespace
			lint.KubeVersion = kubeVersion(t)
			res := lint.Run([]string{chartDir(t)}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			if action.HasWarningsOrErrors(res) {
				t.Errorf("lint found warnings or errors: %v", res.Errors)
			}
		})
	}
}

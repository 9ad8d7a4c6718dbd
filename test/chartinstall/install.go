// Package chartinstall installs RAUTA's Helm chart into a cluster the way
// `helm install` does, with helm's own install action, for tests that run
// RAUTA as users deploy it.
package chartinstall

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Configuration is helm's action configuration for the cluster behind
// kubeconfig, keeping releases of namespace in Secrets as helm does by
// default.
func Configuration(kubeconfig, namespace string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	return cfg, nil
}

// ChartDir is charts/rauta of this checkout.
func ChartDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "rauta")
}

// Install installs the chart as release "rauta" in namespace (created if
// missing), as `helm install rauta charts/rauta -n NS --create-namespace
// --set ...` does. It does not wait for readiness: callers wait for what
// they need and can say what is missing.
func Install(ctx context.Context, kubeconfig, namespace string, values map[string]any) error {
	cfg, err := Configuration(kubeconfig, namespace)
	if err != nil {
		return err
	}
	chrt, err := loader.Load(ChartDir())
	if err != nil {
		return fmt.Errorf("load chart: %w", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = "rauta"
	install.Namespace = namespace
	install.CreateNamespace = true
	install.WaitStrategy = kube.HookOnlyStrategy
	install.Timeout = 3 * time.Minute
	if _, err := install.RunWithContext(ctx, chrt, values); err != nil {
		return fmt.Errorf("helm install: %w", err)
	}
	return nil
}

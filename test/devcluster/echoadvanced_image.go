package devcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/false-systems/rauta/internal/image"
)

// EchoAdvancedRef is the reference name of the layout BuildEchoAdvancedImage writes.
const EchoAdvancedRef = "registry.k8s.io/gateway-api/echo-advanced:local"

// BuildEchoAdvancedImage builds test/devcluster/cmd/echo-advanced of the checkout at
// repoRoot (the stand-in for Istio's echo app, package echoadvanced) and writes an OCI
// image layout of it to dir/echo-advanced: the binary as /usr/local/bin/server (the
// Entrypoint) and /usr/local/bin/client, PATH set, so `kubectl exec POD -- client URL`
// runs as in the real image. Map it with node.EchoAdvancedImages. It returns the layout.
func BuildEchoAdvancedImage(ctx context.Context, repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "echo-advanced-bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./test/devcluster/cmd/echo-advanced")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build echo-advanced: %w\n%s", err, lastLines(string(b), 30))
	}
	defer os.Remove(bin)
	img, err := image.Build(image.Options{
		Files: []image.File{
			{Path: "/usr/local/bin/server", Source: bin},
			{Path: "/usr/local/bin/client", Source: bin},
		},
		Entrypoint: []string{"/usr/local/bin/server"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Title:      "echo-advanced (rauta devcluster stand-in)",
	})
	if err != nil {
		return "", fmt.Errorf("echo-advanced image: %w", err)
	}
	layout := filepath.Join(dir, "echo-advanced")
	if err := image.WriteLayout(layout, img, EchoAdvancedRef); err != nil {
		return "", err
	}
	return layout, nil
}

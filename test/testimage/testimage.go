// Package testimage gives tests the RAUTA OCI image users deploy: the one
// hack/test.sh built (RAUTA_TEST_IMAGE_LAYOUT and RAUTA_TEST_IMAGE_VERSION),
// or, when a test runs on its own, one built from the work tree for it.
package testimage

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/false-systems/rauta/internal/image"
)

// Image is an image layout to map the image repository to.
type Image struct {
	Repository string
	// Version is the tag to deploy (the chart's image.tag).
	Version string
	// Layout is the OCI image layout folder.
	Layout string
}

// Get returns the image, building it into a temporary folder when the
// environment names none. A named layout that cannot be read fails the
// test rather than silently testing another build.
func Get(ctx context.Context, t testing.TB) Image {
	t.Helper()
	if dir := os.Getenv("RAUTA_TEST_IMAGE_LAYOUT"); dir != "" {
		if _, err := layout.ImageIndexFromPath(dir); err != nil {
			t.Fatalf("RAUTA_TEST_IMAGE_LAYOUT=%s: %v", dir, err)
		}
		version := os.Getenv("RAUTA_TEST_IMAGE_VERSION")
		if version == "" {
			t.Fatal("RAUTA_TEST_IMAGE_LAYOUT is set without RAUTA_TEST_IMAGE_VERSION")
		}
		return Image{Repository: image.DefaultRepository, Version: version, Layout: dir}
	}
	res, err := image.BuildRepo(ctx, image.BuildOptions{
		RepoRoot: repoRoot(t), OutDir: filepath.Join(t.TempDir(), "dist"), Version: "test", Commands: image.Commands,
	})
	if err != nil {
		t.Fatalf("build the image: %v", err)
	}
	t.Logf("built %s (%s)", res.Reference, res.Digest)
	return Image{Repository: image.DefaultRepository, Version: res.Version, Layout: res.LayoutPath}
}

func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the repository from the test binary")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

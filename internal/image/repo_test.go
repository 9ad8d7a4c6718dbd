package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBinaryPaths(t *testing.T) {
	got, err := binaryPaths([]string{"./cmd/rauta", "./cmd/rauta-dataplane/"})
	if err != nil || strings.Join(got, " ") != "/rauta /rauta-dataplane" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range [][]string{{"./cmd/rauta", "./other/rauta"}, {"."}, {"/"}} {
		if _, err := binaryPaths(bad); err == nil {
			t.Errorf("binaryPaths(%q) accepted", bad)
		}
	}
}

func TestReadGitOutsideCheckout(t *testing.T) {
	info := readGit(context.Background(), t.TempDir())
	if info.version != "dev" || info.revision != "" || !info.created.Equal(time.Unix(0, 0)) {
		t.Errorf("outside git: %+v, want dev, no revision, the epoch", info)
	}
}

func TestBuildRepoRefusesBadVersion(t *testing.T) {
	_, err := BuildRepo(context.Background(), BuildOptions{
		RepoRoot: "../..", OutDir: t.TempDir(), Version: "v1+build", Commands: []string{"./cmd/rauta"},
	})
	if err == nil || !strings.Contains(err.Error(), "reference") {
		t.Errorf("version with '+' gave %v, want a reference error before building", err)
	}
}

// TestBuildRepoRauta builds the real image twice: it must come out the same,
// and the binary in it must report the stamped version.
func TestBuildRepoRauta(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/rauta twice; skipped with -short")
	}
	ctx := context.Background()
	opts := BuildOptions{
		RepoRoot: "../..",
		Version:  "v0.0.0-test",
		Revision: "0123456789abcdef",
		Created:  commitTime,
		Commands: []string{"./cmd/rauta"},
	}
	opts.OutDir = t.TempDir()
	res, err := BuildRepo(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reference != DefaultRepository+":v0.0.0-test" {
		t.Errorf("reference %q", res.Reference)
	}
	if filepath.Base(res.TarballPath) != "rauta-v0.0.0-test.tar" || res.LayoutPath != filepath.Join(opts.OutDir, "oci") {
		t.Errorf("paths %q %q", res.LayoutPath, res.TarballPath)
	}
	if res.Binaries["/rauta"] == 0 || res.LayerSize == 0 || res.LayerSize >= res.Binaries["/rauta"] {
		t.Errorf("sizes: binaries %v, layer %d (want a compressed layer smaller than the binary)", res.Binaries, res.LayerSize)
	}

	opts.OutDir = t.TempDir()
	again, err := BuildRepo(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Errorf("not reproducible: %s then %s", res.Digest, again.Digest)
	}

	p, err := layout.FromPath(res.LayoutPath)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != res.Digest {
		t.Fatalf("layout index %+v, %v; want one manifest %s", im, err, res.Digest)
	}
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/rauta" || cf.Config.Labels[LabelVersion] != "v0.0.0-test" {
		t.Errorf("config: entrypoint %q, labels %v", cf.Config.Entrypoint, cf.Config.Labels)
	}
	if _, err := tarball.ImageFromPath(res.TarballPath, nil); err != nil {
		t.Errorf("tarball: %v", err)
	}

	// Run the binary from the image: static, and stamped.
	_, entries := layerEntriesOf(t, img)
	bin := filepath.Join(t.TempDir(), "rauta")
	if err := os.WriteFile(bin, entries["rauta"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rauta v0.0.0-test ") {
		t.Errorf("rauta version: %q, %v", out, err)
	}
}

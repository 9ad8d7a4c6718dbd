package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteLayoutReadBack(t *testing.T) {
	img := buildFake(t)
	dir := filepath.Join(t.TempDir(), "oci")
	// Earlier content is replaced, not merged with.
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stale"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // twice: writing over a layout works
		if err := WriteLayout(dir, img, "v0.3.0"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale file survived: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".oci-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}

	// Other tools (skopeo, a node agent as another user) must read it.
	for _, f := range []string{dir, filepath.Join(dir, "index.json"), filepath.Join(dir, "oci-layout")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o755, false: 0o644}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", f, fi.Mode().Perm(), want)
		}
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if got := desc.Annotations[AnnotationRefName]; got != "v0.3.0" {
		t.Errorf("ref name %q, want v0.3.0", got)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "amd64" {
		t.Errorf("platform %+v", desc.Platform)
	}
	want, _ := img.Digest()
	if desc.Digest != want {
		t.Errorf("layout digest %s, built %s", desc.Digest, want)
	}
	back, err := p.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != User {
		t.Errorf("read back user %q", cf.Config.User)
	}
	if _, entries := layerEntriesOf(t, back); string(entries["rauta"].data) != "#fake rauta binary\n" {
		t.Errorf("read back /rauta: %q", entries["rauta"].data)
	}
}

func TestWriteLayoutEmptyRefName(t *testing.T) {
	if err := WriteLayout(filepath.Join(t.TempDir(), "oci"), buildFake(t), ""); err == nil {
		t.Error("empty ref name accepted")
	}
}

func TestWriteTarballReadBack(t *testing.T) {
	img := buildFake(t)
	path := filepath.Join(t.TempDir(), "rauta-v0.3.0.tar")
	const ref = "ghcr.io/false-systems/rauta:v0.3.0"
	if err := WriteTarball(path, img, ref); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	// The tarball keeps config and layer blobs; compare those.
	wantCfg, _ := img.ConfigName()
	if got, _ := back.ConfigName(); got != wantCfg {
		t.Errorf("config digest %s, want %s", got, wantCfg)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := back.Layers()
	if err != nil || len(gotLayers) != 1 {
		t.Fatalf("layers %d, %v", len(gotLayers), err)
	}
	wd, _ := wantLayers[0].Digest()
	if gd, _ := gotLayers[0].Digest(); gd != wd {
		t.Errorf("layer digest %s, want %s", gd, wd)
	}

	// docker load reads the tag from manifest.json's RepoTags.
	m := readManifestJSON(t, path)
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != ref {
		t.Errorf("manifest.json %+v, want RepoTags [%s]", m, ref)
	}
}

func readManifestJSON(t *testing.T, path string) tarball.Manifest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in %s: %v", path, err)
		}
		if h.Name == "manifest.json" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			var m tarball.Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
}

func TestWriteTarballBadReference(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tar")
	if err := WriteTarball(path, buildFake(t), "Bad Ref!"); err == nil {
		t.Error("bad reference accepted")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left for a refused write: %v", err)
	}
}

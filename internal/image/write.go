package image

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteLayout writes img as an OCI image layout in dir (oci-layout,
// index.json, blobs/sha256/...), its index entry annotated with
// org.opencontainers.image.ref.name = refName (skopeo's oci:DIR:refName).
// Whatever dir held before is replaced; the new layout is written next to it
// and renamed into place, so a reader never sees half of one.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if refName == "" {
		return fmt.Errorf("oci layout %s: empty ref name", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+"-*")
	if err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	defer os.RemoveAll(tmp)

	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("oci layout %s: image config: %w", dir, err)
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{AnnotationRefName: refName}),
		layout.WithPlatform(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}),
	)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if err := readableByAll(tmp); err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("oci layout: remove old: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	return nil
}

// WriteTarball writes img to path in the format `docker load` and
// `podman load` read (manifest.json plus blobs), tagged ref
// (e.g. ghcr.io/false-systems/rauta:v0.3.0); `crane push PATH REF` and
// skopeo's docker-archive: push it. The file is replaced atomically.
func WriteTarball(path string, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image tarball: reference %q: %w", ref, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return fmt.Errorf("image tarball %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("image tarball: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	return nil
}

// readableByAll makes the layout's folders 0755 (MkdirTemp made the top one
// 0700) and its files 0644 (the layout package writes them executable).
func readableByAll(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

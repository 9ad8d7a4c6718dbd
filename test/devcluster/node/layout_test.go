package node

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestEntry is one entry of a layer of a test image. It is exported for the cluster
// test in package node_test, which builds its own image the same way.
type TestEntry struct {
	Name     string
	Body     []byte
	Mode     int64
	UID, GID int
	Type     byte   // tar.TypeReg when zero
	Link     string // symlink or hard link target
}

// BuildTestLayout writes an OCI image layout to dir holding one image with the given
// layers (the first is the lowest) and config, and returns the image digest.
func BuildTestLayout(t testing.TB, dir string, cfg v1.Config, layers ...[]TestEntry) string {
	t.Helper()
	img := empty.Image
	for _, entries := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			typ := e.Type
			if typ == 0 {
				typ = tar.TypeReg
			}
			hdr := &tar.Header{Name: e.Name, Typeflag: typ, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Linkname: e.Link}
			if typ == tar.TypeReg {
				hdr.Size = int64(len(e.Body))
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			if typ == tar.TypeReg {
				if _, err := tw.Write(e.Body); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	img, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

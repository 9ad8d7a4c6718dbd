package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var commitTime = time.Date(2026, 11, 30, 12, 34, 56, 0, time.UTC)

// fakeOptions writes two small "binaries" into dir and returns options
// for an image holding them.
func fakeOptions(t *testing.T, dir string) Options {
	t.Helper()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Options{
		Files: []File{
			{Path: "/rauta", Source: write("rauta", "#fake rauta binary\n")},
			{Path: "/usr/local/bin/helper", Source: write("helper", "helper"), Mode: 0o555},
			{Path: "/etc/rauta/readme.txt", Source: write("readme", "hello"), Mode: 0o644},
		},
		Entrypoint: []string{"/rauta"},
		Created:    commitTime,
		Version:    "v0.3.0-4-gabc1234",
		Revision:   "abc1234def",
		Arch:       "amd64",
	}
}

func buildFake(t *testing.T) v1.Image {
	t.Helper()
	img, err := Build(fakeOptions(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBuildConfig(t *testing.T) {
	img := buildFake(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || c.WorkingDir != "/" {
		t.Errorf("user %q, workdir %q; want 65532:65532 and /", c.User, c.WorkingDir)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/rauta" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e, "PATH=") {
			t.Errorf("env sets PATH: %q", e)
		}
	}
	want := map[string]string{
		LabelVersion:  "v0.3.0-4-gabc1234",
		LabelRevision: "abc1234def",
		LabelSource:   DefaultSource,
		LabelLicenses: "Apache-2.0",
		LabelTitle:    "rauta",
		LabelCreated:  "2026-11-30T12:34:56Z",
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if !cf.Created.Equal(commitTime) {
		t.Errorf("created %v, want the commit time %v", cf.Created, commitTime)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 {
		t.Errorf("want one layer and one history entry: %d diff IDs, %d history", len(cf.RootFS.DiffIDs), len(cf.History))
	}

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s, config %s; want OCI types", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers %+v; want one %s", m.Layers, types.OCILayer)
	}
}

func TestBuildLabelsOverride(t *testing.T) {
	opts := fakeOptions(t, t.TempDir())
	opts.Labels = map[string]string{LabelTitle: "rauta-dataplane", "x": "y"}
	opts.Revision = ""
	img, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	l := cf.Config.Labels
	if l[LabelTitle] != "rauta-dataplane" || l["x"] != "y" {
		t.Errorf("labels %v", l)
	}
	if _, ok := l[LabelRevision]; ok {
		t.Errorf("empty revision still labelled: %v", l)
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func layerEntriesOf(t *testing.T, img v1.Image) ([]string, map[string]tarEntry) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	byName := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		byName[h.Name] = tarEntry{h, data}
	}
	return names, byName
}

func TestBuildLayerFiles(t *testing.T) {
	names, entries := layerEntriesOf(t, buildFake(t))
	want := []string{
		"etc/", "etc/group", "etc/passwd", "etc/rauta/", "etc/rauta/readme.txt",
		"home/", "home/nonroot/", "rauta", "tmp/",
		"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/helper",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("layer entries\n got %q\nwant %q", names, want)
	}
	type attrs struct {
		typ      byte
		mode     int64
		uid, gid int
	}
	wantAttrs := map[string]attrs{
		"rauta":                {tar.TypeReg, 0o755, 0, 0}, // Mode 0 means executable
		"usr/local/bin/helper": {tar.TypeReg, 0o555, 0, 0},
		"etc/rauta/readme.txt": {tar.TypeReg, 0o644, 0, 0},
		"etc/passwd":           {tar.TypeReg, 0o644, 0, 0},
		"etc/":                 {tar.TypeDir, 0o755, 0, 0},
		"home/nonroot/":        {tar.TypeDir, 0o700, 65532, 65532},
		"tmp/":                 {tar.TypeDir, 0o1777, 0, 0},
	}
	for name, w := range wantAttrs {
		h := entries[name].hdr
		got := attrs{h.Typeflag, h.Mode, h.Uid, h.Gid}
		if got != w {
			t.Errorf("%s: type/mode/uid/gid %c %o %d %d, want %c %o %d %d", name, got.typ, got.mode, got.uid, got.gid, w.typ, w.mode, w.uid, w.gid)
		}
	}
	for _, name := range names {
		if mt := entries[name].hdr.ModTime; !mt.Equal(commitTime) {
			t.Errorf("%s: mtime %v, want the commit time", name, mt)
		}
	}
	if got := string(entries["rauta"].data); got != "#fake rauta binary\n" {
		t.Errorf("/rauta holds %q", got)
	}
	if !bytes.Contains(entries["etc/passwd"].data, []byte("\nnonroot:x:65532:65532:")) {
		t.Errorf("/etc/passwd lacks nonroot 65532:\n%s", entries["etc/passwd"].data)
	}
	if !bytes.Contains(entries["etc/group"].data, []byte("\nnonroot:x:65532:")) {
		t.Errorf("/etc/group lacks nonroot 65532:\n%s", entries["etc/group"].data)
	}
}

func TestBuildReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	optsA, optsB := fakeOptions(t, a), fakeOptions(t, b)
	// Different disk mtimes and permissions must not leak into the image.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range optsB.Files {
		if err := os.Chtimes(f.Source, old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.Source, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// Order of Files must not matter either.
	optsB.Files[0], optsB.Files[2] = optsB.Files[2], optsB.Files[0]
	imgA, err := Build(optsA)
	if err != nil {
		t.Fatal(err)
	}
	imgB, err := Build(optsB)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := imgA.Digest()
	db, _ := imgB.Digest()
	if da != db {
		t.Errorf("same inputs, different digests: %s and %s", da, db)
	}

	// A different commit time is a different image (the date is not ignored).
	optsA.Created = commitTime.Add(time.Second)
	imgC, err := Build(optsA)
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := imgC.Digest(); dc == da {
		t.Errorf("commit time changed, digest did not: %s", dc)
	}
}

func TestBuildZeroCreatedIsEpoch(t *testing.T) {
	opts := fakeOptions(t, t.TempDir())
	opts.Created = time.Time{}
	img, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !cf.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want the Unix epoch (never now)", cf.Created)
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin")
	if err := os.WriteFile(src, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]File{
		"no files":          nil,
		"relative path":     {{Path: "rauta", Source: src}},
		"unclean path":      {{Path: "/a/../rauta", Source: src}},
		"root":              {{Path: "/", Source: src}},
		"duplicate":         {{Path: "/rauta", Source: src}, {Path: "/rauta", Source: src}},
		"reserved passwd":   {{Path: "/etc/passwd", Source: src}},
		"over a directory":  {{Path: "/etc", Source: src}},
		"file then subpath": {{Path: "/a", Source: src}, {Path: "/a/b", Source: src}},
		"subpath then file": {{Path: "/a/b", Source: src}, {Path: "/a", Source: src}},
		"missing source":    {{Path: "/rauta", Source: filepath.Join(dir, "nope")}},
		"directory source":  {{Path: "/rauta", Source: dir}},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Build(Options{Files: files}); err == nil {
				t.Errorf("Build(%v) succeeded", files)
			}
		})
	}
}

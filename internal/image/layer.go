package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user database: root owns the binaries (the nonroot user cannot change
// them), nonroot runs them. No shell exists; the shell field only says so.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnonroot:x:65532:\n"
)

// entry is one tar entry of the layer; data is nil for directories.
type entry struct {
	name string // relative, no leading slash; directories end in "/"
	mode int64
	uid  int
	data []byte
}

// buildLayer returns the layer holding files, the user database and the
// standard directories, every entry dated created.
func buildLayer(files []File, created time.Time) (v1.Layer, error) {
	entries, err := layerEntries(files)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := writeEntry(tw, e, created); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer),
		// gzip's default level: 12% smaller than the library's BestSpeed
		// for about 2 s more CPU per build; users pull it many times.
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		// Compress once: the digest, the layout and the tarball share it.
		tarball.WithCompressedCaching,
	)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return layer, nil
}

// layerEntries lists the layer's entries sorted by name (parents first),
// reading every file now.
func layerEntries(files []File) ([]entry, error) {
	byName := map[string]entry{
		"etc/":          {name: "etc/", mode: 0o755},
		"etc/passwd":    {name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		"etc/group":     {name: "etc/group", mode: 0o644, data: []byte(group)},
		"home/":         {name: "home/", mode: 0o755},
		"home/nonroot/": {name: "home/nonroot/", mode: 0o700, uid: NonrootID},
		"tmp/":          {name: "tmp/", mode: 0o1777},
	}
	for _, f := range files {
		name, err := imagePath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, taken := byName[name]; taken {
			return nil, fmt.Errorf("image path %s given twice or reserved", f.Path)
		}
		if _, isDir := byName[name+"/"]; isDir {
			return nil, fmt.Errorf("image path %s is a directory", f.Path)
		}
		data, err := readRegular(f.Source)
		if err != nil {
			return nil, err
		}
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o755
		}
		byName[name] = entry{name: name, mode: mode, data: data}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, isFile := byName[dir]; isFile {
				return nil, fmt.Errorf("image path %s is a file and a directory", "/"+dir)
			}
			if _, ok := byName[dir+"/"]; !ok {
				byName[dir+"/"] = entry{name: dir + "/", mode: 0o755}
			}
		}
	}
	entries := make([]entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// imagePath turns /usr/bin/x into usr/bin/x, refusing relative or unclean
// paths so a caller's typo cannot write outside the intended place.
func imagePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("image path %q: want an absolute, clean file path", p)
	}
	return strings.TrimPrefix(p, "/"), nil
}

func readRegular(src string) ([]byte, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("image file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("image file %s: not a regular file", src)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("image file: %w", err)
	}
	return data, nil
}

func writeEntry(tw *tar.Writer, e entry, created time.Time) error {
	h := &tar.Header{
		Name:    e.name,
		Mode:    e.mode,
		Uid:     e.uid,
		Gid:     e.uid,
		Uname:   "root",
		Gname:   "root",
		ModTime: created,
		Format:  tar.FormatPAX,
	}
	if e.uid == NonrootID {
		h.Uname, h.Gname = "nonroot", "nonroot"
	}
	if strings.HasSuffix(e.name, "/") {
		h.Typeflag = tar.TypeDir
	} else {
		h.Typeflag = tar.TypeReg
		h.Size = int64(len(e.data))
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if e.data != nil {
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return nil
}

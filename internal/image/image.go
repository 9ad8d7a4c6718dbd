// Package image builds RAUTA's container image without Docker: one layer
// with the static binaries and a nonroot user, an OCI manifest and config
// (go-containerregistry does the image format), written as an OCI image
// layout folder and as a tarball that docker/podman load.
//
// Every date in the image is the commit time, so the same commit and Go
// toolchain give the same digest.
package image

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user and group the image runs as. 65532 is distroless's "nonroot",
// which Kubernetes policies and scanners recognise.
const (
	NonrootID = 65532
	User      = "65532:65532"
)

// OCI annotation and label keys.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelLicenses = "org.opencontainers.image.licenses"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
	// AnnotationRefName names an image in an OCI layout's index.json.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// DefaultSource is the org.opencontainers.image.source label when
// Options.Source is empty.
const DefaultSource = "https://github.com/false-systems/rauta"

// File is one regular file copied into the image.
type File struct {
	Path   string      // absolute path in the image, e.g. /rauta
	Source string      // file on disk
	Mode   fs.FileMode // permission bits; 0 means 0o755 (an executable)
}

// Options describe the image Build makes.
type Options struct {
	Files      []File
	Entrypoint []string // e.g. ["/rauta"]
	Cmd        []string // default arguments after the entrypoint; may be nil
	Env        []string // KEY=VALUE; nil is fine (no shell, no PATH needed)
	// Created is the commit time: the config's created date and every
	// file's mtime. Zero means the Unix epoch, never "now".
	Created  time.Time
	Version  string            // org.opencontainers.image.version
	Revision string            // the commit, org.opencontainers.image.revision
	Source   string            // repository URL; empty means DefaultSource
	Title    string            // org.opencontainers.image.title; empty means "rauta"
	Arch     string            // GOARCH of the binaries; empty means the host's
	Labels   map[string]string // more labels; they override the ones above
}

// Build returns the image: one OCI layer with opts.Files, /etc/passwd and
// /etc/group naming the nonroot user, /home/nonroot and /tmp; no shell.
// The files are read now, so the sources may go away afterwards.
func Build(opts Options) (v1.Image, error) {
	if len(opts.Files) == 0 {
		return nil, errors.New("no files to put in the image")
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	arch := opts.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}

	layer, err := buildLayer(opts.Files, created)
	if err != nil {
		return nil, err
	}

	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: opts.Entrypoint,
			Cmd:        opts.Cmd,
			Env:        opts.Env,
			User:       User,
			WorkingDir: "/",
			Labels:     labels(opts, created),
			StopSignal: "SIGTERM",
		},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "rauta internal/image: static binaries, nonroot user",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	// Compute digests now so a broken layer fails here, not in a writer.
	if _, err := img.Digest(); err != nil {
		return nil, fmt.Errorf("image digest: %w", err)
	}
	return img, nil
}

func labels(opts Options, created time.Time) map[string]string {
	l := map[string]string{
		LabelLicenses: "Apache-2.0",
		LabelSource:   opts.Source,
		LabelTitle:    opts.Title,
		LabelVersion:  opts.Version,
		LabelCreated:  created.Format(time.RFC3339),
	}
	if l[LabelSource] == "" {
		l[LabelSource] = DefaultSource
	}
	if l[LabelTitle] == "" {
		l[LabelTitle] = "rauta"
	}
	if opts.Revision != "" {
		l[LabelRevision] = opts.Revision
	}
	if opts.Version == "" {
		delete(l, LabelVersion)
	}
	for k, v := range opts.Labels {
		l[k] = v
	}
	return l
}

package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultRepository is where RAUTA's releases are published.
const DefaultRepository = "ghcr.io/false-systems/rauta"

// Commands are the main packages RAUTA's image holds: the entrypoint
// /rauta and the data plane's /rauta-dataplane, which provisioned pods run.
var Commands = []string{"./cmd/rauta", "./cmd/rauta-dataplane"}

// BuildOptions say what BuildRepo builds. Only Commands is required.
type BuildOptions struct {
	RepoRoot string // the module's root; "" means the working directory
	OutDir   string // gets oci/ and NAME-VERSION.tar; "" means RepoRoot/dist
	// Version is the image tag and main.version; "" means what
	// hack/version.sh prints (git describe, or "dev").
	Version string
	// Commands are main packages relative to RepoRoot, e.g. ./cmd/rauta.
	// Each binary lands at /<base name of the folder>; the first is the
	// entrypoint.
	Commands   []string
	Repository string // e.g. ghcr.io/false-systems/rauta; "" means DefaultRepository
	// Revision and Created default to the checkout's HEAD commit and its
	// commit time (set Created from SOURCE_DATE_EPOCH to override).
	Revision string
	Created  time.Time
	Arch     string // GOARCH to build for; "" means the host's
}

// Result is what BuildRepo wrote.
type Result struct {
	Reference   string           // Repository:Version, e.g. ghcr.io/false-systems/rauta:v0.3.0
	Version     string           // the tag; also the layout's ref name
	Digest      string           // the manifest digest, sha256:...
	LayoutPath  string           // OCI image layout folder, OutDir/oci
	TarballPath string           // docker/podman-loadable tarball
	LayerSize   int64            // compressed bytes of the image's one layer
	Binaries    map[string]int64 // image path -> bytes, e.g. /rauta
}

// BuildRepo compiles Commands as static linux binaries (CGO_ENABLED=0,
// -trimpath, no build ID, version stamped), builds the image from them and
// writes it as an OCI layout and a tarball. It needs the go command and the
// module cache, not Docker or a registry.
func BuildRepo(ctx context.Context, opts BuildOptions) (Result, error) {
	if len(opts.Commands) == 0 {
		return Result{}, errors.New("build image: no commands")
	}
	root := opts.RepoRoot
	if root == "" {
		root = "."
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	outDir := opts.OutDir
	if outDir == "" {
		outDir = filepath.Join(root, "dist")
	}
	repo := opts.Repository
	if repo == "" {
		repo = DefaultRepository
	}
	arch := opts.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	info := readGit(ctx, root)
	version := opts.Version
	if version == "" {
		version = info.version
	}
	revision := opts.Revision
	if revision == "" {
		revision = info.revision
	}
	created := opts.Created
	if created.IsZero() {
		created = info.created
	}
	ref := repo + ":" + version
	if _, err := name.NewTag(ref); err != nil {
		return Result{}, fmt.Errorf("build image: reference %q: %w", ref, err)
	}
	binPaths, err := binaryPaths(opts.Commands)
	if err != nil {
		return Result{}, err
	}

	tmp, err := os.MkdirTemp("", "rauta-image-*")
	if err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := goBuild(ctx, root, tmp, arch, version, revision, opts.Commands); err != nil {
		return Result{}, err
	}

	res := Result{Reference: ref, Version: version, Binaries: map[string]int64{}}
	files := make([]File, 0, len(binPaths))
	for _, p := range binPaths {
		src := filepath.Join(tmp, path.Base(p))
		fi, err := os.Stat(src)
		if err != nil {
			return Result{}, fmt.Errorf("build image: %w", err)
		}
		res.Binaries[p] = fi.Size()
		files = append(files, File{Path: p, Source: src, Mode: 0o755})
	}
	img, err := Build(Options{
		Files:      files,
		Entrypoint: []string{binPaths[0]},
		Created:    created,
		Version:    version,
		Revision:   revision,
		Title:      path.Base(repo),
		Arch:       arch,
	})
	if err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	res.Digest = digest.String()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return Result{}, fmt.Errorf("build image: layers: %d, %w", len(layers), err)
	}
	if res.LayerSize, err = layers[0].Size(); err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("build image: %w", err)
	}
	res.LayoutPath = filepath.Join(outDir, "oci")
	if err := WriteLayout(res.LayoutPath, img, version); err != nil {
		return Result{}, err
	}
	res.TarballPath = filepath.Join(outDir, path.Base(repo)+"-"+version+".tar")
	if err := WriteTarball(res.TarballPath, img, ref); err != nil {
		return Result{}, err
	}
	return res, nil
}

// binaryPaths maps ./cmd/rauta to /rauta, refusing two commands with the
// same base name (the second would overwrite the first).
func binaryPaths(cmds []string) ([]string, error) {
	seen := map[string]string{}
	paths := make([]string, 0, len(cmds))
	for _, c := range cmds {
		base := path.Base(filepath.ToSlash(c))
		if base == "." || base == "/" || base == ".." {
			return nil, fmt.Errorf("build image: command %q has no folder name", c)
		}
		if prev, dup := seen[base]; dup {
			return nil, fmt.Errorf("build image: commands %q and %q both make /%s", prev, c, base)
		}
		seen[base] = c
		paths = append(paths, "/"+base)
	}
	return paths, nil
}

// goBuild compiles every command into outDir in one go invocation (shared
// packages compile once). The flags make the binary reproducible: no local
// paths (-trimpath), no random build ID, no cgo (static, runs on scratch).
func goBuild(ctx context.Context, root, outDir, arch, version, revision string, cmds []string) error {
	ldflags := "-s -w -buildid= -X main.version=" + version
	if revision != "" {
		ldflags += " -X main.commit=" + revision
	}
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", outDir + string(filepath.Separator)}, cmds...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", strings.Join(cmds, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

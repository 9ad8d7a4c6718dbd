package devcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of the third-party binaries. hack/devcluster-build.sh, tools/kube/go.mod and
// tools/etcd/go.mod pin the same versions.
const (
	KubeVersion       = "v1.36.3"
	EtcdVersion       = "v3.6.16"
	GatewayAPIVersion = "v1.6.3"
)

// ErrBinariesMissing reports that a binary is not in the cache and building was not allowed
// or not possible.
var ErrBinariesMissing = errors.New("devcluster binaries missing")

// Binaries holds absolute paths of the executables a cluster runs.
type Binaries struct {
	Etcd              string
	APIServer         string
	ControllerManager string
	Kubectl           string
	EchoBasic         string
}

// CacheDir is where built binaries live: $RAUTA_CACHE/bin, or ~/.cache/rauta/bin.
func CacheDir() (string, error) {
	if dir := os.Getenv("RAUTA_CACHE"); dir != "" {
		return filepath.Join(dir, "bin"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find cache folder: %w", err)
	}
	return filepath.Join(home, ".cache", "rauta", "bin"), nil
}

// BinariesIn names the binaries of the pinned versions inside dir, whether they exist or not.
func BinariesIn(dir string) Binaries {
	return Binaries{
		Etcd:              filepath.Join(dir, "etcd-"+EtcdVersion),
		APIServer:         filepath.Join(dir, "kube-apiserver-"+KubeVersion),
		ControllerManager: filepath.Join(dir, "kube-controller-manager-"+KubeVersion),
		Kubectl:           filepath.Join(dir, "kubectl-"+KubeVersion),
		EchoBasic:         filepath.Join(dir, "echo-basic-"+GatewayAPIVersion),
	}
}

// Missing lists the binaries that are not executable files.
func (b Binaries) Missing() []string {
	var missing []string
	for _, p := range []string{b.Etcd, b.APIServer, b.ControllerManager, b.Kubectl, b.EchoBasic} {
		info, err := os.Stat(p)
		if err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// EnsureBinaries returns the cached binaries, first running hack/devcluster-build.sh from
// repoRoot when some are missing and build is true. A cold build of kube-apiserver takes
// minutes; the script builds only what is missing.
func EnsureBinaries(ctx context.Context, repoRoot string, build bool) (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	bins := BinariesIn(dir)
	missing := bins.Missing()
	if len(missing) == 0 {
		return bins, nil
	}
	if !build {
		return Binaries{}, fmt.Errorf("%w: %s (run hack/devcluster-build.sh)", ErrBinariesMissing, strings.Join(missing, ", "))
	}
	script := filepath.Join(repoRoot, "hack", "devcluster-build.sh")
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("%w: %s failed: %w\n%s", ErrBinariesMissing, script, err, lastLines(out.String(), 30))
	}
	if missing := bins.Missing(); len(missing) > 0 {
		return Binaries{}, fmt.Errorf("%w after build: %s", ErrBinariesMissing, strings.Join(missing, ", "))
	}
	return bins, nil
}

// BuildRautaEcho builds cmd/rauta-echo of the repository at repoRoot into dir and returns
// its path (the conformance suite's CoreDNS stands on it, see node.CoreDNSImages).
func BuildRautaEcho(ctx context.Context, repoRoot, dir string) (string, error) {
	out := filepath.Join(dir, "rauta-echo")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/rauta-echo")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build rauta-echo: %w\n%s", err, lastLines(string(b), 30))
	}
	return out, nil
}

// FindRepoRoot walks up from dir to the folder whose go.mod declares the rauta module.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/false-systems/rauta\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod of github.com/false-systems/rauta above the working folder")
		}
		dir = parent
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

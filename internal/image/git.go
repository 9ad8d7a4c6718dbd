package image

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// gitInfo is what the image takes from the checkout it is built from.
type gitInfo struct {
	version  string    // git describe --tags --always --dirty, or "dev"
	revision string    // full commit hash, or ""
	created  time.Time // commit time, or the Unix epoch
}

// readGit describes the checkout at root the way hack/version.sh does.
// Outside a git checkout (a source tarball) it returns "dev" and the epoch
// rather than an error: an image can still be built, just not traced.
func readGit(ctx context.Context, root string) gitInfo {
	info := gitInfo{version: "dev", created: time.Unix(0, 0).UTC()}
	if v, err := git(ctx, root, "describe", "--tags", "--always", "--dirty"); err == nil && v != "" {
		info.version = v
	}
	if r, err := git(ctx, root, "rev-parse", "HEAD"); err == nil {
		info.revision = r
	}
	if s, err := git(ctx, root, "log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			info.created = time.Unix(sec, 0).UTC()
		}
	}
	return info
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

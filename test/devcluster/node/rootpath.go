package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP limit does.
const maxSymlinks = 40

// resolveIn resolves name inside a container root the way the container will see it:
// absolute symlinks start again at the root, ".." stops at the root. It returns a clean
// relative path (or ".") without symlinks in any existing component, for os.Root calls.
// os.Root alone refuses absolute symlinks (images have /var/run -> /run) and this alone
// would race with a running container swapping a folder for a symlink; together every
// write stays inside the root.
func resolveIn(r *os.Root, name string) (string, error) {
	var done []string
	todo := splitPath(name)
	links, missing := 0, false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		if missing {
			done = append(done, c)
			continue
		}
		cur := path.Join(append(done, c)...)
		fi, err := r.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			done = append(done, c)
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", name)
		}
		target, err := r.Readlink(cur)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			done = nil
		}
		todo = append(splitPath(target), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// mkdirIn creates dir and its parents inside the root, as root with mode 0755.
func mkdirIn(r *os.Root, dir string) (string, error) {
	rel, err := resolveIn(r, dir)
	if err != nil {
		return "", err
	}
	if err := r.MkdirAll(rel, 0o755); err != nil {
		return "", err
	}
	return rel, nil
}

// writeFileIn writes name inside the root through a temporary file and a rename, so a
// reader sees the old or the new content, never a mix, and a hard link to a shared image
// file is replaced instead of written through. gid >= 0 sets the file's group.
func writeFileIn(r *os.Root, name string, data []byte, mode os.FileMode, gid int) error {
	dir, err := mkdirIn(r, path.Dir(path.Clean("/"+name)))
	if err != nil {
		return fmt.Errorf("create folder of %s: %w", name, err)
	}
	rel := path.Join(dir, path.Base(name))
	tmp := path.Join(dir, "."+path.Base(name)+".tmp")
	if err := r.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	// WriteFile's mode is filtered by the umask; the projected mode must be exact.
	if err := r.Chmod(tmp, mode); err != nil {
		return errors.Join(fmt.Errorf("chmod %s: %w", name, err), r.Remove(tmp))
	}
	if gid >= 0 {
		if err := r.Lchown(tmp, -1, gid); err != nil {
			return errors.Join(fmt.Errorf("chown %s: %w", name, err), r.Remove(tmp))
		}
	}
	if err := r.Rename(tmp, rel); err != nil {
		return errors.Join(fmt.Errorf("rename %s: %w", name, err), r.Remove(tmp))
	}
	return nil
}

// lookPathIn finds the executable a container's argv[0] names, as runc does inside the
// container: a name with a slash is taken as it is (relative to workDir), a bare name is
// searched in the container's PATH. It returns the absolute path inside the root.
func lookPathIn(r *os.Root, file, workDir, pathEnv string) (string, error) {
	var candidates []string
	switch {
	case strings.Contains(file, "/"):
		candidates = []string{path.Join("/", workDir, file)}
		if path.IsAbs(file) {
			candidates = []string{path.Clean(file)}
		}
	default:
		for _, dir := range strings.Split(pathEnv, ":") {
			if dir == "" {
				dir = "."
			}
			candidates = append(candidates, path.Join("/", workDir, dir, file))
			if path.IsAbs(dir) {
				candidates[len(candidates)-1] = path.Join(dir, file)
			}
		}
	}
	for _, c := range candidates {
		rel, err := resolveIn(r, c)
		if err != nil {
			continue
		}
		fi, err := r.Stat(rel)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in the image (PATH %q)", file, pathEnv)
}

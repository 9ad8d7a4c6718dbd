package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxFileSize bounds one manifest file; anything larger is surely not one.
const maxFileSize = 32 << 20

// source is one file's name (as the user will see it) and bytes.
type source struct {
	name string
	data []byte
}

// listFiles returns path itself when it is a file (whatever its extension),
// or every *.yaml, *.yml and *.json file below it, sorted by path. Entries
// whose name starts with "." are skipped: editors' swap and lock files, .git,
// and the "..data" / "..2024_…" folders of a Kubernetes ConfigMap volume,
// whose files are reached through the visible symlinks instead. Symlinks to
// files are followed; symlinks to folders are not (they can loop).
func listFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != path && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !manifestExt(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Stat(p)
			if err != nil || !target.Mode().IsRegular() {
				return nil //nolint:nilerr // a dangling link, or a link to a folder: not a manifest
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	slices.Sort(files)
	return files, nil
}

func manifestExt(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// readFiles reads every file; a file that cannot be read is an error, the
// others are still read so all problems are reported together.
func readFiles(names []string) ([]source, []error) {
	var srcs []source
	var errs []error
	for _, name := range names {
		data, err := readFile(name)
		if err != nil {
			errs = append(errs, &Error{File: name, Message: err.Error()})
			continue
		}
		srcs = append(srcs, source{name: name, data: data})
	}
	return srcs, errs
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

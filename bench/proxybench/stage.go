package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// stageBinaries copies the RAUTA binaries under test into dir and points
// o at the copies. The resident size of a binary's mapped pages depends on
// how its file got into the page cache, not only on its bytes: a binary
// freshly written by the Go linker (through a memory mapping) measured
// 44-57 MB of file-backed RSS under the headline load where a copy of the
// same bytes, written with write(2) as a package or image extraction does,
// measured 36 (docs/performance.md, round 30). Copying every binary makes
// two builds' RSS comparable, and the figures those a deployment sees.
func stageBinaries(dir string, o *options) error {
	for _, p := range []*string{&o.rautaBin, &o.rautaBBin, &o.dataplaneBin} {
		if *p == "" {
			continue
		}
		staged, err := stageBinary(dir, *p)
		if err != nil {
			return err
		}
		*p = staged
	}
	return nil
}

// stageBinary copies the executable src into dir under a name of its own
// and returns the copy's path.
func stageBinary(dir, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "bin-"+filepath.Base(src)+"-")
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", src, err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", src, err)
	}
	return out.Name(), nil
}

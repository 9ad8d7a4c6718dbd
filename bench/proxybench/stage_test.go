package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStageBinaries: every binary given is copied into the run's folder,
// byte for byte and executable, options point at the copies (two builds
// of the same name stay apart), and an unset one stays unset.
func TestStageBinaries(t *testing.T) {
	src, dir := t.TempDir(), t.TempDir()
	a, b := filepath.Join(src, "a", "rauta"), filepath.Join(src, "b", "rauta")
	for i, p := range []string{a, b} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte{'#', '!', byte('0' + i)}, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	o := options{rautaBin: a, rautaBBin: b}
	if err := stageBinaries(dir, &o); err != nil {
		t.Fatal(err)
	}
	if o.dataplaneBin != "" {
		t.Errorf("unset dataplane binary became %q", o.dataplaneBin)
	}
	for i, p := range []string{o.rautaBin, o.rautaBBin} {
		if filepath.Dir(p) != dir {
			t.Errorf("staged %q, not in %s", p, dir)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, []byte{'#', '!', byte('0' + i)}) {
			t.Errorf("staged %q holds %q, %v", p, got, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("staged %q not executable: %v", p, err)
		}
	}
	if o.rautaBin == o.rautaBBin {
		t.Errorf("two builds staged to one path %q", o.rautaBin)
	}
	if err := stageBinaries(dir, &options{rautaBin: filepath.Join(src, "missing")}); err == nil {
		t.Error("staging a missing binary succeeded")
	}
}

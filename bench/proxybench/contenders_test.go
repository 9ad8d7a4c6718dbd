package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestRautaBContender: rauta-b runs the -rauta-b binary exactly as rauta
// runs -rauta (same flags, environment and manifests, its own folder), so
// an A/B of two builds compares the builds and nothing else.
func TestRautaBContender(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	e := &env{dir: t.TempDir(), feeds: &feeds{}}
	if err := e.writeCert(func(argv ...string) error { return exec.Command(argv[0], argv[1:]...).Run() }); err != nil {
		t.Fatal(err)
	}
	if _, err := newContender(rautaB, e, options{proxyCPU: "0", rautaBin: "/bin/rauta-a"}); err == nil || !strings.Contains(err.Error(), "-rauta-b") {
		t.Errorf("rauta-b without -rauta-b: err %v", err)
	}
	o := options{proxyCPU: "0", rautaBin: "/bin/rauta-a", rautaBBin: "/bin/rauta-b"}
	a, err := newContender("rauta", e, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newContender(rautaB, e, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.Argv[3] != "/bin/rauta-a" || b.Argv[3] != "/bin/rauta-b" {
		t.Fatalf("binaries %q and %q", a.Argv[3], b.Argv[3])
	}
	if a.ConfigFile == b.ConfigFile {
		t.Errorf("both read %s: each needs its own folder", a.ConfigFile)
	}
	same := func(argv []string, dir string) []string {
		out := slices.Clone(argv)
		out[3] = "BIN"
		for i, s := range out {
			out[i] = strings.ReplaceAll(s, dir, "DIR")
		}
		return out
	}
	if sa, sb := same(a.Argv, strings.TrimSuffix(a.ConfigFile, "/bench.yaml")), same(b.Argv, strings.TrimSuffix(b.ConfigFile, "/bench.yaml")); !slices.Equal(sa, sb) {
		t.Errorf("command lines differ beyond binary and folder:\n%q\n%q", sa, sb)
	}
	if !slices.Equal(a.Env, b.Env) || a.Config != b.Config {
		t.Error("environment or manifests differ")
	}
	if got, err := os.ReadFile(b.ConfigFile); err != nil || string(got) != b.Config {
		t.Errorf("rauta-b's manifests not written: %v", err)
	}
	if !takesPart(rautaB, groupRoutes) {
		t.Error("rauta-b left out of the many-routes cell")
	}
}
